"""Keep the README's measured figures true: render them from runs, store them, check them.

The README quotes figures of two runs that take minutes (``make demo``, and the search of
its second example). Their figures live in ``docs/readme_figures.json`` and are rendered
into the README between ``<!-- figures:NAME -->`` markers. Beside them the JSON stores the
exact figures of a *quick* run: the same pipeline (MNIST-1D, the ``mnist1d`` variant,
train, recalibrate, evaluate largest and smallest on test), 16 steps on 1 thread, about
20 seconds. All are measured together, on one commit, by ``make readme-figures``.

- ``check``: the README's figures equal the stored ones, and the quick run reproduces its
  stored figures exactly. If the code's numerics changed, the quick figures change, and the
  README's figures (measured by the old code) are stale: re-measure them.
- ``update --demo-run runs/demo [--search-run runs/demo-search --search-export runs/demo-export]``:
  read the runs (``eval.jsonl``, ``evaluations.csv``, the export's ``arch.json``), run the
  quick run, write the JSON and the README.

    python scripts/readme_figures.py check              # make check-readme (CI)
    python scripts/readme_figures.py update --demo-run runs/demo --search-run runs/demo-search \
        --search-export runs/demo-export                # make readme-figures
"""
from __future__ import annotations

import argparse
import csv
import json
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


# -- rendering -----------------------------------------------------------------------------
def arch_summary(arch: dict) -> str:
    """``d 4-4-4-4, e 6, ks 7, r 40`` (a per-slot list as its range when it is not uniform)."""
    def values(key):
        active = [v for v in arch[key] if v]
        return str(active[0]) if len(set(active)) == 1 else f"{min(active)}..{max(active)}"
    return f"d {'-'.join(map(str, arch['d']))}, e {values('e')}, ks {values('ks')}, r {arch['r']}"


def render_demo(demo: dict) -> str:
    lines = ["| subnet | arch | MACs | params | test accuracy |", "|---|---|---|---|---|"]
    for row in demo["rows"]:
        lines.append(f"| {row['name']} | {arch_summary(row['arch'])} | {row['flops'] / 1e6:.2f} M | "
                     f"{row['params'] / 1e3:.0f} K | **{100 * row['test_accuracy']:.2f} %** |")
    return "\n".join(lines)


def render_search(s: dict) -> str:
    b, p = s["baselines"], s["picked"]
    def at(row):
        return f"{100 * row['accuracy']:.2f} % at {row['flops'] / 1e6:.2f} M"
    return (f"What search bought (same run, validation split): the largest arch reaches {at(b['largest'])} MACs "
            f"(over budget), the median arch {at(b['median'])}, the smallest {at(b['smallest'])}; the picked subnet "
            f"reaches **{at(p)} MACs**, inside the {s['budget']} budget.")


RENDER = {"demo": render_demo, "search": render_search}


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
def supernet(*args: str, cwd: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "supernet.cli", *args], capture_output=True, text=True, cwd=cwd)
    if result.returncode:
        raise SystemExit(f"supernet {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def eval_rows(lines: list[str]) -> list[dict]:
    rows = [json.loads(line) for line in lines if line.strip()]
    return [{"name": name, "arch": r["arch"], "flops": r["flops"], "params": r["params"],
             "test_accuracy": r["test_accuracy"]} for name, r in zip(("largest", "smallest"), rows)]


def measure_quick() -> dict:
    """Train, recalibrate and evaluate the quick configuration in a temp folder; its exact figures."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "quick"
        supernet("train", *QUICK, "--out", str(run), cwd=REPO)
        out = supernet("eval", str(run), "--arch", "largest", "--arch", "smallest", "--split", "test",
                       "--calib-batches", "1", cwd=REPO)
        losses = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
        last = [r for r in losses if "loss/largest" in r][-1]
    return {"command": "supernet train " + " ".join(QUICK), "rows": eval_rows(out.splitlines()),
            "last_step": last["step"], "last_loss_largest": last["loss/largest"]}


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
    """What differs between two quick results: counts exactly, the last loss to ``LOSS_RTOL``."""
    found = []
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
    return [f"README's {name} figures differ from docs/readme_figures.json; run `python scripts/readme_figures.py "
            f"render` (or re-measure with `make readme-figures`)"
            for name, render in RENDER.items() if name in figures and blocks.get(name) != render(figures[name])]


def check(quick: bool = True, same_commit: bool = True) -> list[str]:
    figures = json.loads(FIGURES.read_text())
    problems = check_readme(figures)
    if same_commit:
        problems += [f"the {name} figures come from commit {figures[name].get('commit')}, the quick ones from "
                     f"{figures['quick'].get('commit')}: re-measure them together with `make readme-figures`"
                     for name in RENDER if name in figures and figures[name].get("commit") != figures["quick"].get("commit")]
    if quick:
        found = differences(figures["quick"], measure_quick())
        if found:
            problems.append("the quick run no longer reproduces its stored figures, so the code's numerics changed and "
                            "README's figures are stale; re-measure with `make readme-figures`: " + "; ".join(found))
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="README figures == stored figures; the quick run reproduces its figures")
    c.add_argument("--no-quick", action="store_true", help="skip the quick run (only compare README and JSON)")
    sub.add_parser("render", help="rewrite README's figures from docs/readme_figures.json")
    u = sub.add_parser("update", help="measure: read the runs, run the quick run, write JSON and README")
    u.add_argument("--demo-run", required=True, help="the `make demo` run folder (with eval.jsonl)")
    u.add_argument("--search-run", help="the second example's search run folder")
    u.add_argument("--search-export", help="its `export --from-search` folder")
    args = parser.parse_args(argv)
    if args.command == "check":
        problems = check(quick=not args.no_quick)
        for p in problems:
            print(f"error: {p}", file=sys.stderr)
        print("README figures: ok" if not problems else "README figures: stale")
        return 1 if problems else 0
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    if args.command == "update":
        stamp = commit()
        run = Path(args.demo_run)
        steps = json.loads((run / "config.json").read_text())["total_steps"]
        figures["demo"] = {"command": "make demo", "commit": stamp, "steps": steps,
                           "rows": eval_rows((run / "eval.jsonl").read_text().splitlines())}
        if args.search_run:
            figures["search"] = {"command": "README second example", "commit": stamp,
                                 **read_search(Path(args.search_run), Path(args.search_export))}
        figures["quick"] = {**measure_quick(), "commit": stamp}
        FIGURES.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    README.write_text(with_blocks(README.read_text(), {n: r(figures[n]) for n, r in RENDER.items() if n in figures}))
    print(f"wrote {FIGURES.relative_to(REPO) if args.command == 'update' else ''} README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
