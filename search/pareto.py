"""The maths of multi-objective search: objectives and cost limits parsed once, Pareto ranks, NSGA-II's
crowding distance and order, and the exact hypervolume. numpy only.

Everything below works on an (n, k) array of objective values in their own units and senses, with one
mode per column (``"min"`` or ``"max"``); :func:`minimised` turns it into the one space the maths uses.
A row with a NaN (a trial that failed or has not reported a metric) ranks below every finite row
instead of poisoning the comparisons, and adds nothing to a hypervolume.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import InputError

Mode = Literal["min", "max"]
Op = Literal["<=", "<", ">=", ">"]
METRICS: dict[str, Mode] = {  # what an objective can name -> its natural sense (the default)
    "val_acc": "max",
    "test_acc": "max",
    "score": "max",
    "params": "min",
    "flops": "min",
    "latency_ms": "min",
}
COSTS = ("params", "flops", "latency_ms")  # what a constraint can bound
MODES: tuple[Mode, ...] = ("min", "max")
OPS: tuple[Op, ...] = ("<=", "<", ">=", ">")
_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}
Points = Sequence[Sequence[float]] | np.ndarray  # n rows of k objective values


@dataclass(frozen=True)
class Objective:
    name: str
    mode: Mode


def parse_objectives(text: str) -> tuple[Objective, ...]:
    """``"val_acc:max,latency_ms:min"`` (a mode left out is the metric's natural one); one objective is
    a single-objective search."""
    items = [s.strip() for s in text.split(",")]
    if not text.strip():
        raise InputError("no objectives given: expected e.g. val_acc:max,params:min")
    out: list[Objective] = []
    for item in items:
        name, colon, mode = (s.strip() for s in item.partition(":"))
        if not name:
            raise InputError(f"objectives {text!r}: an empty objective in {item!r}")
        if name not in METRICS:
            raise InputError(f"unknown objective {name!r}: expected one of {', '.join(METRICS)}")
        if not colon:
            mode = METRICS[name]
        if mode not in MODES:
            raise InputError(f"objective {item!r}: mode {mode!r} is not min or max")
        if any(o.name == name for o in out):
            raise InputError(f"objective {name!r} given twice in {text!r}")
        out.append(Objective(name, next(m for m in MODES if m == mode)))
    return tuple(out)


@dataclass(frozen=True)
class Constraint:
    """A bound on a cost; a NaN cost (not measured) breaks every bound."""

    name: str
    op: Op
    value: float

    def holds(self, value: float) -> bool:
        return bool(_COMPARE[self.op](float(value), self.value))

    def describe(self) -> str:
        return f"{self.name}{self.op}{self.value:.12g}"


_CONSTRAINT = re.compile(r"^([A-Za-z_]\w*)\s*(<=|>=|<|>)(.*)$")


def parse_constraints(text: str) -> tuple[Constraint, ...]:
    """``"params<=60000,latency_ms<=1.5"``; empty text is no constraint. A cost may be bounded twice (a range)."""
    if not text.strip():
        return ()
    out: list[Constraint] = []
    for item in (s.strip() for s in text.split(",")):
        m = _CONSTRAINT.match(item)
        if not m:
            raise InputError(f"constraint {item!r}: expected NAME<=NUMBER (or <, >=, >), e.g. params<=60000")
        name, op, raw = m.group(1), m.group(2), m.group(3).strip()
        if name not in COSTS:
            raise InputError(f"constraint {item!r}: unknown cost {name!r}, expected one of {', '.join(COSTS)}")
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"constraint {item!r}: bound {raw!r} is not a number") from None
        if not np.isfinite(value):
            raise InputError(f"constraint {item!r}: bound {raw!r} is not a finite number")
        if value < 0:
            raise InputError(f"constraint {item!r}: bound {raw} is negative (costs are not)")
        out.append(Constraint(name, next(o for o in OPS if o == op), value))
    return tuple(out)


def violations(constraints: Sequence[Constraint], costs: Mapping[str, float]) -> list[str]:
    """What each broken constraint says, with the value it had: ``["params<=60000 (has 81234)"]``."""
    out = []
    for c in constraints:
        if c.name not in costs:  # the caller measures every bounded cost: a gap is a bug, not bad input
            raise ValueError(f"no {c.name!r} cost to check {c.describe()} against")
        if not c.holds(costs[c.name]):
            out.append(f"{c.describe()} (has {float(costs[c.name]):.12g})")
    return out


def minimised(points: Points, modes: Sequence[str]) -> np.ndarray:
    """A float (n, k) copy with "max" columns negated, so that lower is better everywhere.

    A row with any NaN becomes +inf throughout: every row with a finite value dominates it, so NaN rows
    share the worst rank (one below the worst finite row's) and add no hypervolume.
    """
    p = np.array(points, float)
    if p.ndim != 2 or p.shape[1] != len(modes) or len(modes) == 0:
        raise ValueError(f"need an (n, {len(modes)}) array of objective values, got shape {p.shape}")
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"modes must be min or max, got {bad[0]!r}")
    p[:, np.asarray(modes) == "max"] *= -1.0
    p[np.isnan(p).any(axis=1)] = np.inf
    return p


def _dominates(p: np.ndarray) -> np.ndarray:
    """d[i, j]: row i is no worse than row j everywhere and better somewhere (p minimised); O(k n^2)."""
    n = len(p)
    no_worse, better = np.ones((n, n), bool), np.zeros((n, n), bool)
    for col in p.T:
        no_worse &= col[:, None] <= col[None, :]
        better |= col[:, None] < col[None, :]
    return no_worse & better


def non_dominated_ranks(points: Points, modes: Sequence[str]) -> np.ndarray:
    """Pareto rank of each row, 0 on the front (NSGA-II's fast non-dominated sort, Deb et al. 2002).

    O(k n^2) time and O(n^2) memory: a few thousand rows is fine. Duplicate rows share a rank.
    """
    d = _dominates(minimised(points, modes))
    dominated_by = d.sum(axis=0)
    ranks = np.full(len(d), -1, dtype=np.int64)
    front, r = np.flatnonzero(dominated_by == 0), 0
    while front.size:
        ranks[front] = r
        dominated_by = dominated_by - d[front].sum(axis=0)
        front, r = np.flatnonzero((dominated_by == 0) & (ranks < 0)), r + 1
    return ranks


def crowding_distance(points: Points, modes: Sequence[str], ranks: Sequence[int] | np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance, within each rank: per objective, the gap between a row's neighbours
    divided by the rank's range in that objective, summed.

    The first and last rows of each objective's order (ties in the order of the rows) get inf, as does
    every row of a rank with at most two; a range that is 0 or not finite adds nothing else.
    """
    p = minimised(points, modes)
    r = np.asarray(ranks)
    if r.shape != (len(p),):
        raise ValueError(f"need one rank per row: {len(p)} rows, ranks of shape {r.shape}")
    out = np.zeros(len(p))
    for rank in np.unique(r):
        idx = np.flatnonzero(r == rank)
        if len(idx) <= 2:
            out[idx] = np.inf
            continue
        dist = np.zeros(len(idx))
        for col in p[idx].T:
            order = np.argsort(col, kind="stable")
            lo, hi = col[order[0]], col[order[-1]]
            if np.isfinite(lo) and np.isfinite(hi) and hi > lo:
                dist[order[1:-1]] += (col[order[2:]] - col[order[:-2]]) / (hi - lo)
            dist[order[[0, -1]]] = np.inf
        out[idx] = dist
    return out


def nsga2_order(points: Points, modes: Sequence[str]) -> np.ndarray:
    """Row indices best first: rank ascending, then crowding descending, then index (what NSGA-II keeps)."""
    ranks = non_dominated_ranks(points, modes)
    crowd = crowding_distance(points, modes, ranks)
    return np.lexsort((np.arange(len(ranks)), -crowd, ranks))


def pareto_front(points: Points, modes: Sequence[str]) -> np.ndarray:
    """True for the rows no other row dominates."""
    return non_dominated_ranks(points, modes) == 0


def hypervolume(points: Points, modes: Sequence[str], reference: Sequence[float] | np.ndarray) -> float:
    """The exact volume dominated by the rows and bounded by ``reference`` (in the rows' own units and senses).

    Only rows strictly better than the reference in every objective count. One objective: the distance
    from the best row to the reference. Two: a sort and sweep, O(n log n). Three or more: slices along
    the last objective, each an exact hypervolume one dimension down (Hypervolume by Slicing Objectives,
    While et al. 2006): O(n^(k-1) log n), so about n^2 log n for three objectives.
    """
    p = minimised(points, modes)
    ref = np.asarray(reference, float)
    if ref.shape != (len(modes),) or np.isnan(ref).any():
        raise ValueError(f"need a reference of {len(modes)} numbers, got {reference!r}")
    ref = minimised(ref[None, :], modes)[0]
    return _hv(p[(p < ref).all(axis=1)], ref)


def _hv(p: np.ndarray, ref: np.ndarray) -> float:
    """Hypervolume of minimised rows that are all strictly below ``ref``."""
    if len(p) == 0:
        return 0.0
    if p.shape[1] == 1:
        return float(ref[0] - p[:, 0].min())
    if p.shape[1] == 2:
        order = np.lexsort((p[:, 1], p[:, 0]))
        x, y = p[order, 0], p[order, 1]
        best_before = np.concatenate(([np.inf], np.minimum.accumulate(y)[:-1]))
        step = y < best_before  # the staircase: each row lower than every row to its left
        x, y = x[step], y[step]
        return float(np.sum(np.diff(np.append(x, ref[0])) * (ref[1] - y)))
    order = np.argsort(p[:, -1], kind="stable")
    z = p[order, -1]
    tops = np.append(z[1:], ref[-1])
    total = 0.0
    for i in range(len(order)):
        if tops[i] > z[i]:
            total += float(tops[i] - z[i]) * _hv(p[order[: i + 1], :-1], ref[:-1])
    return total
