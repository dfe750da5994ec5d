"""RungHalving: Tune's ASHA rule over the search's rungs, with combined rung-1 scores re-ranked."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from cluster.schedulers import RungHalving, milestones

STOP, GO = TrialScheduler.STOP, TrialScheduler.CONTINUE


def _ours(max_t: int, rf: float, rescore=None) -> RungHalving:
    s = RungHalving(max_t=max_t, reduction_factor=rf, rescore=rescore)
    assert s.set_search_properties("score", "max")
    return s


@pytest.mark.parametrize("rf,max_t", [(4, 3), (2, 5), (3, 9), (4, 17)])
def test_it_decides_exactly_like_tunes_asha_on_plain_scores(rf, max_t):
    assert milestones(3, 4) == [1] and milestones(5, 2) == [1, 2, 4]
    rng = np.random.default_rng(rf * 100 + max_t)
    ours = _ours(max_t, rf)
    tune = ASHAScheduler(time_attr="training_iteration", max_t=max_t, grace_period=1, reduction_factor=rf)
    tune.set_search_properties("score", "max")
    alive: dict[str, int] = {}
    trials = {f"t{i}": SimpleNamespace(trial_id=f"t{i}") for i in range(80)}
    for t in trials.values():
        tune.on_trial_add(None, t)
        ours.on_trial_add(None, t)
        alive[t.trial_id] = 0
    decisions = {GO: 0, STOP: 0}
    while alive:  # results arrive interleaved, as from trials running side by side
        tid = list(alive)[int(rng.integers(len(alive)))]
        alive[tid] += 1
        res = {"training_iteration": alive[tid], "score": float(rng.normal()), "arch_hash": tid}
        a = ours.on_trial_result(None, trials[tid], res)
        assert a == tune.on_trial_result(None, trials[tid], res), (tid, res)
        decisions[a] += 1
        if a == STOP or alive[tid] >= max_t:
            del alive[tid]
    assert decisions[STOP] > 10 and decisions[GO] > 10  # the comparison saw both outcomes


def test_a_combined_rung1_score_is_compared_on_the_ranking_of_the_moment():
    """A and B were scored when the weights trusted gtn; C after they turned to params."""
    parts = {"A": (1.0, 0.0), "B": (0.0, 1.0), "C": (0.5, 0.5)}  # (gtn rank, params rank)
    weights = [(1.0, 0.0)]

    def rescore(hashes):
        w = weights[0]
        return [w[0] * parts[h][0] + w[1] * parts[h][1] for h in hashes]

    def result(h):
        return {"training_iteration": 1, "score": rescore([h])[0], "arch_hash": h}

    ours, stale = _ours(3, 2, rescore), _ours(3, 2)
    for h in ("A", "B"):
        weights[0] = (1.0, 0.0) if h == "A" else (0.0, 1.0)
        for s in (ours, stale):
            s.on_trial_result(None, SimpleNamespace(trial_id=h), result(h))
    # now (params only): A 0.0, B 1.0, C 0.5. Recorded as reported: A 1.0 and B 1.0, so C (0.5) looks worst
    assert stale.on_trial_result(None, SimpleNamespace(trial_id="C"), result("C")) == STOP
    assert ours.on_trial_result(None, SimpleNamespace(trial_id="C"), result("C")) == GO  # the median of 0 and 1
    assert ours.recorded[1] == {"A": "A", "B": "B", "C": "C"}  # classes, re-scored at each decision
    assert ours.on_trial_result(None, SimpleNamespace(trial_id="C"), {"training_iteration": 3, "score": 0.9}) == STOP


def test_a_screen_promotes_nobody_until_n_cells_are_scored_then_the_top_quarter_of_all():
    s = RungHalving(max_t=3, reduction_factor=4, screen=8)
    assert s.set_search_properties("score", "max")
    scores = [0.9, 0.1, 0.2, 0.95, 0.3, 0.4, 0.5, 0.6]  # the best two come early: plain ASHA would promote them
    plain = _ours(3, 4)
    got = [
        s.on_trial_result(None, SimpleNamespace(trial_id=f"t{i}"), {"training_iteration": 1, "score": v})
        for i, v in enumerate(scores)
    ]
    assert got == [STOP] * 8
    plain_got = [
        plain.on_trial_result(None, SimpleNamespace(trial_id=f"t{i}"), {"training_iteration": 1, "score": v})
        for i, v in enumerate(scores)
    ]
    assert plain_got[0] == GO and plain_got[3] == GO  # what the screen prevents
    # after the screen: the 75th percentile of the eight scored before it (0.675) is the bar
    assert s.on_trial_result(None, SimpleNamespace(trial_id="t8"), {"training_iteration": 1, "score": 0.7}) == GO
    assert s.on_trial_result(None, SimpleNamespace(trial_id="t9"), {"training_iteration": 1, "score": 0.55}) == STOP
    assert s.on_trial_result(None, SimpleNamespace(trial_id="t8"), {"training_iteration": 2, "score": 0.8}) == GO
