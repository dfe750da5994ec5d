"""ASHA over the search's rungs, with combined rung-1 scores compared on the ranking of the moment.

:class:`RungHalving` decides exactly as Tune's ``ASHAScheduler`` with one bracket (``grace_period`` 1,
``max_t`` the number of rungs): at each milestone 1, rf, rf^2, ... below ``max_t`` a trial continues
only if its score is at or above the (1 - 1/rf) quantile of the scores recorded there so far, and
it is recorded. One thing differs, for a combined rung-1 score (``gtn+synflow``): each class's value is
its components' mean rank among the classes scored so far, which moves as more are scored, so a value
recorded early and a new one would compare two different rankings. At the first milestone this
scheduler records classes, not values, and asks ``rescore`` for every recorded class's score and the
new one's on the ranking of now, then applies the same rule. Other scores are compared as recorded, as
Tune's ASHA does (a test checks they decide alike).

``screen`` N holds promotions at the first milestone until N trials are recorded there: early in a
search ASHA's quantile is taken over one or two scores, so nearly every early cell is promoted to real
training and the cheap score screens little. With a screen, the first N cells are scored only (the
searcher still learns from their scores) and later ones are promoted against a pool of N or more.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import ray
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from cluster.actor import get_teacher_actor

Rescore = Callable[[Sequence[str]], Sequence[float]]


def milestones(max_t: int, reduction_factor: float) -> list[int]:
    """ASHA's decision points for one bracket with grace period 1: rf^k for k below log_rf(max_t) + 1."""
    n = int(math.log(max_t) / math.log(reduction_factor) + 1)
    return [int(reduction_factor**k) for k in range(n)]


def cutoff(recorded: Sequence[float], reduction_factor: float) -> float | None:
    """The score a trial must reach to continue: the (1 - 1/rf) quantile of those recorded, or None."""
    return float(np.nanpercentile(list(recorded), (1 - 1 / reduction_factor) * 100)) if len(recorded) else None


class RungHalving(FIFOScheduler):
    """Asynchronous successive halving over rungs; ``rescore`` re-ranks combined rung-1 scores."""

    def __init__(
        self,
        max_t: int,
        reduction_factor: float,
        rescore: Rescore | None = None,
        time_attr: str = "training_iteration",
        screen: int = 0,
    ):
        super().__init__()
        self.time_attr, self.sign = time_attr, 1.0
        self.max_t, self.rf, self.rescore, self.screen = max_t, reduction_factor, rescore, screen
        self.recorded: dict[int, dict[str, Any]] = {m: {} for m in milestones(max_t, reduction_factor)}
        self.stopped = 0

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Tune hands over TuneConfig's metric and mode here (the metric is kept by the base class)."""
        if mode:
            self.sign = 1.0 if mode == "max" else -1.0
        return super().set_search_properties(metric, mode, **spec)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if self.time_attr not in result or result.get(self.metric) is None:
            return TrialScheduler.CONTINUE
        t = result[self.time_attr]
        if t >= self.max_t:
            return TrialScheduler.STOP  # its last rung: as Tune's ASHA (stop_last_trials)
        action = self._decide(trial.trial_id, t, self.sign * float(result[self.metric]), result.get("arch_hash"))
        self.stopped += action == TrialScheduler.STOP
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        if result and self.time_attr in result and result.get(self.metric) is not None:
            self._decide(
                trial.trial_id, result[self.time_attr], self.sign * float(result[self.metric]), result.get("arch_hash")
            )

    def _decide(self, trial_id: str, t: int, value: float, arch_hash: str | None) -> str:
        for m in sorted(self.recorded, reverse=True):  # the highest milestone reached, as Tune's brackets
            recorded = self.recorded[m]
            if t < m or trial_id in recorded:
                continue
            if m == 1 and self.rescore is not None and arch_hash is not None:
                keys = [*recorded.values(), arch_hash]
                fresh = [self.sign * v for v in self.rescore(keys)]
                bar, value = cutoff(fresh[:-1], self.rf), fresh[-1]
                recorded[trial_id] = arch_hash
            else:
                bar = cutoff(list(recorded.values()), self.rf)
                recorded[trial_id] = value
            if m == 1 and len(recorded) <= self.screen:
                return TrialScheduler.STOP  # still screening: scored only
            return TrialScheduler.STOP if bar is not None and value < bar else TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"RungHalving: {self.stopped} stopped, rungs at {sorted(self.recorded)} of {self.max_t}"


def make_scheduler(s: Any, rescore: Rescore | None = None) -> TrialScheduler:
    """The search's scheduler for its ``search`` settings: :class:`RungHalving` over the rungs for ``asha``
    (``rescore`` for a combined rung-1 score), else FIFO. Benchmark mode's light loop builds it here too."""
    if s.scheduler == "asha" and s.rungs > 1:
        return RungHalving(max_t=s.rungs, reduction_factor=s.reduction_factor, rescore=rescore, screen=s.screen)
    return FIFOScheduler()


class ActorRescore:
    """``rescore`` through the experiment's shared actor, found by name at each call (survives its restarts
    and pickles with the scheduler)."""

    def __init__(self, namespace: str):
        self.namespace = namespace

    def __call__(self, arch_hashes: Sequence[str]) -> Sequence[float]:
        return ray.get(get_teacher_actor(self.namespace).rescore.remote(list(arch_hashes)))
