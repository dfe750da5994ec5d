"""Rank statistics on scipy: the numbers every proxy and report is judged by.

Thin wrappers that fix the project's conventions in one place: NaN pairs are dropped, a constant input
gives NaN (no warning), ranks are 0-based, and callers that mean "worst" pass -inf, which ranks lowest
(scipy ranks -inf as a value). scipy.stats costs about 0.3 s to import, so it is imported inside each
function: ``gtnnas leaderboard --help`` and the other results commands import this module without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Values = Sequence[float] | np.ndarray  # numbers in order: a list, a column, an array


def ranks(x: Values) -> np.ndarray:
    """0-based ranks, ties sharing their average rank (``scipy.stats.rankdata`` minus one).

    -inf ranks lowest; a NaN entry gets a NaN rank (callers that mean "worst" pass -inf instead).
    """
    from scipy.stats import rankdata  # noqa: PLC0415 (scipy.stats: ~0.3 s, see the module docstring)

    v = np.asarray(x, float)
    if len(v) == 0:
        return np.zeros(0)
    return np.asarray(rankdata(v, nan_policy="omit"), float) - 1.0


def _finite_pairs(a: Values, b: Values) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, float), np.asarray(b, float)
    if x.shape != y.shape:
        raise ValueError(f"need two sequences of the same length, got {x.shape} and {y.shape}")
    keep = ~(np.isnan(x) | np.isnan(y))
    return x[keep], y[keep]


def _defined(x: np.ndarray, y: np.ndarray) -> bool:
    """At least two pairs and neither side constant (a correlation is NaN otherwise)."""
    return len(x) >= 2 and len(np.unique(x)) > 1 and len(np.unique(y)) > 1


def spearman(a: Values, b: Values) -> float:
    """Spearman's rho (``scipy.stats.spearmanr``, average ranks for ties). NaN pairs are dropped; -inf ranks
    lowest."""
    from scipy.stats import spearmanr  # noqa: PLC0415 (scipy.stats: ~0.3 s, see the module docstring)

    x, y = _finite_pairs(a, b)
    if not _defined(x, y):
        return float("nan")
    return float(spearmanr(x, y).statistic)


def kendall(a: Values, b: Values) -> float:
    """Kendall's tau-b (``scipy.stats.kendalltau``; ties in either sequence allowed). NaN pairs are dropped;
    -inf scores (a proxy's "worst") tie with each other and rank lowest."""
    from scipy.stats import kendalltau  # noqa: PLC0415 (scipy.stats: ~0.3 s, see the module docstring)

    x, y = _finite_pairs(a, b)
    if not _defined(x, y):
        return float("nan")
    return float(kendalltau(x, y, variant="b").statistic)


def top_half_spearman(proxy: Values, truth: Values) -> float:
    """Spearman rho over the architectures in the top half by proxy score: does it rank the good ones?"""
    p, t = _finite_pairs(proxy, truth)
    if len(p) < 4:
        return float("nan")
    keep = ranks(p) >= (len(p) - 1) / 2.0
    return spearman(p[keep], t[keep])


def t_quantile(q: float, df: int) -> float:
    """Student's t quantile (``scipy.stats.t.ppf``)."""
    from scipy.stats import t  # noqa: PLC0415 (scipy.stats: ~0.3 s, see the module docstring)

    return float(t.ppf(q, df))


def mean_interval(values: Values) -> tuple[float, float] | None:
    """95% t interval of the mean of a few runs (seeds); None under two values."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return None
    h = t_quantile(0.975, len(v) - 1) * float(v.std(ddof=1)) / np.sqrt(len(v))
    return float(v.mean() - h), float(v.mean() + h)


def rho_interval(rho: float, n: int) -> tuple[float, float] | None:
    """Approximate 95% interval of a Spearman rho over ``n`` pairs (Fisher z with Bonett and Wright's
    variance, (1 + rho^2 / 2) / (n - 3), and the normal's 97.5% quantile); None under 4 pairs or for a NaN
    rho."""
    from scipy.stats import norm  # noqa: PLC0415 (scipy.stats: ~0.3 s, see the module docstring)

    if n < 4 or rho != rho:
        return None
    r = float(np.clip(rho, -0.9999, 0.9999))
    half = float(norm.ppf(0.975)) * np.sqrt((1 + r * r / 2) / (n - 3))
    return float(np.tanh(np.arctanh(r) - half)), float(np.tanh(np.arctanh(r) + half))
