"""Rank statistics without scipy: the numbers every proxy and report is judged by."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Values = Sequence[float] | np.ndarray  # numbers in order: a list, a column, an array


def ranks(x: Values) -> np.ndarray:
    """0-based ranks, ties sharing their average rank (scipy.stats.rankdata minus one); O(n log n).

    NaN ranks above everything (as in numpy's sort); callers that mean "worst" pass -inf instead.
    """
    v = np.asarray(x, float)
    if len(v) == 0:
        return np.zeros(0)
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True, equal_nan=True)
    start = np.cumsum(counts) - counts
    return (start + (counts - 1) / 2.0)[inverse.reshape(-1)]


def _finite_pairs(a: Values, b: Values) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape:
        raise ValueError(f"need two sequences of the same length, got {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def spearman(a: Values, b: Values) -> float:
    """Spearman's rho: Pearson correlation of average ranks. NaN pairs are dropped; -inf ranks lowest."""
    x, y = _finite_pairs(a, b)
    if len(x) < 2:
        return float("nan")
    ra, rb = ranks(x), ranks(y)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def kendall(a: Values, b: Values) -> float:
    """Kendall's tau-b (ties in either sequence allowed) in O(n log n), Knight's algorithm.

    Works on ranks, so -inf scores (a proxy's "worst") tie with each other instead of making NaN.
    """
    x, y = _finite_pairs(a, b)
    n = len(x)
    if n < 2:
        return float("nan")
    rx, ry = ranks(x), ranks(y)
    order = np.lexsort((ry, rx))  # by a, then b
    rx, ry = rx[order], ry[order]
    n0 = n * (n - 1) / 2
    n1 = _tied_pairs(rx)
    n3 = _tied_pairs(rx + 1j * ry)  # joint ties
    swaps = _count_inversions(ry)
    n2 = _tied_pairs(ry)
    denom = np.sqrt((n0 - n1) * (n0 - n2))
    if denom == 0:
        return float("nan")
    return float((n0 - n1 - n2 + n3 - 2 * swaps) / denom)


def _tied_pairs(x: np.ndarray) -> float:
    _, counts = np.unique(x, return_counts=True)
    return float((counts * (counts - 1) / 2).sum())


def _count_inversions(x: np.ndarray) -> int:
    """Pairs i < j with x[i] > x[j], by bottom-up merge sort (numpy within each merge)."""
    x = np.asarray(x, float).copy()
    n, width, inversions = len(x), 1, 0
    while width < n:
        for lo in range(0, n - width, 2 * width):
            mid, hi = lo + width, min(lo + 2 * width, n)
            left, right = x[lo:mid], x[mid:hi]
            inversions += int((len(left) - np.searchsorted(left, right, side="right")).sum())
            x[lo:hi] = np.sort(np.concatenate([left, right]), kind="mergesort")
        width *= 2
    return inversions


def top_half_spearman(proxy: Values, truth: Values) -> float:
    """Spearman rho over the architectures in the top half by proxy score: does it rank the good ones?"""
    p, t = _finite_pairs(proxy, truth)
    if len(p) < 4:
        return float("nan")
    keep = ranks(p) >= (len(p) - 1) / 2.0
    return spearman(p[keep], t[keep])


# Two-sided 97.5% quantiles of Student's t for 1-30 degrees of freedom (beyond: the normal's 1.960).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def mean_interval(values: Values) -> tuple[float, float] | None:
    """95% t interval of the mean of a few runs (seeds); None under two values."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return None
    t = _T975[len(v) - 2] if len(v) - 1 <= len(_T975) else 1.960
    h = t * float(v.std(ddof=1)) / np.sqrt(len(v))
    return float(v.mean() - h), float(v.mean() + h)


def rho_interval(rho: float, n: int) -> tuple[float, float] | None:
    """Approximate 95% interval of a Spearman rho over ``n`` pairs (Fisher z with Bonett and Wright's
    variance, (1 + rho^2 / 2) / (n - 3)); None under 4 pairs or for a NaN rho."""
    if n < 4 or rho != rho:
        return None
    r = float(np.clip(rho, -0.9999, 0.9999))
    half = 1.960 * np.sqrt((1 + r * r / 2) / (n - 3))
    return float(np.tanh(np.arctanh(r) - half)), float(np.tanh(np.arctanh(r) + half))
