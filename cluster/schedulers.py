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

With several objectives (``search.objectives``: val_acc, then costs), the first milestone promotes by
NSGA-II's order of the rung-1 score against the costs instead of the score's quantile: a trial continues
when it is within the best 1/rf of the trials recorded there (itself included), ranked by non-dominated
rank, then crowding distance. Later milestones compare real accuracy as before.

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
from search.pareto import nsga2_order

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
        costs: Sequence[tuple[str, str]] = (),
    ):
        """``costs``: (name, mode) of each cost objective, in the results' columns (several objectives)."""
        super().__init__()
        self.time_attr, self.sign = time_attr, 1.0
        self.max_t, self.rf, self.rescore, self.screen = max_t, reduction_factor, rescore, screen
        self.costs = tuple(costs)
        self.cost_values: dict[str, tuple[float, ...]] = {}  # trial -> its costs at the first milestone
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
        self._note_costs(trial.trial_id, result)
        action = self._decide(trial.trial_id, t, self.sign * float(result[self.metric]), result.get("arch_hash"))
        self.stopped += action == TrialScheduler.STOP
        return action

    def _note_costs(self, trial_id: str, result: dict[str, Any]) -> None:
        if self.costs and trial_id not in self.cost_values:
            self.cost_values[trial_id] = tuple(float(result.get(name, float("nan"))) for name, _ in self.costs)

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        if result and self.time_attr in result and result.get(self.metric) is not None:
            self._note_costs(trial.trial_id, result)
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
                scores = [self.sign * v for v in self.rescore(keys)]
                recorded[trial_id] = arch_hash
            else:
                scores = [*recorded.values(), value]
                recorded[trial_id] = value
            bar, value = cutoff(scores[:-1], self.rf), scores[-1]
            if m == 1 and len(recorded) <= self.screen:
                return TrialScheduler.STOP  # still screening: scored only
            if m == 1 and self.costs:
                return self._pareto(list(recorded), [float(v) for v in scores])
            return TrialScheduler.STOP if bar is not None and value < bar else TrialScheduler.CONTINUE
        return TrialScheduler.CONTINUE

    def _pareto(self, trials: list[str], scores: list[float]) -> str:
        """The newest trial (last) continues when NSGA-II's order puts it among the best 1/rf of ``trials``."""
        points = [[s, *self.cost_values.get(t, ())] for s, t in zip(scores, trials, strict=True)]
        modes = ["max", *(mode for _, mode in self.costs)]
        order = [int(i) for i in nsga2_order(np.asarray(points, float), modes)]
        keep = max(1, math.ceil(len(trials) / self.rf))
        return TrialScheduler.CONTINUE if order.index(len(trials) - 1) < keep else TrialScheduler.STOP

    def debug_string(self) -> str:
        return f"RungHalving: {self.stopped} stopped, rungs at {sorted(self.recorded)} of {self.max_t}"


def make_scheduler(s: Any, rescore: Rescore | None = None) -> TrialScheduler:
    """The search's scheduler for its ``search`` settings: :class:`RungHalving` over the rungs for ``asha``
    (``rescore`` for a combined rung-1 score), else FIFO. Benchmark mode's light loop builds it here too."""
    if s.scheduler == "asha" and s.rungs > 1:
        costs = [(o.name, o.mode) for o in s.objective_list[1:]]
        return RungHalving(s.rungs, s.reduction_factor, rescore=rescore, screen=s.screen, costs=costs)
    return FIFOScheduler()


class ActorRescore:
    """``rescore`` through the experiment's shared actor, found by name at each call (survives its restarts
    and pickles with the scheduler)."""

    def __init__(self, namespace: str):
        self.namespace = namespace

    def __call__(self, arch_hashes: Sequence[str]) -> Sequence[float]:
        return ray.get(get_teacher_actor(self.namespace).rescore.remote(list(arch_hashes)))
