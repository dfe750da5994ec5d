"""search.stats: thin wrappers over scipy.stats that drop NaN pairs and rank -inf lowest."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

from search.stats import kendall, mean_interval, ranks, rho_interval, spearman, t_quantile, top_half_spearman


def _data(seed: int, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Scores with ties, NaN and -inf on both sides."""
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, 6, n).astype(float), rng.integers(0, 8, n).astype(float)
    a[rng.choice(n, 4, replace=False)] = np.nan
    b[rng.choice(n, 3, replace=False)] = np.nan
    a[rng.choice(n, 5, replace=False)] = -np.inf
    b[rng.choice(n, 2, replace=False)] = -np.inf
    return a, b


@pytest.mark.parametrize("seed", range(5))
def test_wrappers_agree_with_scipy_on_ties_nan_and_minus_inf(seed):
    a, b = _data(seed)
    keep = ~(np.isnan(a) | np.isnan(b))
    x, y = a[keep], b[keep]
    assert np.isneginf(x).any() and len(np.unique(x)) < len(x)  # the case under test is there
    assert spearman(a, b) == pytest.approx(st.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall(a, b) == pytest.approx(st.kendalltau(x, y, variant="b").statistic, abs=1e-12)
    # -inf is a value: the lowest rank, ties averaged, 0-based
    assert ranks(x).tolist() == pytest.approx((st.rankdata(x) - 1).tolist())
    assert ranks(x)[np.isneginf(x)] == pytest.approx((np.isneginf(x).sum() - 1) / 2)
    top = st.rankdata(x) - 1 >= (len(x) - 1) / 2
    assert top_half_spearman(a, b) == pytest.approx(st.spearmanr(x[top], y[top]).statistic, abs=1e-12)


def test_minus_inf_is_worst_and_nan_is_no_rank():
    assert ranks([2.0, -math.inf, 1.0, -math.inf]).tolist() == [3.0, 0.5, 2.0, 0.5]
    r = ranks([2.0, float("nan"), 1.0])
    assert r[0] == 1.0 and r[2] == 0.0 and math.isnan(r[1])
    assert ranks([]).tolist() == []
    assert spearman([-math.inf, 1.0, 2.0], [0.0, 1.0, 2.0]) == pytest.approx(1.0)


def test_undefined_correlations_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning included
        for f in (spearman, kendall):
            assert math.isnan(f([1, 1, 1], [1, 2, 3]))
            assert math.isnan(f([1.0], [2.0]))
            assert math.isnan(f([float("nan"), 1.0, 2.0], [1.0, float("nan"), 2.0]))
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2], [1, 2, 3])


def test_intervals_use_scipy_quantiles():
    v = [0.8, 0.9, 0.85, 0.7]
    lo, hi = mean_interval(v)
    h = st.t.ppf(0.975, 3) * np.std(v, ddof=1) / 2
    assert (lo, hi) == pytest.approx((np.mean(v) - h, np.mean(v) + h))
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert mean_interval([1.0]) is None
    lo, hi = rho_interval(0.5, 30)
    half = st.norm.ppf(0.975) * math.sqrt((1 + 0.125) / 27)
    assert (lo, hi) == pytest.approx((math.tanh(math.atanh(0.5) - half), math.tanh(math.atanh(0.5) + half)))
    assert rho_interval(0.5, 3) is None and rho_interval(float("nan"), 30) is None
