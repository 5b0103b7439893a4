"""Sections of ``bench_trust.py``'s JSON report (regret at MACs budgets, recipes over seeds), its
printed summary and scatter plot."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

REGRET_QUANTILES = (0.1, 0.3, 0.5, 0.7, 0.9)


def regret_budgets(costs) -> list[int]:
    """The MACs budgets of the regret table: the :data:`REGRET_QUANTILES` of the archs' MACs (each
    the MACs of one of them: numpy's ``lower`` quantile)."""
    return [int(b) for b in np.quantile(np.asarray(costs), REGRET_QUANTILES, method="lower")]


def regret(ranking: dict, truth: dict, cost: dict, budgets) -> dict:
    """Points lost by trusting ``ranking`` (arch key -> score, higher is better) under each budget.

    For budget ``b``, over the archs ``A_b = {a : cost_a <= b}`` that every table has:
    ``pick = argmax_{A_b} ranking`` (ties: the cheaper, then the key), ``best = argmax_{A_b} truth``,
    ``regret_b = 100 (truth_best - truth_pick)`` points (>= 0). ``mean_pt`` is the mean over budgets.
    """
    keys = sorted(set(ranking) & set(truth) & set(cost))
    rows = []
    for b in budgets:
        under = [k for k in keys if cost[k] <= b]
        if not under:
            continue
        pick = max(under, key=lambda k: (ranking[k], -cost[k], k))
        best = max(under, key=lambda k: truth[k])
        rows.append({"budget_flops": b, "n": len(under), "pick": pick, "best": best,
                     "regret_pt": 100.0 * (truth[best] - truth[pick])})
    values = [r["regret_pt"] for r in rows]
    return {"by_budget": rows, "mean_pt": float(np.mean(values)) if values else None,
            "max_pt": max(values) if values else None}


RECIPE_METRICS = {"largest_test": ("largest_test",), "smallest_test": ("smallest_test",),
                  "kendall_tau": ("vs_standalone_ce", "kendall_tau"), "mean_gap_pt": ("vs_standalone_ce", "mean_gap_pt"),
                  "mean_abs_gap_pt": ("vs_standalone_ce", "mean_abs_gap_pt"), "regret_pt": ("regret", "mean_pt")}


def recipes(runs: dict) -> dict:
    """Runs grouped by recipe (``NAME`` and its ``NAME-sN`` supernet seeds): per metric the mean,
    min and max over the recipe's runs."""
    groups: dict[str, list[str]] = {}
    for name in runs:
        seeded = re.fullmatch(r"(.+)-s[1-9][0-9]*", name)
        groups.setdefault(seeded.group(1) if seeded else name, []).append(name)
    out = {}
    for recipe, names in groups.items():
        out[recipe] = {"runs": names}
        for metric, path in RECIPE_METRICS.items():
            values = [_dig(runs[n], path) for n in names]
            values = [v for v in values if v is not None]
            if values:
                out[recipe][metric] = {"mean": float(np.mean(values)), "min": min(values), "max": max(values)}
    return out


def _dig(d: dict, path):
    for key in path:
        d = d.get(key) if isinstance(d, dict) else None
    return d


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
    for kd, ft in report.get("finetune_by_kd", {}).items():
        rows[f"ft-{kd}"] = {**ft, "val_vs_standalone_ce_test": {}}
    for name, r in rows.items():
        c, k, v = r["vs_standalone_ce"], r["vs_standalone_kd"], r["val_vs_standalone_ce_test"]
        print(f"{name:<11} {_fmt(r.get('largest_test'), '{:.4f}'):>8} {_fmt(r.get('smallest_test'), '{:.4f}'):>8} "
              f"{c['n']:>3} {_fmt(c.get('kendall_tau')):>6} {_fmt(c.get('spearman')):>6} "
              f"{_fmt(c.get('mean_gap_pt'), '{:.2f}'):>6} {_fmt(c.get('mean_abs_gap_pt'), '{:.2f}'):>6} "
              f"{_fmt(c.get('max_gap_pt'), '{:.2f}'):>6} {_fmt(k.get('kendall_tau')):>7} "
              f"{_fmt(k.get('mean_gap_pt'), '{:.2f}'):>7} {_fmt(v.get('kendall_tau')):>7}")
    for name, r in rows.items():
        if "vs_standalone_seed_mean" in r:
            c = r["vs_standalone_seed_mean"]
            print(f"{name:<11} vs the mean of {report['config']['seeds']} stand-alone seeds: tau "
                  f"{_fmt(c.get('kendall_tau'))}, mean gap {_fmt(c.get('mean_gap_pt'), '{:.2f}')} pt")
    print("gap = stand-alone minus supernet, points of test accuracy (positive: the supernet under-rates)")
    _print_regret(report, rows)
    _print_recipes(report.get("recipes", {}))


def _print_regret(report: dict, rows: dict) -> None:
    info = report.get("regret")
    if not info:
        return
    print(f"regret (points): the best stand-alone arch under each MACs budget minus the one ranked best by "
          f"{info['ranked_by']}; truth: {info['truth']}; target <= {_fmt(info['target_pt'], '{:.2f}')} pt")
    print(f"{'':<22}" + "".join(f"{b / 1e6:>8.2f}M" for b in info["budgets_flops"]) + f"{'mean':>9}")
    named = {name: r["regret"] for name, r in rows.items() if "regret" in r}
    named["largest under budget"] = info["largest_under_budget"]
    for name, reg in named.items():
        by = {r["budget_flops"]: r["regret_pt"] for r in reg["by_budget"]}
        print(f"{name:<22}" + "".join(f"{_fmt(by.get(b), '{:.2f}'):>9}" for b in info["budgets_flops"])
              + f"{_fmt(reg['mean_pt'], '{:.2f}'):>9}")


def _print_recipes(recipes_: dict) -> None:
    several = {n: r for n, r in recipes_.items() if len(r["runs"]) > 1}
    if not several:
        return
    print("recipes over supernet seeds: mean [min, max]")
    for name, r in several.items():
        cells = [f"{m} {_fmt(r[m]['mean'])} [{_fmt(r[m]['min'])}, {_fmt(r[m]['max'])}]"
                 for m in RECIPE_METRICS if m in r]
        print(f"  {name} ({len(r['runs'])} runs): " + "; ".join(cells))


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
