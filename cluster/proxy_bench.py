"""Proxy quality against a truth table: rho, tau, top-half rho and cost per proxy, next to the ceiling."""

from __future__ import annotations

import itertools
import os
import platform
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from results.truthtable import load_truth, replicate_rho, truth_targets
from search.errors import TruthError
from search.files import atomic_write, write_json
from search.proxies import Proxy, ProxyContext
from search.proxy_specs import Ensemble
from search.space import Arch, parse
from search.stats import Values, kendall, spearman, top_half_spearman


def run_proxies(
    proxies: Sequence[Proxy], archs: Sequence[Arch], ctx: ProxyContext, progress: Any = None
) -> dict[str, tuple[list[float], list[float]]]:
    """name -> (scores, seconds per arch); ensembles reuse components already computed."""
    done: dict[str, tuple[list[float], list[float]]] = {}
    for p in proxies:
        if isinstance(p, Ensemble):
            parts = [done.get(c.name) or c.score_many(archs, ctx) for c in p.components]
            for c, r in zip(p.components, parts, strict=True):
                done.setdefault(c.name, r)
            done[p.name] = Ensemble.of(parts)
        elif p.name not in done:
            done[p.name] = p.score_many(archs, ctx)
        if progress:
            progress(p.name, done[p.name])
    return {p.name: done[p.name] for p in proxies}


def summarise(scores: dict[str, tuple[list[float], list[float]]], truth: np.ndarray) -> dict[str, dict[str, float]]:
    out = {}
    for name, (s, secs) in scores.items():
        out[name] = {
            "spearman": spearman(s, truth),
            "kendall": kendall(s, truth),
            "spearman_top_half": top_half_spearman(s, truth),
            "seconds_per_arch": float(np.mean(secs)),
        }
    return out


def step_efficiency(summary: dict[str, dict[str, float]]) -> dict[str, dict[str, float | str | None]]:
    """For each ``gtn:k``: how many real-data steps give the same rho (log-interpolated on the real:k ladder).

    The paper's reading: GTN-128 ranks like real-1200, 9.4x fewer steps. ``None`` when the GTN rho lies
    outside the ladder's range (then ``bound`` says which side).
    """
    ladder = sorted(
        (int(n.split(":")[1]), m["spearman"])
        for n, m in summary.items()
        if n.startswith("real:") and m["spearman"] == m["spearman"]
    )
    out: dict[str, dict[str, float | str | None]] = {}
    for name, m in summary.items():
        if not name.startswith("gtn:") or len(ladder) < 2:
            continue
        k, rho = int(name.split(":")[1]), m["spearman"]
        equiv, bound = None, None
        for (s0, r0), (s1, r1) in itertools.pairwise(ladder):
            if min(r0, r1) <= rho <= max(r0, r1) and r0 != r1:
                t = (rho - r0) / (r1 - r0)
                equiv = float(np.exp(np.log(s0) + t * (np.log(s1) - np.log(s0))))
                break
        if equiv is None:
            bound = "below the ladder" if rho < ladder[0][1] else "above the ladder"
        out[name] = {
            "gtn_steps": k,
            "real_steps_same_rho": equiv,
            "step_ratio": equiv / k if equiv else None,
            "bound": bound,
        }
    return out


def table(
    summary: dict[str, dict[str, float]], ceiling: float | None = None, replicate: tuple[float, int] | None = None
) -> str:
    lines = [f"{'proxy':<28} {'rho':>7} {'tau':>7} {'top-half rho':>13} {'s/arch':>9}"]
    for name, m in summary.items():
        lines.append(
            f"{name:<28} {m['spearman']:>7.3f} {m['kendall']:>7.3f} {m['spearman_top_half']:>13.3f} "
            f"{m['seconds_per_arch']:>9.4f}"
        )
    if ceiling is not None:
        lines.append(f"{'ceiling (seed-to-seed)':<28} {ceiling:>7.3f}")
    if replicate is not None and replicate[1]:
        lines.append(f"{f'{replicate[1]}-seed mean vs another':<28} {replicate[0]:>7.3f}")
    return "\n".join(lines)


def scatter(
    path: str, name: str, proxy: Values, truth: Values, rho: float, tau: float, ylabel: str = "truth: mean val_acc"
) -> None:
    import matplotlib  # noqa: PLC0415  (lazy: matplotlib only to draw, with the Agg backend)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  (lazy: after matplotlib.use("Agg"))

    x, y = np.asarray(proxy, float), np.asarray(truth, float)
    keep = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(4.2, 3.4), dpi=110)
    ax.scatter(x[keep], y[keep], s=10, alpha=0.7)
    if keep.sum() > 1 and x[keep].min() > 0 and x[keep].max() / x[keep].min() > 1e3:
        ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{name}: rho={rho:.3f}, tau={tau:.3f}, n={int(keep.sum())}", fontsize=9)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def _machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def bench(
    truth_path: str,
    proxies: Sequence[Proxy],
    ctx: ProxyContext,
    out_dir: str,
    json_path: str | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Score every proxy on the truth's architectures; write JSON and one scatter PNG per proxy."""
    df, meta = load_truth(truth_path)
    names, target, ceiling = truth_targets(df)
    archs = [parse(a) for a in names]
    if len(archs) < 3:
        raise TruthError(f"{truth_path}: {len(archs)} architecture(s); rank correlations need at least 3")
    scores = run_proxies(proxies, archs, ctx, progress)
    summary = summarise(scores, target)
    os.makedirs(out_dir, exist_ok=True)
    for name, (s, _) in scores.items():
        m = summary[name]
        safe = name.replace(":", "_").replace("+", "_")
        scatter(os.path.join(out_dir, f"scatter_{safe}.png"), name, s, target, m["spearman"], m["kendall"])
    seconds_truth = float(df["seconds"].mean()) if "seconds" in df else float("nan")
    seeds = int(df["seed"].nunique())
    replicate, k = replicate_rho(df.to_dict("records"))
    # Spearman-Brown: how reliably the mean over all `seeds` runs (the target here) ranks, from the
    # split-half rho when there are two halves to compare, else from one run's rho.
    r, n = (replicate, 2) if k else (ceiling, seeds)
    target_reliability = n * r / (1 + (n - 1) * r) if r == r else float("nan")
    result = {
        "truth": os.path.basename(truth_path),
        "n_archs": len(archs),
        "seeds": seeds,
        "ceiling_spearman": ceiling,
        "replicate_spearman": replicate,
        "replicate_seeds": k,
        "target_reliability": target_reliability,
        "truth_seconds_per_run": seconds_truth,
        "budget_epochs": meta.get("budget_epochs"),
        "net": {"channels": ctx.net.channels, "cells": ctx.net.cells},
        "machine": _machine(),
        "proxies": summary,
        "gtn_step_efficiency": step_efficiency(summary),
    }
    write_json(json_path or os.path.join(out_dir, "proxies.json"), _no_nan(result), indent=2)
    return result


def _no_nan(v: Any) -> Any:
    """Strict JSON: NaN and infinities become null."""
    if isinstance(v, dict):
        return {k: _no_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_no_nan(x) for x in v]
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
