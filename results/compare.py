"""One experiment in a few numbers, for ``gtnnas compare``: best cell, how soon it was found, proxy rho."""

from __future__ import annotations

from typing import Any

from results.analysis import history, load, metadata, top
from search.stats import spearman


def summary(path: str) -> dict[str, Any]:
    """Best found, evaluations to reach it, wall time and proxy rho of one experiment."""
    df = load(path)
    meta = metadata(path)
    best = top(df, 1).iloc[0]
    hist = history(path)
    reach, evals, wall = None, None, None
    if not hist.empty and hist["best_val_acc"].notna().any():
        first = hist.loc[hist["best_val_acc"] >= best["val_acc"] - 1e-12].iloc[0]
        reach, evals, wall = int(first["trial"]), int(first["evaluation"]), float(hist["wall_s"].max())
    both = df.dropna(subset=["rung1_score", "val_acc"]) if "rung1_score" in df else df.iloc[:0]
    cfg = meta.get("config", {})
    return {
        "path": path,
        "experiments": int(df["experiment"].nunique()) if "experiment" in df else 1,
        "architectures": len(df),
        "trials": int(hist.groupby("experiment")["trial"].max().sum()) if not hist.empty else None,
        "best_val_acc": float(best["val_acc"]),
        "best_test_acc": _float(best.get("test_acc")),
        "best_arch": str(best["arch"]),
        "trials_to_best": reach,
        "evaluations_to_best": evals,
        "wall_s": wall,
        "proxy_rho": spearman(both["rung1_score"], both["val_acc"]) if len(both) >= 2 else None,
        "proxy_rho_n": len(both),
        "searcher": cfg.get("search", {}).get("searcher"),
        "scheduler": cfg.get("search", {}).get("scheduler"),
        "dataset": cfg.get("data", {}).get("dataset"),
        "config_hash": meta.get("config_hash"),
    }


def _float(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f
