"""Searchers over NB201 cells as Tune Searchers: random, regularised evolution, or any Tune searcher by name.

Every searcher is wrapped in :class:`Deduplicated`, so no two trials evaluate cells that compute the
same function (the equivalence hash). Ours are seeded and save/restore their whole state, so
``Tuner.restore`` continues the same search; Tune's get the seed where they take one.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from ray.tune.search import ConcurrencyLimiter, Searcher, create_searcher

from cluster.costs import CellCosts, InfeasibleLog
from cluster.tune_compat import live_trials
from search import space
from search.errors import ConfigError, InputError, first_line
from search.files import write_bytes
from search.pareto import nsga2_order

ProxyFn = Callable[[Sequence[space.Arch]], Sequence[Any]]  # a score per cell, or (score, cost, ...) per cell
Value = float | tuple[float, ...]  # a member's objective value, or values (several objectives)


def _names(metric: Any) -> list[str]:
    """A searcher's metric as a list of names (Tune's multi-objective searchers take lists)."""
    return [] if metric is None else [metric] if isinstance(metric, str) else list(metric)


class _Stateful(Searcher):
    """save/restore through get_state/set_state (pickled)."""

    def save(self, checkpoint_path: str) -> None:
        write_bytes(checkpoint_path, pickle.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class RandomSearch(_Stateful):
    """Uniform samples from the 15,625 cells, from a seeded generator."""

    def __init__(self, metric: str | None = None, mode: str | None = None, seed: int = 0):
        super().__init__(metric=metric, mode=mode)
        self.rng = np.random.default_rng(seed)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return space.sample(self.rng).to_dict()

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        pass

    def get_state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class RegularizedEvolution(_Stateful):
    """Aging evolution over NB201 cells (Real et al. 2019; NAS-Bench-201's REA).

    The first ``population`` suggestions are uniform samples, or with ``proxy`` the best cells by
    that zero-cost proxy among ``seed_sample`` uniform samples (one per equivalence class); after
    that each suggestion mutates one edge of the best of ``tournament`` members drawn from the
    population, and the oldest member dies when a new one joins. With several objectives (``metric``
    and ``mode`` lists) "best" is NSGA-II's order over the population (Deb et al. 2002): the lowest
    non-dominated rank, then the largest crowding distance.
    """

    def __init__(
        self,
        metric: str | None = None,
        mode: str | None = None,
        population: int = 20,
        tournament: int = 5,
        seed: int = 0,
        proxy: ProxyFn | None = None,
        seed_sample: int = 1000,
    ):
        super().__init__(metric=metric, mode=mode)
        self.objective = (metric, mode)  # what set_state restores (Searcher keeps its own privately)
        self.population_size, self.tournament = population, tournament
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[dict[str, str], Value]] = deque()
        self.pending: dict[str, dict[str, str]] = {}
        self.history: list[tuple[dict[str, str], Value]] = []
        self.initial = self._seeded(proxy, seed_sample) if proxy is not None else []

    def _seeded(self, proxy: ProxyFn, n: int) -> list[dict[str, str]]:
        """The first population: the best cells by the proxy, or with several objectives (the proxy gives
        (score, cost, ...) per cell) the first by NSGA-II's order of the proxy's score against the costs."""
        archs = [space.sample(self.rng) for _ in range(n)]
        values = np.asarray(proxy(archs), float)
        if values.ndim == 2:
            modes = ["max", *(list(self.mode)[1:] if isinstance(self.mode, list) else ["min"] * (values.shape[1] - 1))]
            order = nsga2_order(values, modes)
        else:
            order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
        best: dict[str, space.Arch] = {}
        for i in order:
            best.setdefault(archs[i].equiv_hash(), archs[i])
            if len(best) == self.population_size:
                break
        return [a.to_dict() for a in best.values()]

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        started = len(self.history) + len(self.pending)
        if started < len(self.initial):
            config = self.initial[started]
        elif not self.population or started < self.population_size:
            config = space.sample(self.rng).to_dict()
        else:
            idx = self.rng.choice(len(self.population), size=min(self.tournament, len(self.population)), replace=False)
            if isinstance(self.metric, str) or self.metric is None:  # one objective: as NAS-Bench-201's REA
                sign = 1.0 if self.mode != "min" else -1.0
                parent = max((self.population[int(i)] for i in idx), key=lambda m: sign * float(m[1]))[0]  # type: ignore[arg-type]
            else:
                position = self._positions()
                parent = self.population[int(min(idx, key=lambda i: position[int(i)]))][0]
            config = space.Arch.from_dict(parent).mutate(self.rng).to_dict()
        self.pending[trial_id] = config
        return dict(config)

    def _positions(self) -> list[int]:
        """Each population member's place in the order of merit (0 is best; ties keep the older first)."""
        values = [m[1] if isinstance(m[1], tuple) else (m[1],) for m in self.population]
        modes = [self.mode] if isinstance(self.mode, str) else list(self.mode or ["max"])
        order = nsga2_order(np.asarray(values, float), modes)
        position = [0] * len(values)
        for place, i in enumerate(order):
            position[int(i)] = place
        return position

    @property
    def metric(self) -> Any:
        return self.objective[0] or super().metric

    @property
    def mode(self) -> Any:
        return self.objective[1] or super().mode

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        config, metrics = self.pending.pop(trial_id, None), _names(self.metric)
        if config is None or error or not result or not metrics or any(result.get(m) is None for m in metrics):
            return
        values = tuple(float(result[m]) for m in metrics)
        member = (config, values if len(values) > 1 else values[0])
        self.history.append(member)
        self.population.append(member)
        while len(self.population) > self.population_size:
            self.population.popleft()  # aging: the oldest dies, not the worst

    def get_state(self) -> dict[str, Any]:
        return {
            "population": list(self.population),
            "pending": dict(self.pending),
            "history": list(self.history),
            "rng": self.rng.bit_generator.state,
            "metric": self.metric,
            "mode": self.mode,
            "sizes": (self.population_size, self.tournament),
            "initial": list(self.initial),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.population = deque(state["population"])
        self.pending = dict(state["pending"])
        self.history = list(state["history"])
        self.rng.bit_generator.state = state["rng"]
        self.objective = (state["metric"], state["mode"])
        self.population_size, self.tournament = state["sizes"]
        self.initial = list(state["initial"])


class Deduplicated(_Stateful):
    """Wraps a searcher so that no suggestion is equivalent to an earlier one, nor breaks a constraint.

    A proposal whose class was already suggested is answered at once with that class's result (or
    as failed while it is still running) and the inner searcher asked again, up to ``tries`` times;
    then a uniformly drawn unseen class is suggested instead. Only when the space is exhausted does a
    duplicate get through (the trainable then reuses the class's result instead of evaluating it).
    With ``costs`` (:class:`cluster.costs.CellCosts`) a proposal that breaks a constraint is answered as
    failed the same way (so evolution mutates again, random sampling draws again, and Tune's searchers
    are told), recorded as INFEASIBLE with its reason (``log``), and never handed to Tune: it is never
    scored or trained, and the trial budget counts only searched cells.

    It also refuses a trial id Tune has already used. Tune draws ids as 8 random hex digits, so about
    one 10,000-trial run in a hundred draws one twice (one did: two trials shared ``e77602e8``), and the
    leaderboard, Tune's own analysis and every searcher key trials by id. Returning None creates no
    trial; Tune asks again next step with a fresh id.
    """

    def __init__(
        self,
        inner: Searcher,
        seed: int = 0,
        tries: int = 50,
        costs: CellCosts | None = None,
        log: InfeasibleLog | None = None,
    ):
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner, self.tries, self.costs, self.log = inner, tries, costs, log
        self.rng = np.random.default_rng([seed, 7])
        self.seen: dict[str, dict[str, float] | None] = {}  # class -> its metric(s) once known
        self.infeasible: set[str] = set()  # classes refused for breaking a constraint
        self.alias: dict[str, str | None] = {}  # our trial id -> the inner searcher's (None: a fallback draw)
        self.classes: dict[str, str] = {}  # our trial id -> class
        self.repeats = 0  # proposals answered from `seen`
        self.ids: set[str] = set()  # every trial id handed a config
        self.refused = 0  # suggestions refused because Tune reused a trial id

    @property
    def metric(self) -> Any:
        return self.inner.metric

    @property
    def mode(self) -> Any:
        return self.inner.mode

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        # Tune passes the schedulers' metric ("score"); the inner searcher keeps the one it was made with
        return self.inner.set_search_properties(self.inner.metric or metric, self.inner.mode or mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if trial_id in self.ids:
            self.refused += 1
            return None  # a second trial with this id would overwrite the first one's results
        for attempt in range(self.tries):
            tid = trial_id if attempt == 0 else f"{trial_id}~{attempt}"
            config = self.inner.suggest(tid)
            if not isinstance(config, dict):
                return config  # None (wait) or Searcher.FINISHED
            arch = space.Arch.from_dict(config)
            h = arch.equiv_hash()
            if h not in self.seen and h not in self.infeasible and self._feasible(arch):
                return self._hand_out(trial_id, tid, h, config)
            self.repeats += h in self.seen
            known = self.seen.get(h)
            self.inner.on_trial_complete(tid, known, error=known is None)
        drawn = self._unseen_cell()
        if drawn is None:  # the space is exhausted: a duplicate gets through, answered from its class's result
            drawn = space.sample(self.rng)
        return self._hand_out(trial_id, None, drawn.equiv_hash(), drawn.to_dict())

    def _feasible(self, arch: space.Arch) -> bool:
        reason = self.costs.reason(arch) if self.costs is not None else None
        if reason is None:
            return True
        self.infeasible.add(arch.equiv_hash())
        if self.log is not None:
            self.log.add(arch, reason)
        return False

    def _unseen_cell(self, draws: int = 2000) -> space.Arch | None:
        """A cell drawn uniformly among those whose class is unseen (and that meets the constraints), or
        None when there are none.

        One pass over the 15,625 cells (memoised hashes, a few milliseconds), so its cost does not
        grow as unseen classes run out, as rejection sampling's did (tenfold over a 10,000-trial
        random search), and the draw depends only on the RNG and ``seen``, which a restore brings back.
        Under constraints, up to ``draws`` unseen cells are tried in random order.
        """
        unseen = [a for a in space.cells() if a.equiv_hash() not in self.seen and a.equiv_hash() not in self.infeasible]
        if not unseen or self.costs is None or not self.costs.constraints:
            return unseen[int(self.rng.integers(len(unseen)))] if unseen else None
        for i in self.rng.permutation(len(unseen))[:draws]:
            if self._feasible(unseen[int(i)]):
                return unseen[int(i)]
        raise InputError(f"search.constraints: none of {min(draws, len(unseen))} unseen cells drawn meets them")

    def _hand_out(self, trial_id: str, tid: str | None, h: str, config: dict[str, Any]) -> dict[str, Any]:
        self.seen.setdefault(h, None)
        self.ids.add(trial_id)
        self.alias[trial_id], self.classes[trial_id] = tid, h
        return config

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        tid = self.alias.get(trial_id)
        if tid is not None:
            self.inner.on_trial_result(tid, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        h = self.classes.pop(trial_id, None)
        names = _names(self.inner.metric)
        if h is not None and not error and result and names and all(result.get(m) is not None for m in names):
            self.seen[h] = {m: float(result[m]) for m in names}
        tid = self.alias.pop(trial_id, None)
        if tid is not None:
            self.inner.on_trial_complete(tid, result, error=error)

    def get_state(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "inner.pkl")
            self.inner.save(path)
            with open(path, "rb") as f:
                inner = f.read()
        return {
            "inner": inner,
            "seen": dict(self.seen),
            "infeasible": sorted(self.infeasible),
            "alias": dict(self.alias),
            "classes": dict(self.classes),
            "rng": self.rng.bit_generator.state,
            "repeats": self.repeats,
            "ids": sorted(self.ids),
            "refused": self.refused,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "inner.pkl")
            with open(path, "wb") as f:
                f.write(state["inner"])
            self.inner.restore(path)
        metric = self.inner.metric if isinstance(self.inner.metric, str) else None
        self.seen = {  # a float: a state saved before classes remembered every metric of their result
            h: {metric: v} if isinstance(v, float) and metric else v for h, v in state["seen"].items()
        }
        self.alias, self.classes = dict(state["alias"]), dict(state["classes"])
        self.infeasible = set(state.get("infeasible", ()))
        self.rng.bit_generator.state = state["rng"]
        self.repeats = state["repeats"]
        self.ids, self.refused = set(state.get("ids", ())), state.get("refused", 0)  # absent before ids were kept


def searcher_metric(s: Any) -> str:
    """What searchers rank by: the rung-1 score every trial has, or real accuracy when there is none."""
    return "score" if s.scorer.none else "rung1_score"


def searcher_objectives(s: Any) -> tuple[Any, Any]:
    """(metric, mode) searchers rank by: :func:`searcher_metric` maximised, or with several objectives the
    lists of it and the costs they name (what Tune's multi-objective searchers take)."""
    costs = s.objective_list[1:]
    if not costs:
        return searcher_metric(s), "max"
    return [searcher_metric(s), *(o.name for o in costs)], ["max", *(o.mode for o in costs)]


def make_searcher(
    s: Any,
    *,
    seed: int,
    proxy: ProxyFn | None = None,
    costs: CellCosts | None = None,
    log: InfeasibleLog | None = None,
) -> Any:
    """The searcher named by ``s.searcher`` (a SearchConfig) over :func:`searcher_objectives`, deduplicated,
    screened by ``costs`` against the constraints, and concurrency-limited.

    ``random`` and ``evolution`` are ours (evolution selects by NSGA-II's order with several
    objectives); any other name is a Tune searcher (``optuna``, ``hyperopt``, ...) when its package is
    installed (with several objectives, one that takes lists of metrics and modes, as Optuna's does),
    else one clear error.
    """
    metric, mode = searcher_objectives(s)
    if s.searcher == "random":
        inner: Any = RandomSearch(metric, mode, seed)
    elif s.searcher == "evolution":
        if s.seed_proxy and proxy is None:
            raise ConfigError("search.seed_proxy: no proxy function given to score the first population")
        inner = RegularizedEvolution(
            metric, mode, s.population, s.tournament, seed, proxy if s.seed_proxy else None, s.seed_sample
        )
    else:
        seeded = {
            "optuna": {"seed": seed},
            "hyperopt": {"random_state_seed": seed},
            "hebo": {"random_state_seed": seed},
            "bohb": {"seed": seed},
            "nevergrad": {},
            "zoopt": {},
            "bayesopt": {"random_state": seed},
        }
        try:
            inner = create_searcher(s.searcher, metric=metric, mode=mode, **seeded.get(s.searcher, {}))
        except (ImportError, AssertionError, ValueError, TypeError) as e:
            raise ConfigError(f"search.searcher: cannot create {s.searcher!r} ({first_line(e)})") from None
    searcher = Deduplicated(inner, seed, costs=costs, log=log)
    return Limiter(searcher, s.max_concurrent) if s.max_concurrent else searcher


class Limiter(ConcurrencyLimiter):
    """Tune's limiter asserts on a trial id drawn twice while the first trial runs: refuse it instead
    (Tune asks again with a fresh id; :class:`Deduplicated` refuses ids of finished trials)."""

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        return None if trial_id in live_trials(self) else super().suggest(trial_id)
