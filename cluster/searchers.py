"""Searchers: random, regularised evolution (Real et al. 2019) as a Tune Searcher, or any by name."""

from __future__ import annotations

import pickle
from collections import deque
from typing import Any

import numpy as np
from ray.tune.search import Searcher

from search import space


class RegularizedEvolution(Searcher):
    """Aging evolution over NB201 cells.

    The first ``population`` suggestions are uniform samples; after that each suggestion mutates one
    edge of the best of ``tournament`` members drawn from the population, and the oldest member
    dies when a new one joins. Seeded; ``save``/``restore`` keep the population, pending trials and
    RNG, so ``Tuner.restore`` continues the same search.
    """

    def __init__(self, metric: str | None = None, mode: str | None = None, population: int = 20,
                 tournament: int = 5, seed: int = 0):
        super().__init__(metric=metric, mode=mode)
        self.population_size, self.tournament = population, tournament
        self.rng = np.random.default_rng(seed)
        self.population: deque[tuple[dict[str, str], float]] = deque()
        self.pending: dict[str, dict[str, str]] = {}
        self.history: list[tuple[dict[str, str], float]] = []

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if len(self.population) < self.population_size and len(self.history) + len(self.pending) < self.population_size:
            arch = space.sample(self.rng)
        elif not self.population:
            arch = space.sample(self.rng)
        else:
            idx = self.rng.choice(len(self.population), size=min(self.tournament, len(self.population)), replace=False)
            sign = 1.0 if self.mode != "min" else -1.0
            parent = max((self.population[int(i)] for i in idx), key=lambda m: sign * m[1])[0]
            arch = space.Arch.from_dict(parent).mutate(self.rng)
        config = arch.to_dict()
        self.pending[trial_id] = config
        return dict(config)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        config = self.pending.pop(trial_id, None)
        if config is None or error or not result or self.metric not in result:
            return
        member = (config, float(result[self.metric]))
        self.history.append(member)
        self.population.append(member)
        while len(self.population) > self.population_size:
            self.population.popleft()  # aging: the oldest dies, not the worst

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.set_state(pickle.load(f))

    def get_state(self) -> dict[str, Any]:
        return {"population": list(self.population), "pending": dict(self.pending), "history": list(self.history),
                "rng": self.rng.bit_generator.state, "metric": self.metric, "mode": self.mode,
                "sizes": (self.population_size, self.tournament)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.population = deque(state["population"])
        self.pending = dict(state["pending"])
        self.history = list(state["history"])
        self.rng.bit_generator.state = state["rng"]
        self._metric, self._mode = state["metric"], state["mode"]
        self.population_size, self.tournament = state["sizes"]


def make_searcher(name: str, *, metric: str, mode: str, population: int, tournament: int, seed: int,
                  max_concurrent: int = 0) -> Any:
    """A Tune searcher by name: ``random`` (None: Tune's own random sampling), ``evolution``, or any
    searcher Tune knows (``optuna``, ``hyperopt``, ...) when its package is installed."""
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, create_searcher

    if name == "random":
        return BasicVariantGenerator(random_state=seed, max_concurrent=max_concurrent)
    if name == "evolution":
        searcher: Any = RegularizedEvolution(metric, mode, population, tournament, seed)
    else:
        try:
            searcher = create_searcher(name, metric=metric, mode=mode, seed=seed) if name == "optuna" \
                else create_searcher(name, metric=metric, mode=mode)
        except (ImportError, AssertionError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ValueError(f"search.searcher: cannot create {name!r} ({first})") from None
    return ConcurrencyLimiter(searcher, max_concurrent) if max_concurrent else searcher
