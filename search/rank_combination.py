"""A combination of cheap scores on rank scales: the GTN score with zero-cost proxies (ours).

Each component, and the real accuracy it is fitted to, is put on a rank scale: its position among
the cells the combination was fitted on (mid-rank empirical CDF, centred, unit variance). The
combination weights the component ranks equally (:meth:`RankCombination.equal`: what a search uses) or
by a ridge regression of real-accuracy ranks on them (:meth:`RankCombination.fit`: studied offline on the
truth table, ``benchmarks/score_choice.py``, where fewer than 60 fitted cells rank worse than equal
weights). Ranks, because the aim is ordering and because raw values let a few dead cells (10%
accuracy, extreme proxy values) dominate a least-squares fit: on the Fashion-MNIST tuning split a
raw-value fit gave params a negative weight and ranked at 0.52 where the rank ensemble reached 0.86.
numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .components import LOG_SCALE


def transform(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, float)
    if name in LOG_SCALE:
        v = np.log(np.maximum(v, 1e-300))
    return np.where(np.isfinite(v), v, np.nan)


def rank_scale(refs: np.ndarray, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Mid-rank of each value among the sorted finite ``refs``, centred with unit variance; NaN -> 0."""
    v = np.asarray(values, float)
    if len(refs) == 0:
        return np.zeros_like(v)
    u = (np.searchsorted(refs, v, "left") + np.searchsorted(refs, v, "right")) / (2.0 * len(refs))
    return np.where(np.isnan(v), 0.0, (u - 0.5) * np.sqrt(12.0))


def _refs(name: str, values: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    v = transform(name, values)
    return tuple(float(x) for x in np.sort(v[np.isfinite(v)]))


@dataclass(frozen=True)
class RankCombination:
    components: tuple[str, ...]
    refs: tuple[tuple[float, ...], ...]  # per component: the sorted values its ranks are taken among
    weights: tuple[float, ...]

    @classmethod
    def equal(cls, components: Sequence[str], seen: Mapping[str, Sequence[float]] | None = None) -> RankCombination:
        """Equal weights on component ranks among the values ``seen`` so far (none: every cell average)."""
        seen = seen or {}
        refs = tuple(_refs(c, seen.get(c, ())) for c in components)
        return cls(tuple(components), refs, tuple(1.0 / len(components) for _ in components))

    @classmethod
    def fit(
        cls,
        components: Sequence[str],
        values: Mapping[str, Sequence[float]],
        target: Sequence[float],
        ridge: float = 1.0,
    ) -> RankCombination:
        """Least squares of the target's ranks on the components' ranks, shrunk towards zero by ``ridge``."""
        x = np.column_stack([transform(c, values[c]) for c in components])
        y = np.asarray(target, float)
        keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if len(y) < 3:
            raise ValueError("a ridge fit needs at least 3 cells with every component and a real score")
        refs = tuple(tuple(float(v) for v in np.sort(x[:, i])) for i in range(len(components)))
        z = np.column_stack([rank_scale(np.asarray(r), x[:, i]) for i, r in enumerate(refs)])
        zy = rank_scale(np.sort(y), y)
        w = np.linalg.solve(z.T @ z + ridge * np.eye(len(components)), z.T @ zy)
        return cls(tuple(components), refs, tuple(map(float, w)))

    def combine(self, values: Mapping[str, Sequence[float]]) -> np.ndarray:
        """The combined score of each cell (higher is better); a missing component counts as average."""
        total: float | np.ndarray = 0.0
        for c, r, w in zip(self.components, self.refs, self.weights, strict=True):
            total = total + w * rank_scale(np.asarray(r), transform(c, values[c]))
        return np.asarray(total, float)
