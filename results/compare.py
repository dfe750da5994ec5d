"""One experiment in a few numbers, for ``gtnnas compare``: best cell, how soon it was found, proxy rho;
and two experiments' Pareto fronts measured against each other by hypervolume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from results.analysis import front_objectives, history, load, metadata, top
from results.leaderboard import objectives_of, pareto_ranks
from search.errors import InputError
from search.pareto import Objective, hypervolume, minimised, parse_objectives
from search.stats import spearman

FALLBACK = "val_acc:max,params:min"  # the fronts compared when the experiments' own objectives differ or are one


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


def fronts(path_a: str, path_b: str) -> dict[str, Any]:
    """Both experiments' fronts under one set of objectives and one reference point.

    The objectives are the experiments' ``search.objectives`` when both have the same two or more, else
    ``val_acc:max,params:min``. The reference is the worst value of each objective over both experiments'
    rows; each hypervolume is a share of the box from the best to that worst value (both use the same
    box, so they compare directly). ``dominated`` is how many of a front's cells the other front dominates.
    """
    own = {parse_objectives(objectives_of(metadata(p))) for p in (path_a, path_b)}
    shared = own.pop() if len(own) == 1 else ()
    text = ",".join(f"{o.name}:{o.mode}" for o in shared) if len(shared) >= 2 else FALLBACK
    dfs = [load(path_a), load(path_b)]
    try:
        objs = front_objectives(text, sorted(set(dfs[0].columns) & set(dfs[1].columns)), "compare")
    except InputError as e:  # e.g. a table without params: the rest of the comparison still stands
        return {"objectives": text, "reference": None, "a": None, "b": None, "dominates_more": None, "note": str(e)}
    names, modes = [o.name for o in objs], [o.mode for o in objs]
    points = [_front_points(df, objs) for df in dfs]
    everything = np.vstack([_points(df, names) for df in dfs])
    out: dict[str, Any] = {"objectives": ",".join(f"{o.name}:{o.mode}" for o in objs)}
    if not len(everything):
        return {**out, "reference": None, "a": None, "b": None, "dominates_more": None}
    low = minimised(everything, modes)
    worst, best = low.max(axis=0), low.min(axis=0)
    box = float(np.prod(np.where(worst > best, worst - best, 1.0)))
    reference = np.where(np.asarray(modes) == "max", -worst, worst)
    sides = {}
    for side, mine, other in (("a", points[0], points[1]), ("b", points[1], points[0])):
        hv = hypervolume(mine, modes, reference) / box if len(mine) else 0.0
        sides[side] = {"front_size": len(mine), "front_hv": hv, "dominated": _dominated(mine, other, modes)}
    a, b = sides["a"], sides["b"]
    share_a = b["dominated"] / max(b["front_size"], 1)  # of B's front, the share A's front dominates
    share_b = a["dominated"] / max(a["front_size"], 1)
    more = "A" if share_a > share_b else "B" if share_b > share_a else None
    if more is None and a["front_hv"] != b["front_hv"]:
        more = "A" if a["front_hv"] > b["front_hv"] else "B"
    return {**out, "reference": [float(v) for v in reference], **sides, "dominates_more": more or "neither"}


def _points(df: Any, names: list[str]) -> np.ndarray:
    values = df[names].to_numpy(dtype=float, na_value=np.nan)
    return values[np.isfinite(values).all(axis=1)]


def _front_points(df: Any, objs: tuple[Objective, ...]) -> np.ndarray:
    ranks = pareto_ranks(df, objs)
    return _points(df[ranks.eq(0).fillna(False).to_numpy(bool)], [o.name for o in objs])


def _dominated(mine: np.ndarray, other: np.ndarray, modes: Sequence[str]) -> int:
    """How many rows of ``mine`` some row of ``other`` dominates."""
    if not len(mine) or not len(other):
        return 0
    m, o = minimised(mine, modes), minimised(other, modes)
    no_worse = (o[:, None, :] <= m[None, :, :]).all(axis=2)
    better = (o[:, None, :] < m[None, :, :]).any(axis=2)
    return int((no_worse & better).any(axis=0).sum())
