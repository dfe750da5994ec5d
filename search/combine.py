"""A calibrated combination of cheap scores: the GTN score with zero-cost proxies (ours).

Each component is put on a comparable scale (size-like proxies as logarithms, then standardised)
and the combination is a ridge regression of real accuracy on them. The weights are fitted on cells
whose real accuracy is known: offline on the truth table's tuning split, or online during a search
on the real rungs it already ran (:class:`Calibrator.fit` on the actor's pairs). Until enough pairs
exist the combination uses fixed fallback weights. numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import InputError

LOG = ("params", "flops", "synflow")  # heavy-tailed: compared on a log scale
COMPONENTS = ("gtn", "params", "flops", "synflow", "naswot", "jacob_cov")
MIN_PAIRS = 20  # online refits start once this many cells have a real score


def parse_components(spec: str) -> tuple[str, ...]:
    """``calibrated:gtn+params`` -> ("gtn", "params"); one clear error for anything else."""
    kind, _, rest = spec.partition(":")
    parts = tuple(p for p in rest.split("+") if p)
    if kind != "calibrated" or not parts or any(p not in COMPONENTS for p in parts) or len(set(parts)) < len(parts):
        raise InputError(f"{spec!r}: expected calibrated:A+B with distinct components from {', '.join(COMPONENTS)}")
    return parts


def transform(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    v = np.asarray(values, float)
    if name in LOG:
        v = np.log(np.maximum(v, 1e-300))
    return np.where(np.isfinite(v), v, np.nan)


@dataclass(frozen=True)
class Calibrator:
    components: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    weights: tuple[float, ...]

    @classmethod
    def fallback(cls, components: Sequence[str], scales: Mapping[str, tuple[float, float]] | None = None) -> Calibrator:
        """Equal weights on standardised components; ``scales`` gives (mean, std) per component if known."""
        scales = scales or {}
        mean = tuple(scales.get(c, (0.0, 1.0))[0] for c in components)
        std = tuple(scales.get(c, (0.0, 1.0))[1] for c in components)
        return cls(tuple(components), mean, std, tuple(1.0 / len(components) for _ in components))

    @classmethod
    def fit(cls, components: Sequence[str], values: Mapping[str, Sequence[float]], target: Sequence[float],
            ridge: float = 1.0) -> Calibrator:
        """Least squares of ``target`` on the standardised components, shrunk towards zero by ``ridge``."""
        x = np.column_stack([transform(c, values[c]) for c in components])
        y = np.asarray(target, float)
        keep = np.isfinite(x).all(axis=1) & np.isfinite(y)
        x, y = x[keep], y[keep]
        if len(y) < 3:
            raise ValueError("a calibration needs at least 3 cells with every component and a real score")
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        z = (x - mean) / std
        yc = y - y.mean()
        w = np.linalg.solve(z.T @ z + ridge * np.eye(len(components)), z.T @ yc)
        return cls(tuple(components), tuple(map(float, mean)), tuple(map(float, std)), tuple(map(float, w)))

    def score(self, values: Mapping[str, Sequence[float]]) -> np.ndarray:
        """The combined score of each cell (higher is better); a missing component counts as average."""
        total = 0.0
        for c, m, s, w in zip(self.components, self.mean, self.std, self.weights):
            z = (transform(c, values[c]) - m) / s
            total = total + w * np.nan_to_num(z, nan=0.0)
        return np.asarray(total, float)
