"""Spec strings to proxies, and the proxies composed of others.

:func:`make_proxy` is the one parser of proxy names (``synflow``, ``real:128``, ``gtn:32:s2``,
``ensemble:a+b``, ``calibrated:a+b``, ``search``); :class:`Ensemble` is the mean rank of its components
over the scored population; :class:`SearchScore` is a search's rung-1 score as a proxy; and
:func:`components` computes a :class:`~search.scoring.Scorer`'s components on networks with the single
proxies of :mod:`search.proxies`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .config import NetConfig
from .curriculum import Curriculum
from .data import Dataset
from .errors import ProxyError
from .proxies import SIMPLE, GTNSteps, Proxy, ProxyContext, RealSteps
from .scoring import COMPONENTS, Scorer, as_columns
from .search_config import SearchConfig
from .shapes import Inputs
from .space import Arch
from .stats import ranks


@dataclass
class Ensemble:
    """Mean rank over components (higher = better); its cost is the sum of theirs."""

    components: tuple[Proxy, ...]

    @property
    def name(self) -> str:
        return "ensemble:" + "+".join(c.name for c in self.components)

    @property
    def settings(self) -> dict:
        return {"components": [c.name for c in self.components]}

    def score_many(self, archs: Sequence[Arch], ctx: ProxyContext) -> tuple[list[float], list[float]]:
        return self.of([c.score_many(archs, ctx) for c in self.components])

    @staticmethod
    def of(results: Sequence[tuple[list[float], list[float]]]) -> tuple[list[float], list[float]]:
        """The ensemble of its components' (scores, seconds): mean rank, summed seconds."""
        seconds = [float(sum(s)) for s in zip(*(r[1] for r in results), strict=True)]
        return combine_ranks([r[0] for r in results]), seconds


@dataclass
class SearchScore:
    """A search's rung-1 score (``search.score`` with its settings) as a proxy: the components through the
    same :class:`~search.scoring.Scorer` a search uses; a combined one with equal weights on ranks among
    the cells scored, as a live search combines them."""

    scorer: Scorer

    @property
    def name(self) -> str:
        gtn = self.scorer.gtn_proxy_name() if self.scorer.uses_gtn else None
        return f"{self.scorer.spec}[{gtn}]" if gtn else self.scorer.spec

    @property
    def settings(self) -> dict:
        return {"score": self.scorer.spec, "gtn": self.scorer.gtn_proxy_name() if self.scorer.uses_gtn else None}

    def score_many(self, archs: Sequence[Arch], ctx: ProxyContext) -> tuple[list[float], list[float]]:
        rows, secs = [], []
        for a in archs:
            start = time.perf_counter()
            rows.append(
                components(
                    self.scorer,
                    a,
                    net=ctx.net,
                    data=ctx.data,
                    curriculum=ctx.curriculum,
                    seed=ctx.seed,
                    inputs=ctx,
                )
            )
            secs.append(time.perf_counter() - start)
        return self.scorer.values(rows), secs


def components(
    scorer: Scorer,
    arch: Arch,
    *,
    net: NetConfig,
    data: Dataset | None = None,
    curriculum: Curriculum | None = None,
    seed: int = 0,
    inputs: Inputs | None = None,
) -> dict[str, float]:
    """Every component of ``scorer`` for ``arch`` by its column (plus the GTN score's loss), computed on
    networks of ``net`` for ``inputs`` (default: the data's images and classes) on the data's device
    (benchmark mode reads them instead: :func:`search.nb201.components`)."""
    inputs = inputs or data
    if inputs is None:
        raise ValueError("components need the data or its input shape and classes")
    out: dict[str, float] = {}
    ctx = ProxyContext(
        net=net,
        shape=inputs.shape,
        num_classes=inputs.num_classes,
        data=data,
        curriculum=curriculum,
        seed=seed,
    )
    for part in scorer.parts:
        if part == "gtn":
            proxy = GTNSteps(
                scorer.steps,
                seeds=scorer.seeds,
                val_size=scorer.val_size,
                channels=scorer.channels,
                metric=scorer.metric,
            )
            result = proxy.read(arch, ctx)
            out["gtn_score"], out["gtn_val_loss"] = result["gtn_score"], result["val_loss"]
        else:
            out[COMPONENTS[part]] = make_proxy(part).score_many([arch], ctx)[0][0]
    return as_columns(out)


def combine_ranks(columns: Sequence[Sequence[float]]) -> list[float]:
    """Mean of per-column ranks: the rank ensemble of already computed proxy scores (NaN ranks last)."""
    cols = [np.nan_to_num(np.asarray(c, float), nan=-np.inf) for c in columns]
    return [float(v) for v in np.mean([ranks(c) for c in cols], axis=0)]


def make_proxy(spec: str, search: SearchConfig | None = None) -> Proxy:
    """``synflow``, ``real:128``, ``gtn:32``, ``ensemble:synflow+naswot``, ... -> a proxy.

    ``A+B`` of score components (``calibrated:A+B``, the older spelling; or ``search``: ``search.score``
    itself) is a search's combined rung-1 score with the GTN settings of ``search`` (the defaults without one).
    """
    spec = spec.strip()
    if spec in SIMPLE:
        return SIMPLE[spec]()
    kind, _, arg = spec.partition(":")
    if "+" in spec and ":" not in spec and all(p in COMPONENTS for p in spec.split("+")):
        kind = "calibrated"  # A+B: a search's combined score, spelled as search.score spells it
    if kind in ("calibrated", "search"):
        s = search or SearchConfig()
        try:
            return SearchScore(Scorer.from_config(replace(s, score=s.score if kind == "search" else spec)))
        except ValueError as e:
            raise ProxyError(f"{spec!r}: {e}") from None
    if kind == "ensemble" and arg:
        return Ensemble(tuple(make_proxy(p) for p in arg.split("+")))
    if kind == "real":
        if not arg.isdigit() or int(arg) < 1:
            raise ProxyError(f"real:k needs a positive step count, got {spec!r}")
        return RealSteps(int(arg))
    if kind == "gtn":
        m = re.fullmatch(r"gtn(?::(\d+))?(?::s(\d+))?(?::v(\d+))?(?::c(\d+))?(:loss)?", spec)
        if not m or any(g is not None and int(g) < 1 for g in m.groups()[:4]):
            raise ProxyError(
                f"gtn[:K][:sS][:vN][:cC][:loss] needs positive steps, seeds, validation images and "
                f"channels, got {spec!r}"
            )
        num = [int(g) if g else None for g in m.groups()[:4]]
        return GTNSteps(num[0], seeds=num[1] or 1, val_size=num[2], channels=num[3], metric="loss" if m[5] else "acc")
    known = ", ".join([*SIMPLE, "real:K", "gtn[:K][:sS][:vN][:cC][:loss]", "ensemble:A+B", "A+B", "search"])
    raise ProxyError(f"unknown proxy {spec!r} (known: {known})")


def needs_curriculum(proxy: Proxy) -> bool:
    if isinstance(proxy, Ensemble):
        return any(needs_curriculum(c) for c in proxy.components)
    return isinstance(proxy, GTNSteps) or (isinstance(proxy, SearchScore) and proxy.scorer.uses_gtn)


def parse_proxies(text: str, search: SearchConfig | None = None) -> list[Proxy]:
    names = [p for p in text.split(",") if p.strip()]
    if not names:
        raise ProxyError("no proxies given")
    return [make_proxy(p, search) for p in names]
