"""hf_encoder's quality side by side: subnets of one supernet vs their pruned-and-fine-tuned twins, at equal total steps.

A small BERT is fine-tuned on a local text-classification task (a noisy keyword task written as words,
``search_spaces.hf_encoder.testing.noisy_keyword_task``); that is the user's pretrained model. Then

- the supernet (``hf_encoder``, ``default`` choices) trains once for ``--steps`` through the engine
  (``supernet.api.train``: importance order, sandwich, fixed pretrained teacher, KL);
- at ~75 / 50 / 30 % of the parameters, the uniform arch closest in parameters is scored on the test
  split (``supernet.api.evaluate``), and its twin, the pretrained model pruned to the same arch by the
  same importance order, is fine-tuned alone for ``--steps / 3`` steps (same optimiser, LR schedule,
  batch, clipping and teacher), so both sides spend the same total steps.

    python -m benchmarks.bench_hf_encoder --steps 300
writes benchmarks/results/bench_hf_encoder.json with each size's ``gap_pt`` (subnet - twin, points).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import math
import tempfile
import time
from pathlib import Path

import torch

from search_spaces.hf_encoder import testing
from supernet.io.files import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (0.75, 0.5, 0.3)


def write_task(folder: Path, n: int, seed: int) -> tuple[Path, object]:
    """The task as a CSV of words (``w<id>``; padding dropped) and a WordPiece tokenizer trained on it."""
    x, y = testing.noisy_keyword_task(n, seed=seed)
    texts = [" ".join(f"w{int(t)}" for t in row if int(t) != 0) for row in x]
    path = folder / "task.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("text", "label"), *zip(texts, y.tolist())])
    return path, testing.train_tokenizer(texts, 120)


def uniform_archs(space):
    """Every arch with the same heads and width in all kept layers."""
    c = space.config
    for d, h, w in itertools.product(range(c.num_layers - c.max_skip, c.num_layers + 1), c.heads, c.widths):
        values = {"heads": [h] * c.num_layers, "mlp_width": [w] * c.num_layers}
        if c.max_skip:
            values["depth"] = d
        yield space.make(values)


def accuracy(fn, split) -> float:
    with torch.no_grad():
        return float(sum((fn(x).argmax(-1) == y).sum() for x, y in zip(split.x.split(256), split.y.split(256)))
                     / len(split.y))


def fine_tune_twin(net, teacher, data, steps: int, cfg) -> None:
    """AdamW at ``cfg.lr`` (no decay on 1-D parameters), linear warm-up then cosine, clip 5, KL from ``teacher``:
    the engine's recipe for one arch."""
    from supernet.core.losses import kl_divergence
    from supernet.training.trainer import lr_factor, make_optimizer
    opt = make_optimizer(net, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.warmup_steps, steps))
    net.train()
    for step, (x, _) in zip(range(steps), data.train_batches(0, cfg.batch_size, cfg.seed + 1)):
        with torch.no_grad():
            target = teacher(x)
        loss = kl_divergence(net(x), target)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
    net.eval()


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="supernet steps (each twin: steps / 3)")
    p.add_argument("--pretrain-steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from supernet.api import evaluate, train
    from supernet.core.registry import build_supernet, space_config
    from supernet.data.load import load_data
    from supernet.training.train_config import TrainConfig
    from search_spaces.hf_encoder.config import with_model
    from search_spaces.hf_encoder.static import EncoderClassifier
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_path, tok = write_task(tmp, 3000, args.seed)
        reader = {"tokenizer": None, "seq_len": 18, "text_field": "text", "label_field": "label"}
        model = testing.build_text_model(len(tok), hidden=64, layers=4, heads=4, intermediate=256, labels=4,
                                         seed=args.seed)
        folder = tmp / "pretrained"
        testing.save_model(folder, model, tok)  # the tokenizer first: the reader needs it
        data = load_data(f"text:{data_path}", seed=args.seed, reader={**reader, "tokenizer": str(folder)})
        testing.fit(model, data.train.x, data.train.y, steps=args.pretrain_steps, lr=1e-3, seed=args.seed)
        testing.save_model(folder, model, tok)
        cfg = TrainConfig(data=f"text:{data_path}", space="hf_encoder", variant="default", steps=args.steps,
                          batch_size=32, optimizer="adamw", lr=args.lr, weight_decay=0.01, warmup_steps=20,
                          seed=args.seed, threads=1, tensorboard=False, progress=False, calib_batches=4,
                          space_options={"model": str(folder), "seq_len": 18})
        t0 = time.time()
        run = train(cfg, out=tmp / "run")
        supernet_seconds = time.time() - t0
        pretrained = EncoderClassifier(model.eval(), "text", 0)
        base = build_supernet("hf_encoder", with_model(space_config("hf_encoder", "default"), str(folder),
                                                       seq_len=18))
        base.before_training(data.calibration_batches(cfg.calib_batches, 256, cfg.seed))  # the run's order
        full = base.params(base.space.largest())
        rows, archs = [], list(uniform_archs(base.space))
        for fraction in SIZES:
            arch = min(archs, key=lambda a: abs(base.params(a) / full - fraction))
            subnet = evaluate(run, arch, splits=("test",), device="cpu")[0]["test_accuracy"]
            twin = base.extract(arch)
            t0 = time.time()
            fine_tune_twin(twin, pretrained, data, args.steps // 3, cfg)
            rows.append({"target_fraction": fraction, "params_fraction": base.params(arch) / full,
                         "arch": arch.to_dict(), "subnet_accuracy": subnet,
                         "twin_accuracy": accuracy(twin, data.test), "twin_steps": args.steps // 3,
                         "twin_seconds": round(time.time() - t0, 1),
                         "gap_pt": round(100 * (subnet - accuracy(twin, data.test)), 2)})
            print(rows[-1], flush=True)
        result = {"task": "noisy keyword classification (4 classes, 15 % labels redrawn), BERT 4x64, heads 4, "
                          "MLP 256", "supernet_steps": args.steps, "lr": args.lr,
                  "pretrained_test_accuracy": accuracy(pretrained, data.test),
                  "largest_test_accuracy": evaluate(run, "largest", splits=("test",), device="cpu")[0][
                      "test_accuracy"],
                  "sizes": rows, "supernet_seconds": round(supernet_seconds, 1),
                  "goal": "each gap_pt >= -0.5", "met": all(r["gap_pt"] >= -0.5 for r in rows),
                  "seconds": round(time.time() - start, 1), "threads": 1, "seed": args.seed}
        assert math.isfinite(result["largest_test_accuracy"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "bench_hf_encoder.json", result)
    return result


if __name__ == "__main__":
    main()
