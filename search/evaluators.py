"""What ``search.evaluator`` names: how a trial's real rungs are evaluated, as one object per kind.

``real`` trains the cell on the data set (``search.real_steps`` of SGD a rung, checkpointed between
rungs); ``nb201`` (benchmark mode) looks each cell up in NAS-Bench-201's 12-epoch table, one fidelity,
charged 12 simulated epochs. The config validates against these traits, the trainable picks its rung
runner by them (:mod:`cluster.trainable`), and the CLI and retraining ask them rather than compare
strings. Free of torch and Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError


@dataclass(frozen=True)
class Evaluator:
    name: str
    trains: bool  # real rungs train on the data set (checkpoints, torch, data on every trial, retrainable)
    fixed_real_rungs: int | None  # the real rungs it allows (the table has one fidelity); None: any number
    data_free_scores_only: bool  # rung-1 scores it can take: only those computed from the cell alone
    doc: str

    @property
    def looks_up(self) -> bool:
        return not self.trains


REAL = Evaluator("real", True, None, False, "real-data training, search.real_steps a rung")
NB201 = Evaluator("nb201", False, 1, True, "NAS-Bench-201's 12-epoch table (benchmark mode)")
EVALUATORS: dict[str, Evaluator] = {e.name: e for e in (REAL, NB201)}


def evaluator(name: str) -> Evaluator:
    try:
        return EVALUATORS[name]
    except KeyError:
        raise InputError(f"evaluator {name!r}: expected one of {', '.join(EVALUATORS)}") from None
