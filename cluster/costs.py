"""A cell's costs before it is scored, and the constraints on them: what the searchers screen cells by.

``params`` and ``flops`` are counted on the searched network (benchmark mode: read from NAS-Bench-201's
table for its own network), ``latency_ms`` comes from the latency table (:mod:`cluster.latency`,
measured once per class, shape, device, torch version and threads). Only the costs that
``search.objectives`` and ``search.constraints`` name are computed, once per equivalence class. A cell
that breaks a constraint is never handed to Tune (:class:`cluster.searchers.Deduplicated` asks again),
so it is never scored or trained and the trial budget counts only cells that were searched; it is
recorded in ``trials/`` as INFEASIBLE with its reason (:class:`InfeasibleLog`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from results.leaderboard import INFEASIBLE, status_row, write_statuses
from search import nb201, space
from search.config import ExperimentConfig
from search.errors import InputError
from search.pareto import violations
from search.shapes import InputSpec, NetSettings, NetSpec

SHARE_SAMPLE = 200  # cells drawn (seeded) to estimate the share of the space that meets the constraints
LATENCY_SAMPLE = 24  # of those, cells whose latency is measured for that estimate (a measurement takes time)
MIN_SHARE = 0.01  # constraints met by less than this share of the sample are refused before the search


class CellCosts:
    """The costs the experiment's objectives and constraints name, by equivalence class (computed once)."""

    def __init__(self, cfg: ExperimentConfig, inputs: InputSpec | None):
        self.cfg, self.inputs = cfg, inputs
        self.needed, self.constraints = cfg.search.costs_needed, cfg.search.constraint_list
        self.cache: dict[str, dict[str, float]] = {}

    def __getstate__(self) -> dict[str, Any]:  # pickled with the searcher: the cache is rebuilt as needed
        return {**self.__dict__, "cache": {}}

    def of(self, archs: list[space.Arch]) -> list[dict[str, float]]:
        """Each cell's costs (its class's canonical cell: equivalent cells cost the same)."""
        todo = {a.equiv_hash(): space.parse(a.canonical()) for a in archs if a.equiv_hash() not in self.cache}
        if todo:
            cells = list(todo.values())
            found = [self._counts(a) for a in cells]
            if "latency_ms" in self.needed:
                from cluster.latency import latency_ms  # noqa: PLC0415  (lazy: torch and Ray only for latency)

                measured = latency_ms(cells, self.cfg, self.latency_inputs(), net=self.latency_net())
                for row, ms in zip(found, measured, strict=True):
                    row["latency_ms"] = ms
            self.cache.update(zip(todo, found, strict=True))
        return [self.cache[a.equiv_hash()] for a in archs]

    def latency_of(self, arch: space.Arch) -> float:
        """One cell's latency in ms (from the latency table: the driver measured it before handing it out)."""
        from cluster.latency import latency_ms  # noqa: PLC0415  (lazy: torch and Ray only for latency)

        cell = space.parse(arch.canonical())
        return float(latency_ms([cell], self.cfg, self.latency_inputs(), net=self.latency_net())[0])

    def latency_net(self) -> NetSettings:
        """The network the latency is measured on: the searched one, or NB201's (C=16, N=5) in benchmark mode."""
        return NetSpec(nb201.CHANNELS, nb201.CELLS) if self.cfg.search.evaluation.looks_up else self.cfg.net

    def latency_inputs(self) -> InputSpec:
        """What the latency is measured on: the searched network's input, or NB201's in benchmark mode."""
        if self.cfg.search.evaluation.looks_up or self.inputs is None:
            return InputSpec(nb201.SHAPE, nb201.CLASSES)
        return self.inputs

    def _counts(self, arch: space.Arch) -> dict[str, float]:
        if not {"params", "flops"} & set(self.needed):
            return {}
        if self.cfg.search.evaluation.looks_up:
            return {k: nb201.proxy(arch, k) for k in ("params", "flops")}
        from search.nets import count_flops, count_params, net_from  # noqa: PLC0415  (lazy: torch)

        assert self.inputs is not None  # a real search knows its data's shape
        model = net_from(arch, self.cfg.net, self.inputs)
        return {"params": float(count_params(model)), "flops": float(count_flops(model))}

    def reason(self, arch: space.Arch) -> str | None:
        """Why ``arch`` may not be searched (the constraints it breaks), or None."""
        if not self.constraints:
            return None
        broken = violations(self.constraints, self.of([arch])[0])
        return "; ".join(broken) if broken else None

    def check_share(self, seed: int) -> float:
        """The share of a seeded sample of cells that meets every constraint; refused (one line) below
        :data:`MIN_SHARE`. Latency constraints are estimated on the first :data:`LATENCY_SAMPLE` cells."""
        if not self.constraints:
            return 1.0
        rng = np.random.default_rng([seed, 28])
        n = LATENCY_SAMPLE if "latency_ms" in self.needed else SHARE_SAMPLE
        sample = [space.sample(rng) for _ in range(n)]
        self.of(sample)
        share = float(np.mean([self.reason(a) is None for a in sample]))
        if share < MIN_SHARE:
            said = ",".join(c.describe() for c in self.constraints)
            raise InputError(
                f"search.constraints {said}: {share:.1%} of {n} sampled cells meet them; "
                "loosen them (the costs of the sample: gtnnas arch info)"
            )
        return share


class InfeasibleLog:
    """Cells refused for breaking a constraint, written to ``trials/`` as INFEASIBLE rows (cell and reason)
    every ``every`` cells or ``seconds`` (a crash loses at most those: they were never results)."""

    def __init__(self, root: str, experiment: str, every: int = 50, seconds: float = 30.0):
        self.root, self.experiment, self.every, self.seconds = root, experiment, every, seconds
        self.rows: list[dict[str, Any]] = []
        self.last = time.monotonic()
        self.count = 0

    def add(self, arch: space.Arch, reason: str) -> None:
        tid = f"infeasible-{arch.equiv_hash()}"
        self.rows.append(status_row(self.experiment, tid, INFEASIBLE, str(arch), reason))
        self.count += 1
        if len(self.rows) >= self.every or time.monotonic() - self.last >= self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            write_statuses(self.root, self.rows)
            self.rows = []
        self.last = time.monotonic()
