"""The calibrated combination: standardised components, ridge weights, known answers on made-up data."""

import numpy as np
import pytest

from search.combine import Calibrator, parse_components, transform
from search.errors import InputError
from search.stats import spearman


def test_fit_recovers_the_signal_and_ignores_noise():
    rng = np.random.default_rng(0)
    n = 200
    gtn = rng.normal(0.5, 0.1, n)
    params = np.exp(rng.normal(10, 1, n))  # heavy-tailed: compared on a log scale
    noise = rng.normal(0, 1, n)
    target = 2.0 * (gtn - 0.5) / 0.1 + 1.0 * (np.log(params) - 10) + 0.1 * rng.normal(size=n)
    cal = Calibrator.fit(("gtn", "params", "naswot"), {"gtn": gtn, "params": params, "naswot": noise}, target, ridge=0.1)
    w = dict(zip(cal.components, cal.weights))
    assert w["gtn"] == pytest.approx(2.0, rel=0.1) and w["params"] == pytest.approx(1.0, rel=0.1)
    assert abs(w["naswot"]) < 0.1
    assert spearman(cal.score({"gtn": gtn, "params": params, "naswot": noise}), target) > 0.99


def test_fallback_is_equal_weights_and_missing_values_count_as_average():
    cal = Calibrator.fallback(("gtn", "params"), {"gtn": (0.5, 0.1), "params": (10.0, 1.0)})
    assert cal.weights == (0.5, 0.5)
    s = cal.score({"gtn": [0.6, float("nan")], "params": [np.exp(10.0), np.exp(11.0)]})
    assert s[0] == pytest.approx(0.5) and s[1] == pytest.approx(0.5)


def test_specs_and_transforms():
    assert parse_components("calibrated:gtn+params+naswot") == ("gtn", "params", "naswot")
    for bad in ("calibrated:", "calibrated:gtn+gtn", "calibrated:gtn+nope", "ensemble:gtn+params"):
        with pytest.raises(InputError):
            parse_components(bad)
    assert transform("params", [np.e ** 3])[0] == pytest.approx(3.0)
    assert transform("synflow", [0.0])[0] < -600  # a dead cell's zero synflow is very low, not -inf
    assert np.isnan(transform("naswot", [float("-inf")])[0])  # a dead cell's -inf: unknown, scored as average
