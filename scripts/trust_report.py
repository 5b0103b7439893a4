"""Printed summary and scatter plot of ``bench_trust.py``'s JSON report."""
from __future__ import annotations

from pathlib import Path


def _fmt(value, pattern="{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def print_summary(report: dict) -> None:
    """One line per run: largest / smallest accuracy, tau, rho, gaps vs stand-alone (CE and KD)."""
    sa = report["standalone"]
    print(f"stand-alone ({report['supernet_steps']} steps): largest {_fmt(sa['largest_ce'], '{:.4f}')}, "
          f"smallest {_fmt(sa['smallest_ce'], '{:.4f}')}")
    if "seed_to_seed" in sa:
        print(f"stand-alone seed-to-seed: tau {_fmt(sa['seed_to_seed'].get('kendall_tau'))}, mean |gap| "
              f"{_fmt(sa['seed_to_seed'].get('mean_abs_gap_pt'), '{:.2f}')} pt (the noise floor)")
    print(f"{'run':<11} {'largest':>8} {'smallest':>8} {'n':>3} {'tau':>6} {'rho':>6} {'gap':>6} {'|gap|':>6} "
          f"{'max':>6} {'tau(kd)':>7} {'gap(kd)':>7} {'tau val':>7}")
    rows = dict(report["runs"])
    if "finetune" in report:
        rows["finetuned"] = {"vs_standalone_ce": report["finetune"]["vs_standalone_ce"],
                             "vs_standalone_kd": report["finetune"]["vs_standalone_kd"], "val_vs_standalone_ce_test": {}}
    for name, r in rows.items():
        c, k, v = r["vs_standalone_ce"], r["vs_standalone_kd"], r["val_vs_standalone_ce_test"]
        print(f"{name:<11} {_fmt(r.get('largest_test'), '{:.4f}'):>8} {_fmt(r.get('smallest_test'), '{:.4f}'):>8} "
              f"{c['n']:>3} {_fmt(c.get('kendall_tau')):>6} {_fmt(c.get('spearman')):>6} "
              f"{_fmt(c.get('mean_gap_pt'), '{:.2f}'):>6} {_fmt(c.get('mean_abs_gap_pt'), '{:.2f}'):>6} "
              f"{_fmt(c.get('max_gap_pt'), '{:.2f}'):>6} {_fmt(k.get('kendall_tau')):>7} "
              f"{_fmt(k.get('mean_gap_pt'), '{:.2f}'):>7} {_fmt(v.get('kendall_tau')):>7}")
    means = {n: r["vs_standalone_seed_mean"] for n, r in report["runs"].items() if "vs_standalone_seed_mean" in r}
    if "vs_standalone_seed_mean" in report.get("finetune", {}):
        means["finetuned"] = report["finetune"]["vs_standalone_seed_mean"]
    for name, c in means.items():
        print(f"{name:<11} vs the mean of {report['config']['seeds']} stand-alone seeds: tau "
              f"{_fmt(c.get('kendall_tau'))}, mean gap {_fmt(c.get('mean_gap_pt'), '{:.2f}')} pt")
    print("gap = stand-alone minus supernet, points of test accuracy (positive: the supernet under-rates)")


def plot(report: dict, path: str) -> None:
    """Stand-alone (x) vs supernet (y) test accuracy per arch: default run, after fine-tuning, y = x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from supernet.io.files import atomic_file
    rows = [r for r in report["per_arch"] if r["standalone_ce"] is not None]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    x = [100 * r["standalone_ce"] for r in rows]
    series = [("supernet (BN recalibrated)", [r["supernet"].get("default") for r in rows], "o"),
              ("after finetune", [r["finetuned"] for r in rows], "x")]
    flops = [r["flops"] / 1e6 for r in rows]
    for label, ys, marker in series:
        pts = [(a, 100 * b, f) for a, b, f in zip(x, ys, flops) if b is not None]
        if pts:
            sc = ax.scatter([p[0] for p in pts], [p[1] for p in pts], c=[p[2] for p in pts], marker=marker,
                            cmap="viridis", label=label, s=28)
    lo, hi = min(x) - 0.5, max(x) + 0.5
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    ax.set_xlabel("stand-alone test accuracy (%)")
    ax.set_ylabel("test accuracy without retraining (%)")
    run = report["runs"].get("default", {}).get("vs_standalone_ce", {})
    ax.set_title(f"MNIST-1D, {len(rows)} archs: tau {_fmt(run.get('kendall_tau'), '{:.2f}')}, "
                 f"mean gap {_fmt(run.get('mean_gap_pt'), '{:.2f}')} pt", fontsize=10)
    fig.colorbar(sc, ax=ax, label="MMACs")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
