"""The rung-1 score, parsed once: one registry of score names and one :class:`Scorer`.

``search.score`` names a cheap score of a cell: ``gtn`` (fresh networks trained on the teacher's
curriculum, read on real validation images), a zero-cost proxy (``params``, ``flops``, ``synflow``,
``naswot``, ``jacob_cov``), ``calibrated:A+B`` (their combination on rank scales, weights refitted on
the search's own real results; :mod:`search.combine`), or ``none``. :func:`Scorer.parse` turns it into
one object that the trainable, the shared actor, benchmark mode and ``gtnnas bench proxies`` all use:
which components to compute (the implementations are :mod:`search.proxies`), in which leaderboard
column each lands, what a cached score depends on, and how components become one value.

Free of torch and of the config (which validates scores with it): the components are computed by
:func:`search.proxy_specs.components` on networks, and by :func:`search.nb201.components` from the
NAS-Bench-201 tables in benchmark mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .combine import MIN_PAIRS, Calibrator
from .errors import InputError


class ScoreSettings(Protocol):
    """The ``search`` settings a score is parsed from (:class:`search.config.SearchConfig` has them)."""

    @property
    def score(self) -> str: ...
    @property
    def score_steps(self) -> int | None: ...
    @property
    def score_seeds(self) -> int: ...
    @property
    def score_val(self) -> int | None: ...
    @property
    def score_channels(self) -> int | None: ...
    @property
    def score_metric(self) -> str: ...


class NetShape(Protocol):
    """What a cached score depends on of the searched network (:class:`search.config.NetConfig`)."""

    @property
    def channels(self) -> int: ...
    @property
    def cells(self) -> int: ...


COMPONENTS: dict[str, str] = {  # every score a search can name -> the leaderboard column that holds it
    "gtn": "gtn_score",
    "params": "params",
    "flops": "flops",
    "synflow": "synflow",
    "naswot": "naswot",
    "jacob_cov": "jacob_cov",
}
DATA_FREE = ("params", "flops", "synflow")  # computed from the cell alone (benchmark mode's only scores)
NEEDS_DATA = ("gtn", "naswot", "jacob_cov")
INTEGER = ("params", "flops")
EXTRA_COLUMNS = ("gtn_val_loss", "score_seconds")  # stored beside the components and cached with them
METRICS = ("acc", "loss")  # what a GTN score reads off its learners: accuracy, or minus the mean loss


def as_columns(values: Mapping[str, float]) -> dict[str, float]:
    """Component values as the leaderboard stores them: counts as integers, the rest as floats."""
    return {k: int(v) if k in INTEGER else float(v) for k, v in values.items()}


def gtn_name(steps: int | None, seeds: int, val_size: int | None, channels: int | None, metric: str) -> str:
    """A GTN score's name in ``gtnnas bench proxies``' spelling: ``gtn[:K][:sS][:vN][:cC][:loss]``."""
    return (
        "gtn"
        + (f":{steps}" if steps else "")
        + (f":s{seeds}" if seeds > 1 else "")
        + (f":v{val_size}" if val_size else "")
        + (f":c{channels}" if channels else "")
        + (":loss" if metric == "loss" else "")
    )


@dataclass(frozen=True)
class Scorer:
    """A parsed ``search.score`` with the GTN score's settings."""

    spec: str
    parts: tuple[str, ...]  # components; () for "none"
    calibrated: bool = False
    steps: int | None = None  # curriculum steps per learner (None: the curriculum's T)
    seeds: int = 1  # learner initialisations averaged
    val_size: int | None = None  # validation images read (None: all)
    channels: int | None = None  # the scoring learners' width (None: the searched network's)
    metric: str = "acc"

    @classmethod
    def parse(
        cls,
        spec: str,
        *,
        steps: int | None = None,
        seeds: int = 1,
        val_size: int | None = None,
        channels: int | None = None,
        metric: str = "acc",
    ) -> Scorer:
        """One clear :class:`InputError` for anything that is not a score name."""
        if metric not in METRICS:
            raise InputError(f"score metric {metric!r}: expected one of {', '.join(METRICS)}")
        if spec == "none":
            return cls(spec, ())
        if spec in COMPONENTS:
            return cls(spec, (spec,), False, steps, seeds, val_size, channels, metric)
        kind, _, rest = spec.partition(":")
        parts = tuple(p for p in rest.split("+") if p)
        if kind != "calibrated" or not parts or any(p not in COMPONENTS for p in parts) or len(set(parts)) < len(parts):
            raise InputError(
                f"{spec!r}: expected none, one of {', '.join(COMPONENTS)}, or calibrated:A+B with "
                f"distinct components from those"
            )
        return cls(spec, parts, True, steps, seeds, val_size, channels, metric)

    @classmethod
    def from_config(cls, s: ScoreSettings) -> Scorer:
        return cls.parse(
            s.score,
            steps=s.score_steps,
            seeds=s.score_seeds,
            val_size=s.score_val,
            channels=s.score_channels,
            metric=s.score_metric,
        )

    @property
    def none(self) -> bool:
        return not self.parts

    @property
    def uses_gtn(self) -> bool:
        return "gtn" in self.parts

    @property
    def needs_data(self) -> bool:
        return any(p in NEEDS_DATA for p in self.parts)

    @property
    def data_free(self) -> bool:
        return all(p in DATA_FREE for p in self.parts)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(COMPONENTS[p] for p in self.parts)

    def key(self, arch_hash: str, curriculum: str | None, net: NetShape, seed: int) -> str:
        """What a cached rung-1 score depends on: the class, the curriculum, these settings, the network, the seed."""
        return (
            f"{arch_hash}|{self.spec}|{curriculum}|{self.steps}|{self.seeds}|{self.val_size}|{self.channels}|"
            f"{self.metric}|{net.channels}|{net.cells}|{seed}"
        )

    def gtn_proxy_name(self) -> str:
        """The GTN component in ``gtnnas bench proxies``' spelling (``gtn:K[:sS][:vN][:cC][:loss]``)."""
        return gtn_name(self.steps, self.seeds, self.val_size, self.channels, self.metric)

    def value(self, parts: Mapping[str, float], calibrator: Calibrator | None = None) -> float:
        """One score from the components (by column): the component itself, or the calibrated combination."""
        if not self.calibrated:
            return float(parts[self.columns[0]])
        if calibrator is None:
            raise ValueError("a calibrated score needs a calibrator")
        return float(calibrator.combine({p: [parts[c]] for p, c in zip(self.parts, self.columns, strict=True)})[0])

    def calibrator(
        self, known: Sequence[tuple[Mapping[str, float], float]], seen: Sequence[Mapping[str, float]]
    ) -> Calibrator:
        """The weights now: a ridge fit on ``known`` (components, real accuracy) once there are enough,
        else equal weights on ranks among every class ``seen`` so far."""
        cols = dict(zip(self.parts, self.columns, strict=True))
        if len(known) >= MIN_PAIRS:
            return Calibrator.fit(
                self.parts, {p: [k[c] for k, _ in known] for p, c in cols.items()}, [v for _, v in known]
            )
        return Calibrator.fallback(self.parts, {p: [s[c] for s in seen] for p, c in cols.items()})
