"""Keep the README's measured figures true: render them from runs, store them, check them.

The README quotes figures of two runs that take minutes (``make demo``, and the search of
its second example). Their figures live in ``docs/readme_figures.json`` and are rendered
into the README between ``<!-- figures:NAME -->`` markers, with the CPU they were measured
on and their spread over CPU kernels and seeds (``spread``). Beside them the JSON stores the
figures of a *quick* run: the same pipeline (MNIST-1D, the ``mnist1d`` variant, train,
recalibrate, evaluate largest and smallest on test), 16 steps on 1 thread, about 20 seconds.

Training is chaotic: after 3 steps, different CPU kernels (AVX-512, AVX2, plain; MKL and
oneDNN code paths) have moved the loss by 1e-2, so the quick run's step-16 figures are exact
only on the kernels they were measured with. The check therefore compares

- on every machine: the losses of the first ``EARLY`` steps (every arch of each step), which
  agree across kernels to 1e-5 and move by far more when the code's numerics change
  (initialisation, data, forward, backward, optimizer, sampling, distillation);
- on a machine whose numerics profile (CPU model, ATen capability, torch version) is the
  stored one: every figure exactly, as before.

- ``check``: the README's figures equal the stored ones, and the quick run reproduces its
  stored figures. ``--capability X`` forces ``ATEN_CPU_CAPABILITY=X`` for the quick run.
- ``update --demo-run runs/demo [--search-run runs/demo-search --search-export runs/demo-export]``:
  read the runs (``eval.jsonl``, ``evaluations.csv``, the export's ``arch.json``), run the
  quick run, write the JSON and the README.
- ``spread --out runs/spread``: train and evaluate the demo configuration under every ATen
  capability this CPU has and with more seeds; store the range the README quotes (~5 min a run).

    python -m benchmarks.readme_figures check              # make check-readme (CI)
    python -m benchmarks.readme_figures update --demo-run runs/demo --search-run runs/demo-search \
        --search-export runs/demo-export                # make readme-figures
    python -m benchmarks.readme_figures spread --out runs/spread   # make readme-spread
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README, FIGURES = REPO / "README.md", REPO / "docs" / "readme_figures.json"
QUICK = ["--samples", "1000", "--steps", "16", "--warmup-steps", "2", "--batch-size", "64", "--threads", "1", "--calib-batches", "1",
         "--checkpoint-every", "0", "--no-tensorboard", "--no-progress"]
LOSS_RTOL = 1e-4
EARLY = 2  # steps whose losses agree across CPU kernels (measured: within 1e-5 relative over AVX-512 / AVX2 / default)
EARLY_RTOL, EARLY_ATOL = 1e-4, 1e-5  # the students' distillation losses are ~0.004: an absolute floor too
CAPABILITIES = ("avx512", "avx2", "default")  # ATEN_CPU_CAPABILITY values an x86 build dispatches to


# -- rendering -----------------------------------------------------------------------------
def arch_summary(arch: dict) -> str:
    """``d 4-4-4-4, e 6, ks 7, r 40`` (a per-slot list as its range when it is not uniform)."""
    def values(key):
        active = [v for v in arch[key] if v]
        return str(active[0]) if len(set(active)) == 1 else f"{min(active)}..{max(active)}"
    return f"d {'-'.join(map(str, arch['d']))}, e {values('e')}, ks {values('ks')}, r {arch['r']}"


def render_demo(demo: dict, spread: dict | None = None) -> str:
    """The demo's table; with a measured ``spread`` (2+ runs) a column of its range per subnet."""
    spread = spread if spread and spread.get("runs", 1) > 1 else {}
    column = " across CPU kernels and seeds |" if spread else ""
    lines = [f"| subnet | arch | MACs | params | test accuracy |{column}", "|---|---|---|---|---|" + "---|" * bool(spread)]
    for row in demo["rows"]:
        cells = (f"| {row['name']} | {arch_summary(row['arch'])} | {row['flops'] / 1e6:.2f} M | "
                 f"{row['params'] / 1e3:.0f} K | **{100 * row['test_accuracy']:.2f} %** |")
        if spread:
            low, high = spread["range"][row["name"]]
            cells += f" {100 * low:.2f} - {100 * high:.2f} % |"
        lines.append(cells)
    where = demo.get("profile", {})
    runs = (f"the range covers {spread['runs']} runs: {spread['what']}" if spread else
            "one run (`python -m benchmarks.readme_figures spread` adds other CPU kernels and seeds)")
    lines += ["", f"Measured on {where.get('cpu', 'an unrecorded CPU')} ({where.get('capability', '?')} kernels, "
                  f"torch {where.get('torch', '?')}); {runs}."]
    return "\n".join(lines)


def render_search(s: dict) -> str:
    b, p = s["baselines"], s["picked"]
    def at(row):
        return f"{100 * row['accuracy']:.2f} % at {row['flops'] / 1e6:.2f} M"
    return (f"What search bought (same run, validation split): the largest arch reaches {at(b['largest'])} MACs "
            f"(over budget), the median arch {at(b['median'])}, the smallest {at(b['smallest'])}; the picked subnet "
            f"reaches **{at(p)} MACs**, inside the {s['budget']} budget.")


RENDER = {"demo": lambda f: render_demo(f["demo"], f.get("demo_spread")), "search": lambda f: render_search(f["search"])}


def readme_blocks(text: str) -> dict:
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"<!-- figures:(\w+) -->\n(.*?)<!-- /figures:\1 -->",
                                                                 text, re.S)}


def with_blocks(text: str, blocks: dict) -> str:
    for name, body in blocks.items():
        text, n = re.subn(rf"(<!-- figures:{name} -->\n).*?(<!-- /figures:{name} -->)",
                          lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)
        if n != 1:
            raise SystemExit(f"README.md lacks the markers <!-- figures:{name} --> ... <!-- /figures:{name} -->")
    return text


# -- measuring -----------------------------------------------------------------------------
def supernet(*args: str, cwd: Path, env: dict | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "supernet.cli", *args], capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, **(env or {})})
    if result.returncode:
        raise SystemExit(f"supernet {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def profile(env: dict | None = None) -> dict:
    """What exact figures depend on besides the code: CPU model, the ATen capability torch dispatches to
    (under ``env``), torch's version."""
    code = ("import json, torch; from supernet.hardware.rounds import cpu_model; "
            "print(json.dumps([cpu_model(), torch.backends.cpu.get_cpu_capability(), torch.__version__]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, **(env or {})})
    cpu, capability, version = json.loads(out.stdout)
    return {"cpu": cpu, "capability": capability, "torch": version}


def eval_rows(lines: list[str]) -> list[dict]:
    rows = [json.loads(line) for line in lines if line.strip()]
    return [{"name": name, "arch": r["arch"], "flops": r["flops"], "params": r["params"],
             "test_accuracy": r["test_accuracy"]} for name, r in zip(("largest", "smallest"), rows)]


def measure_quick(capability: str | None = None) -> dict:
    """Train, recalibrate and evaluate the quick configuration in a temp folder (``capability``: the forced
    ``ATEN_CPU_CAPABILITY``); its figures, the losses of its first ``EARLY`` steps and its numerics profile."""
    env = {"ATEN_CPU_CAPABILITY": capability} if capability else {}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "quick"
        supernet("train", *QUICK, "--out", str(run), cwd=REPO, env=env)
        out = supernet("eval", str(run), "--arch", "largest", "--arch", "smallest", "--split", "test",
                       "--calib-batches", "1", cwd=REPO, env=env)
        losses = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in losses if "loss/largest" in r]
    early = [{k: v for k, v in r.items() if k.startswith("loss/")} for r in steps[:EARLY]]
    return {"command": "supernet train " + " ".join(QUICK), "rows": eval_rows(out.splitlines()),
            "last_step": steps[-1]["step"], "last_loss_largest": steps[-1]["loss/largest"], "early_losses": early,
            "profile": profile(env)}


def demo_run(folder: Path, env: dict, seed: int) -> list[dict]:
    """``make demo``'s training and evaluation (2 threads, ``seed``) under ``env``; its two rows."""
    if not (folder / "eval.jsonl").exists():
        supernet("train", "--out", str(folder), "--overwrite", "--threads", "2", "--seed", str(seed), "--no-progress",
                 cwd=REPO, env=env)
        out = supernet("eval", str(folder), "--arch", "largest", "--arch", "smallest", "--split", "test",
                       "--threads", "2", cwd=REPO, env=env)
        (folder / "eval.jsonl").write_text(out)
    return eval_rows((folder / "eval.jsonl").read_text().splitlines())


def measure_spread(out: Path, demo: dict, seeds: list[int]) -> dict:
    """The demo's test accuracies under every ATen capability this CPU dispatches to (seed 0), and with
    ``seeds`` (the native capability); with the demo's own run, the range per subnet."""
    here = profile()
    native = here["capability"].lower()
    runs = {"seed 0, " + native: demo["rows"]}
    for capability in CAPABILITIES:
        env = {"ATEN_CPU_CAPABILITY": capability}
        if capability != native and profile(env)["capability"].lower() == capability:
            runs[f"seed 0, {capability}"] = demo_run(out / f"{capability}-seed0", env, 0)
    for seed in seeds:
        runs[f"seed {seed}, {native}"] = demo_run(out / f"{native}-seed{seed}", {}, seed)
    names = [r["name"] for r in demo["rows"]]
    values = {n: [row["test_accuracy"] for rows in runs.values() for row in rows if row["name"] == n] for n in names}
    return {"runs": len(runs), "what": "; ".join(runs), "range": {n: [min(v), max(v)] for n, v in values.items()},
            "results": {k: {r["name"]: r["test_accuracy"] for r in rows} for k, rows in runs.items()},
            "profile": here}


def read_search(run: Path, export: Path) -> dict:
    with open(run / "evaluations.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    baselines = {r["baseline"]: {"accuracy": float(r["accuracy"]), "flops": float(r["flops"])}
                 for r in rows if r["baseline"]}
    picked = json.loads((export / "arch.json").read_text())
    budget = json.loads((run / "config.json").read_text())["search"]["budgets"]["flops"]
    return {"baselines": baselines, "budget": f"{float(budget) / 1e6:g} M",
            "picked": {"accuracy": picked["picked"]["accuracy"], "flops": picked["flops"], "pick": picked["picked"]["pick"]}}


def commit() -> str:
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                           cwd=REPO).stdout
    return rev.strip() + ("+changes" if dirty.strip() else "")


# -- checking --------------------------------------------------------------------------------
def differences(stored: dict, measured: dict) -> list[str]:
    """What differs between two quick results: the first steps' losses (to ``EARLY_RTOL``) always; with the
    same numerics profile also every figure (counts exactly, the last loss to ``LOSS_RTOL``)."""
    found = []
    for step, (a, b) in enumerate(zip(stored.get("early_losses", []), measured["early_losses"])):
        for key in a:
            if key not in b or not abs(a[key] - b[key]) <= EARLY_RTOL * abs(a[key]) + EARLY_ATOL:
                found.append(f"{key} at step {step}: stored {a[key]:.6f}, measured {b.get(key, float('nan')):.6f}")
    if stored.get("profile") not in (None, measured.get("profile")):
        return found  # other kernels: later figures differ by rounding alone (see the module docstring)
    for a, b in zip(stored["rows"], measured["rows"]):
        for key in ("arch", "flops", "params", "test_accuracy"):
            if a[key] != b[key]:
                found.append(f"{a['name']} {key}: stored {a[key]}, measured {b[key]}")
    old, new = stored["last_loss_largest"], measured["last_loss_largest"]
    if abs(old - new) > LOSS_RTOL * abs(old):
        found.append(f"loss of the largest arch at step {stored['last_step']}: stored {old:.6f}, measured {new:.6f}")
    return found


def check_readme(figures: dict) -> list[str]:
    blocks = readme_blocks(README.read_text())
    return [f"README's {name} figures differ from docs/readme_figures.json; run `python -m benchmarks.readme_figures "
            f"render` (or re-measure with `make readme-figures`)"
            for name, render in RENDER.items() if name in figures and blocks.get(name) != render(figures)]


def check(quick: bool = True, same_commit: bool = True, capability: str | None = None) -> list[str]:
    figures = json.loads(FIGURES.read_text())
    problems = check_readme(figures)
    if same_commit:
        problems += [f"the {name} figures come from commit {figures[name].get('commit')}, the quick ones from "
                     f"{figures['quick'].get('commit')}: re-measure them together with `make readme-figures`"
                     for name in RENDER if name in figures and figures[name].get("commit") != figures["quick"].get("commit")]
    if quick:
        found = differences(figures["quick"], measure_quick(capability))
        if found:
            problems.append("the quick run no longer reproduces its stored figures, so the code's numerics changed and "
                            "README's figures are stale; re-measure with `make readme-figures`: " + "; ".join(found))
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="README figures == stored figures; the quick run reproduces its figures")
    c.add_argument("--no-quick", action="store_true", help="skip the quick run (only compare README and JSON)")
    c.add_argument("--capability", choices=CAPABILITIES, help="force ATEN_CPU_CAPABILITY for the quick run")
    s = sub.add_parser("spread", help="the demo under every ATen capability and more seeds: the README's range")
    s.add_argument("--out", required=True, help="folder for the runs (each is kept, and reused when complete)")
    s.add_argument("--seeds", type=int, nargs="*", default=[1, 2], help="seeds besides 0 (default: %(default)s; none: capabilities only)")
    sub.add_parser("render", help="rewrite README's figures from docs/readme_figures.json")
    u = sub.add_parser("update", help="measure: read the runs, run the quick run, write JSON and README")
    u.add_argument("--demo-run", required=True, help="the `make demo` run folder (with eval.jsonl)")
    u.add_argument("--search-run", help="the second example's search run folder")
    u.add_argument("--search-export", help="its `export --from-search` folder")
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = check(quick=not args.no_quick, capability=args.capability)
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print("README figures: ok" if not problems else "README figures: stale")
        return 1 if problems else 0
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    if args.command == "spread":
        figures["demo_spread"] = measure_spread(Path(args.out), figures["demo"], args.seeds)
        FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    if args.command == "update":
        stamp = commit()
        run = Path(args.demo_run)
        steps = json.loads((run / "config.json").read_text())["total_steps"]
        figures["demo"] = {"command": "make demo", "commit": stamp, "steps": steps, "profile": profile(),
                           "rows": eval_rows((run / "eval.jsonl").read_text().splitlines())}
        if args.search_run:
            figures["search"] = {"command": "README second example", "commit": stamp,
                                 **read_search(Path(args.search_run), Path(args.search_export))}
        figures["quick"] = {**measure_quick(), "commit": stamp}
        FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    README.write_text(with_blocks(README.read_text(), {n: r(figures) for n, r in RENDER.items() if n in figures}))
    print(f"wrote {FIGURES.relative_to(REPO) if args.command == 'update' else ''} README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
