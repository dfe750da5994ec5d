"""Rank statistics without scipy: the numbers every proxy and report is judged by."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def ranks(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """0-based ranks, ties sharing their average rank (what scipy.stats.rankdata does, minus one)."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x), float)
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):
        tie = x == v
        if tie.sum() > 1:
            r[tie] = r[tie].mean()
    return r


def _finite_pairs(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        raise ValueError(f"need two sequences of the same length, got {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho: Pearson correlation of average ranks. NaN pairs are dropped; -inf ranks lowest."""
    a, b = _finite_pairs(a, b)
    if len(a) < 2:
        return float("nan")
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (accounts for ties in either sequence), O(n^2) which is fine below ~10^4."""
    a, b = _finite_pairs(a, b)
    n = len(a)
    if n < 2:
        return float("nan")
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    iu = np.triu_indices(n, 1)
    da, db = da[iu], db[iu]
    s = float((da * db).sum())
    n_a, n_b = float((da != 0).sum()), float((db != 0).sum())
    if n_a == 0 or n_b == 0:
        return float("nan")
    return s / np.sqrt(n_a * n_b)


def top_half_spearman(proxy: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman rho over the architectures in the top half by proxy score: does it rank the good ones?"""
    p, t = _finite_pairs(proxy, truth)
    if len(p) < 4:
        return float("nan")
    keep = ranks(p) >= (len(p) - 1) / 2.0
    return spearman(p[keep], t[keep])
