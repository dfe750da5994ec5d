"""The rung-1 score, parsed once: one registry of score names and one :class:`Scorer`.

``search.score`` names a cheap score of a cell: one component of :mod:`search.components` (``gtn``:
fresh networks trained on the teacher's curriculum, read on real validation images; or a zero-cost
proxy such as ``params``, ``synflow``, ``naswot``), ``A+B`` (their combination: equal weights on ranks
among the classes scored so far, :mod:`search.rank_combination`; ``calibrated:A+B`` is the older spelling), or
``none``. :func:`Scorer.parse` turns it into one object that the trainable, the shared actor, benchmark
mode and ``gtnnas bench proxies`` all use: which components to compute (the implementations are
:mod:`search.proxies`), in which leaderboard column each lands, what a cached score depends on, and
how components become one value.

Weights are not refitted on a search's own real results: on the truth table's tuning split a ridge
refit on n cells' real accuracy ranks worse than equal weights for every n up to 40 and breaks even at
60 (``benchmarks/results/score_choice.json``), more real results than the demo or a 20-minute search
ever has.

Free of torch and of the config (which validates scores with it): the components are computed by
:func:`search.proxy_specs.components` on networks, and by :func:`search.nb201.components` from the
NAS-Bench-201 tables in benchmark mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .components import BY_NAME, DATA_FREE, NAMES, SCORE_SECONDS, integer_columns
from .errors import InputError
from .rank_combination import RankCombination


class ScoreSettings(Protocol):
    """The ``search`` settings a score is parsed from (:class:`search.search_config.SearchConfig` has them)."""

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


COMPONENTS: dict[str, str] = {c.name: c.column for c in BY_NAME.values()}  # score name -> leaderboard column
EXTRA_COLUMNS = (*(x for c in BY_NAME.values() for x in c.extra), SCORE_SECONDS)  # cached beside the components
METRICS = ("acc", "loss")  # what a GTN score reads off its learners: accuracy, or minus the mean loss


def as_columns(values: Mapping[str, float]) -> dict[str, float]:
    """Component values as the leaderboard stores them: counts as integers, the rest as floats."""
    ints = integer_columns()
    return {k: int(v) if k in ints else float(v) for k, v in values.items()}


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
    combined: bool = False  # several components, combined on ranks
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
        body = spec.removeprefix("calibrated:")  # the older spelling of a combination
        parts = tuple(body.split("+"))
        if len(parts) < 2 or any(p not in COMPONENTS for p in parts) or len(set(parts)) < len(parts):
            raise InputError(
                f"{spec!r}: expected none, one of {', '.join(NAMES)}, or A+B with distinct components from those"
            )
        return cls("+".join(parts), parts, True, steps, seeds, val_size, channels, metric)

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
        return any(BY_NAME[p].needs_data for p in self.parts)

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

    def value(self, parts: Mapping[str, float], seen: Sequence[Mapping[str, float]] = ()) -> float:
        """One score from the components (by column): the component itself, or the combination's equal
        weights on ranks among the classes ``seen`` so far (this one included by the caller)."""
        if not self.combined:
            return float(parts[self.columns[0]])
        return self.value_on(self.combination(seen), parts)

    def values(self, rows: Sequence[Mapping[str, float]]) -> list[float]:
        """The scores of ``rows`` on one footing: each ranked among all of them."""
        if not self.combined:
            return [self.value(r) for r in rows]
        cal = self.combination(rows)
        return [self.value_on(cal, r) for r in rows]

    def combination(self, seen: Sequence[Mapping[str, float]]) -> RankCombination:
        """Equal weights on each component's rank among ``seen``."""
        cols = dict(zip(self.parts, self.columns, strict=True))
        return RankCombination.equal(self.parts, {p: [s[c] for s in seen] for p, c in cols.items()})

    def value_on(self, cal: RankCombination, parts: Mapping[str, float]) -> float:
        """The combined score of one class on a given combination (:meth:`combination`)."""
        return float(cal.combine({p: [parts[c]] for p, c in zip(self.parts, self.columns, strict=True)})[0])
