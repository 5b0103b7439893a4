"""Scale out on Ray, on a local Ray instance with 2 CPUs (started once for the module).

Training: 2 Ray Train workers (DDP) against the same run done here; a worker killed mid-run.
Search: 2 evaluation actors against the local search; failing evaluations retried and recorded.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import psutil
import pytest

from supernet import Arch, Dimension, SearchSpace, run_search
from supernet.api import train
from supernet.cli.main import main
from supernet.distributed.evaluate import RayEvaluator
from supernet.distributed.train import weights_fingerprint
from supernet.evaluation.evaluators import Failure
from supernet.io.checkpoint import load_checkpoint, resolve_checkpoint
from supernet.nas.search_config import SearchConfig
from supernet.training.train_config import ScaleConfig, TrainConfig

pytestmark = pytest.mark.slow  # every test here takes seconds: make test-fast leaves them out

ray = pytest.importorskip("ray")
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the actors get this module's functions by value
STEPS, EVERY = 24, 4
STALL = 300  # seconds a run may show no progress at all (bench_ray_recovery: recovery is slow when loaded, not stuck)


@pytest.fixture(scope="module")
def local_ray():
    from supernet.distributed.cluster import LOCAL_SYSTEM_CONFIG
    ray.init(address="local", num_cpus=2, resources={"target:cpu": 1}, include_dashboard=False, logging_level="ERROR",
             log_to_driver=False, _system_config=LOCAL_SYSTEM_CONFIG)  # a private instance (even beside a `ray start` cluster), node of target "cpu"
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)  # 1440 training examples: 45 steps of 32, so one epoch evaluation (at the end)
    t = np.linspace(0, 1, 20)
    x = np.sin(2 * np.pi * (y[:, None] + 1) * t[None]) + 0.3 * rng.standard_normal((2000, 20))
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    np.savez(path, x=x.astype(np.float32), y=y)
    return str(path)


def cfg_for(data, **kw):
    base = dict(data=data, variant="tiny", steps=STEPS, batch_size=32, lr=0.05, warmup_steps=2,
                checkpoint_every=EVERY, calib_batches=1, tensorboard=False, progress=False, seed=3)
    return TrainConfig(**{**base, **kw})


def rows(run):
    return [json.loads(line) for line in open(run / "log.jsonl")]


def step_rows(run):
    return [r for r in rows(run) if "loss/largest" in r]


def train_workers():
    """This test's Ray Train worker processes (descendants of this process only)."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "RayTrainWorker" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:  # a process that ended (or a zombie) while we looked
            pass
    return found


def progress(out):
    """What a live run changes: its log's size, its checkpoints, its Train workers (a restart brings new ones)
    and the CPU seconds they have used. A stalled run changes none of them."""
    workers, cpu = train_workers(), 0.0
    for proc in workers:
        try:
            cpu += sum(proc.cpu_times()[:2])
        except psutil.Error:
            pass
    log = out / "log.jsonl"
    return (log.stat().st_size if log.exists() else 0, len(list((out / "checkpoints").glob("step-*"))),
            tuple(sorted(p.pid for p in workers)), int(cpu))


def wait_while_progressing(until, out, stall=STALL):
    """Wait until ``until()``, as long as the run in ``out`` shows :func:`progress`: a loaded machine makes it
    slow, not stuck; only ``stall`` seconds without any change fail the test."""
    last, since = None, time.time()
    while not until():
        state = progress(out)
        if state != last:
            last, since = state, time.time()
        assert time.time() - since < stall, f"the distributed run made no progress for {stall} s: {state}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def killed_run(local_ray, data, tmp_path_factory):
    """A 2-worker run in which one worker is SIGKILLed after the step-10 checkpoint; (run, step seen at the kill)."""
    out, done = tmp_path_factory.mktemp("ray") / "run", {}
    thread = threading.Thread(target=lambda: done.update(run=train(cfg_for(data), out, scale=ScaleConfig(2))))
    thread.start()
    seen = []

    def step_reached():
        steps = [r["step"] for r in step_rows(out)] if (out / "log.jsonl").exists() else []
        seen[:] = [max(steps, default=-1)]
        return seen[0] >= 2 * EVERY + 2 or not thread.is_alive()
    wait_while_progressing(step_reached, out)
    victims = train_workers()
    assert victims and seen[0] < STEPS - 1, "the run ended before a worker could be killed"
    victims[-1].kill()
    wait_while_progressing(lambda: not thread.is_alive(), out)
    assert "run" in done, "the distributed run did not finish"
    return done["run"], seen[0]


def test_a_killed_worker_is_recovered_from_the_checkpoint_with_no_step_lost_or_logged_twice(killed_run):
    run, seen = killed_run
    assert [r["step"] for r in step_rows(run)] == list(range(STEPS))
    starts = [r for r in rows(run) if r.get("event") == "workers-started"]
    assert [s["from_step"] for s in starts][0] == 0 and len(starts) == 2
    assert 0 < starts[1]["from_step"] <= seen + 1 and starts[1]["from_step"] % EVERY == 0
    assert resolve_checkpoint(run).name == f"step-{STEPS:07d}"


def test_two_workers_keep_identical_weights_and_match_one_at_the_same_global_batch(killed_run, data, tmp_path):
    run, _ = killed_run
    model, meta = load_checkpoint(run)
    assert meta["ray"]["workers"] == 2 and meta["step"] == STEPS
    assert meta["ray"]["weights_sha256"] == [weights_fingerprint(model)] * 2  # every rank held the saved weights
    alone = step_rows(train(cfg_for(data), tmp_path / "one"))
    two = step_rows(run)
    a, b = alone[0]["loss/largest"], two[0]["loss/largest"]
    assert abs(a - b) < 0.02 * a  # same weights, same global batch: only BN's shard statistics differ
    for key in ("loss/largest", "loss/smallest"):
        a, b = np.mean([r[key] for r in alone[-10:]]), np.mean([r[key] for r in two[-10:]])
        print(key, a, b)
        assert abs(a - b) < 0.15 * a, key
    assert np.mean([r["loss/largest"] for r in two[-10:]]) < 0.8 * two[0]["loss/largest"]  # it learned


def test_a_distributed_run_is_an_ordinary_run_folder(killed_run, tmp_path, capsys):
    run, _ = killed_run
    assert {p.name for p in resolve_checkpoint(run).iterdir()} == {"weights.safetensors", "config.json", "trainer.pt"}
    assert main(["eval", str(run), "--arch", "smallest", "--split", "val", "--calib-batches", "1"]) == 0
    assert "val_accuracy" in json.loads(capsys.readouterr().out.splitlines()[-1])



@pytest.mark.parametrize("hidden", ["1", "0.5,1"])
def test_an_hf_encoder_trains_on_two_ray_train_workers_unchanged(local_ray, tmp_path, hidden):
    """Issue 31.3: the HF encoder space on Ray Train as is: a tiny pretrained BERT, 2 workers, every step logged
    once, both ranks holding the saved weights, and the run an ordinary one (its largest arch still the teacher's
    forward at step 0, so the first distillation loss is ~0); with an elastic hidden size too."""
    import csv

    from tests.support.hf_encoder import save_kind
    folder = save_kind(tmp_path / "bert", "bert")
    rng = np.random.default_rng(0)
    words = ["cat", "dog", "sun", "sea", "park", "roof", "lake", "mat"]
    with open(tmp_path / "data.csv", "w", newline="") as fh:
        rows = [(" ".join(rng.choice(words, 7)), "abc"[i % 3]) for i in range(96)]
        csv.writer(fh).writerows([("text", "label"), *rows])
    cfg = TrainConfig(data=f"text:{tmp_path / 'data.csv'}", space="hf_encoder", space_options={
        "model": str(folder), "seq_len": 12, "hidden_fractions": hidden}, steps=4, batch_size=8, optimizer="adamw", lr=1e-4, warmup_steps=1,
        checkpoint_every=2, calib_batches=1, tensorboard=False, progress=False, seed=0)
    run = train(cfg, tmp_path / "run", scale=ScaleConfig(2))
    model, meta = load_checkpoint(run)
    assert meta["ray"]["workers"] == 2 and meta["step"] == 4
    assert meta["ray"]["weights_sha256"] == [weights_fingerprint(model)] * 2
    steps = step_rows(run)
    assert [r["step"] for r in steps] == [0, 1, 2, 3] and steps[0]["loss/largest"] < 1e-4

# -- search -----------------------------------------------------------------------------------------
SPACE = SearchSpace([Dimension("width", (1, 2, 3, 4, 5, 6)), Dimension("depth", (1, 2, 3, 4))])
COSTS = {"flops": lambda a: a["width"] ** 2 * a["depth"]}


def accuracy(arch):
    return {"accuracy": 1 - 1 / (arch["width"] * arch["depth"] + 1) + 0.01 * ((arch["width"] * 7 + arch["depth"]) % 5)}


class Faulty:
    """``make()`` of an evaluator that fails for three archs: raises, hangs, or kills its process;
    every attempt leaves a file in ``folder``."""

    def __init__(self, folder):
        self.folder = str(folder)

    def __call__(self):
        return self.evaluate

    def evaluate(self, arch):
        name = f"{arch['width']}-{arch['depth']}"
        with open(os.path.join(self.folder, f"{name}-{time.time_ns()}"), "w"):
            pass
        if name == "2-2":
            raise ValueError("deliberate failure")
        if name == "3-1":
            time.sleep(60)
        if name == "1-3":
            os._exit(1)
        return accuracy(arch)


def attempts(folder, name):
    return len([p for p in os.listdir(folder) if p.startswith(name + "-")])


FAST = dict(objectives=("accuracy", "flops"), evaluations=14, initial=6, per_round=4, uncertain=1, generations=5,
            population=10, predictor="ridge", seed=2, cheap=False)  # local and Ray evaluations differ in speed


def test_failing_evaluations_are_retried_on_ray_then_recorded_as_locally(local_ray, tmp_path):
    archs = [Arch({"width": 2, "depth": 2}), Arch({"width": 3, "depth": 1}), Arch({"width": 1, "depth": 3}),
             Arch({"width": 4, "depth": 1})]
    from supernet.distributed.evaluate import attempts_log
    pool = RayEvaluator(Faulty(tmp_path), 2, timeout=2, retries=1, on_retry=attempts_log(tmp_path / "attempts.jsonl"))
    try:
        raised, hung, died, fine = pool.evaluate_many(archs)
        again = pool.evaluate_many([Arch({"width": 5, "depth": 2})])  # the pool survives its replaced actors
    finally:
        pool.close()
    assert isinstance(raised, Failure) and raised.status == "error" and "ValueError: deliberate failure" in raised.error
    assert "failed 2 of 2 attempts" in raised.error and attempts(tmp_path, "2-2") == 2
    assert isinstance(hung, Failure) and hung.status == "timeout" and attempts(tmp_path, "3-1") == 2
    assert isinstance(died, Failure) and died.status == "error" and "died" in died.error and attempts(tmp_path, "1-3") == 2
    assert fine == accuracy(archs[3]) and attempts(tmp_path, "4-1") == 1 and again == [accuracy(Arch({"width": 5, "depth": 2}))]
    retried = [json.loads(line) for line in (tmp_path / "attempts.jsonl").read_text().splitlines()]
    assert sorted((r["arch"]["width"], r["arch"]["depth"], r["attempt"], r["status"]) for r in retried) == [
        (1, 3, 1, "error"), (2, 2, 1, "error"), (3, 1, 1, "timeout")]


def test_a_search_on_ray_records_a_failure_as_a_local_search_does(local_ray, tmp_path):
    def failing(arch):
        if arch["width"] == 6:
            raise ValueError("width 6 is broken")
        return accuracy(arch)
    local = run_search(SPACE, failing, SearchConfig(**FAST), costs=COSTS)
    pool = RayEvaluator(lambda: failing, 2, retries=1)
    try:
        remote = run_search(SPACE, pool, SearchConfig(**FAST), costs=COSTS)
    finally:
        pool.close()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "error"} for r in rows]  # noqa: E731
    assert strip(remote.evaluations) == strip(local.evaluations) and remote.front == local.front
    failed = [r for r in remote.evaluations if r["status"] != "ok"]
    assert failed and all(r["status"] == "error" and "width 6 is broken" in r["error"] for r in failed)


def test_search_with_two_eval_workers_returns_the_local_front(local_ray, killed_run, tmp_path):
    from supernet.api import search
    run, _ = killed_run
    config = SearchConfig(objectives=("accuracy", "flops"), evaluations=12, initial=5, per_round=4, uncertain=1,
                          generations=4, population=10, predictor="ridge", seed=1, cheap=False)  # one pace for both
    # the actors compute with one thread each (--threads absent on Ray): the same arithmetic here
    local = search(run, config, tmp_path / "local", progress=False, tensorboard=False, calib_batches=1,
                   device="cpu", threads=1)
    remote = search(run, config, tmp_path / "ray", progress=False, tensorboard=False, calib_batches=1, device="cpu",
                    eval_workers=2)
    assert remote.evaluations == local.evaluations and remote.front == local.front
    assert (tmp_path / "ray" / "evaluations.csv").read_text() == (tmp_path / "local" / "evaluations.csv").read_text()


def test_latency_is_measured_on_the_node_tagged_with_the_target(local_ray):
    from supernet.core.errors import SupernetError
    from supernet.core.registry import get_space, space_config
    from supernet.distributed.evaluate import measure_on_target
    from supernet.hardware.rounds import MeasureConfig
    space = get_space("mobilenet").build_space(space_config("mobilenet", "tiny"))
    cfg = MeasureConfig(target="cpu", threads=1, warmup=1, repeats=3, min_seconds=0.0)
    measured = measure_on_target(space, [space.smallest(), space.largest()], cfg, "cpu")
    assert len(measured) == 2 and all(m["median_ms"] > 0 for m in measured)
    with pytest.raises(SupernetError, match=r"needs 1 target:jetson-orin \(the cluster has 0\); tag a node .*--resources"):
        measure_on_target(space, [space.smallest()], cfg, "jetson-orin")


def test_a_space_from_a_py_file_is_measured_on_the_target_node(local_ray, tmp_path):
    """The worker has not imported the file (it is not on SUPERNET_SPACES): the task imports it, then unpickles."""
    from supernet.core.registry import get_space, import_space_module, space_config
    from supernet.distributed.evaluate import measure_on_target
    from supernet.hardware.rounds import MeasureConfig
    source = (Path(__file__).parents[1] / "spaces" / "user_relu_mlp.py").read_text()
    path = tmp_path / "ray_relu_mlp.py"  # its own space name: test_user_space registers relu_mlp
    path.write_text(source.replace('register_space("relu_mlp"', 'register_space("ray_relu_mlp"'))
    import_space_module(str(path))
    space = get_space("ray_relu_mlp").build_space(space_config("ray_relu_mlp", "tiny"))
    cfg = MeasureConfig(target="cpu", threads=1, warmup=1, repeats=3, min_seconds=0.0)
    measured = measure_on_target(space, [space.smallest(), space.largest()], cfg, "cpu")
    assert len(measured) == 2 and all(m["median_ms"] > 0 for m in measured)


def test_a_local_instance_runs_its_workers_at_the_users_priority():
    """Ray's default niceness 15 starves the workers on a busy machine (bench_ray_recovery); connect() sets 0."""
    code = ("import os; from supernet.distributed.cluster import connect; ray = connect(None); "
            "print(ray.get(ray.remote(lambda: os.nice(0)).remote()), os.nice(0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    worker, driver = map(int, out.stdout.split()[-2:])
    assert worker == driver


# -- the command line -----------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--ray-address", "auto"], "--ray-address apply only with --workers"),
    (["--workers", "3", "--batch-size", "32"], "--batch-size 32 (the global batch) must split evenly"),
    (["--workers", "2", "--device", "cuda:1"], "--device cuda:1 with --workers needs --gpus-per-worker 1"),
    (["--workers", "0"], "--workers: must be >= 1"),
    (["--workers", "2", "--ray-address", "127.0.0.1:1", "--samples", "500", "--variant", "tiny", "--steps", "2"],
     "cannot connect to the Ray cluster at '127.0.0.1:1'"),
])
def test_ray_option_mistakes_are_one_line_errors(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) if "--workers: " in message else nullcontext():
        code = main(["train", "--out", str(tmp_path / "r"), *args])
        assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


# -- beside a cluster that `ray start --head` runs on this machine (issue 25) ------------------------------------------
@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """``ray start --head --block`` on a free port (Ray >= 2.52 turns token authentication on); its address."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", f"--port={port}",
                             "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.5)
    time.sleep(3)
    yield f"127.0.0.1:{port}"
    os.killpg(head.pid, signal.SIGKILL)  # its whole session (GCS, raylet, workers): `ray stop` takes ~30 s here
    head.wait(60)
    deadline = time.time() + 60
    while time.time() < deadline and session_processes(head.pid):
        time.sleep(0.2)
    assert not session_processes(head.pid), session_processes(head.pid)


def session_processes(sid: int) -> list:
    """Live processes of session ``sid`` (zombies left for their parents to reap do not count)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (OSError, psutil.Error):
            pass
    return found


def cli_run(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "supernet.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=Path(__file__).resolve().parents[2])


def test_beside_a_running_cluster_a_local_run_is_private_quiet_and_the_cluster_is_reachable(ray_head, data,
                                                                                               tmp_path):
    run = tmp_path / "run"
    result = cli_run("train", "--data", data, "--variant", "tiny", "--steps", 6, "--batch-size", 32,
                     "--checkpoint-every", 3, "--calib-batches", 1, "--workers", 2, "--no-tensorboard", "--out", run)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(lines) <= 7 and not any("\x1b[" in line or "PlacementGroup" in line for line in lines), lines
    assert result.stdout.strip() == f"trained: {run}" and [r["step"] for r in step_rows(run)] == list(range(6))
    search = cli_run("search", run, "--evaluations", 6, "--initial", 2, "--calib-batches", 1, "--ray-address", ray_head,
                     "--eval-workers", 1, "--out", tmp_path / "s", "--no-progress")
    assert search.returncode == 0, search.stderr[-2000:]
    assert search.stdout.strip().splitlines()[-1] == f"searched: {tmp_path / 's'}"


def test_ctrl_c_of_a_distributed_run_says_what_was_saved(data, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "supernet.cli", "train", "--data", data, "--variant", "tiny",
                             "--steps", "2000", "--batch-size", "32", "--checkpoint-every", "2", "--calib-batches", "1",
                             "--workers", "2", "--no-tensorboard", "--out", str(run)], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, cwd=Path(__file__).resolve().parents[2])
    deadline = time.time() + 600
    while time.time() < deadline and not list((run / "checkpoints").glob("step-*")):
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2 and last.startswith("error: interrupted: the latest checkpoint is step-"), err[-2000:]
    assert f"supernet train --resume --out {run} --workers 2" in last
