"""Cheap architecture scores ("proxies") behind one small protocol, judged against real training.

Every proxy has a ``name``, its ``settings`` and ``score_many(archs, ctx) -> (scores, seconds)``;
higher means better. Single-architecture proxies implement ``value(arch, ctx)`` and inherit the loop.
Definitions follow the papers:

- ``params``, ``flops``: the network's size.
- ``synflow``: Tanaka et al. 2020, as a zero-cost proxy in Abdelfattah et al. 2021 ("Zero-Cost Proxies
  for Lightweight NAS"): absolute weights, an all-ones input, double precision, sum of |theta * dR/dtheta|.
  BatchNorm is in eval mode with fresh statistics, i.e. the identity, as in their BN-free copy.
- ``naswot``: Mellor et al. 2021 ("Neural Architecture Search without Training"): log-determinant of
  the kernel of binary ReLU codes, K = C C^T + (1-C)(1-C)^T, over one real batch.
- ``jacob_cov``: Mellor et al. 2020 (v1 of the same paper), as in Abdelfattah et al.: eigenvalues of the
  correlation matrix of per-image input Jacobians, -sum(log(v + k) + 1/(v + k)), k = 1e-5.
- ``snip`` (Lee et al. 2019) and ``grad_norm`` (Abdelfattah et al.): sum of |theta * dL/dtheta| and of
  per-layer gradient norms on one real batch.
- ``real:k``: k SGD steps on real data (cosine schedule), then validation accuracy.
- ``gtn:k``: k steps on the GTN curriculum, then validation accuracy (:func:`search.curriculum.gtn_score`).
- ``ensemble:a+b+...``: mean rank of its components over the scored population.

A degenerate network (a cell with no path from input to output) can make the kernel or the Jacobian
correlation singular; those scores are -inf (worst), not NaN, so rankings stay total.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import NetConfig, SearchConfig, TrainConfig
from .curriculum import Curriculum, gtn_score
from .data import Dataset
from .errors import ProxyError
from .nets import Network, build_net, count_flops, count_params
from .scoring import COMPONENTS, Scorer, as_columns, gtn_name
from .space import Arch
from .stats import ranks
from .train import train


@dataclass(frozen=True)
class ProxyContext:
    """What proxies may use. ``data`` is needed by data-dependent proxies, ``curriculum`` by ``gtn:k``.

    Networks are built on the data's device (the CPU without data): a proxy never mixes devices.
    """

    net: NetConfig = field(default_factory=NetConfig)
    shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10
    data: Dataset | None = None
    curriculum: Curriculum | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    batch_size: int = 64  # the real batch for naswot / jacob_cov / snip / grad_norm
    seed: int = 0

    @property
    def device(self) -> torch.device:
        return self.data.train.x.device if self.data is not None else torch.device("cpu")

    def build(self, arch: Arch, dtype: torch.dtype = torch.float32) -> Network:
        c, h, _ = self.shape
        net = build_net(
            arch,
            channels=self.net.channels,
            cells=self.net.cells,
            in_channels=c,
            image_size=h,
            num_classes=self.num_classes,
            norm=self.net.norm,
            seed=self.seed,
            device=self.device,
        )
        return net.to(dtype)

    def real_batch(self, name: str) -> tuple[Tensor, Tensor]:
        """A seeded batch of ``batch_size`` training images; the same for every architecture."""
        if self.data is None:
            raise ProxyError(f"proxy {name!r} needs real data, but none was given")
        n = len(self.data.train)
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))[: self.batch_size]
        idx = idx.to(self.device)
        return self.data.train.x[idx], self.data.train.y[idx]


class Proxy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def settings(self) -> dict: ...

    def score_many(self, archs: Sequence[Arch], ctx: ProxyContext) -> tuple[list[float], list[float]]: ...


class _Single:
    """Base for proxies that score one architecture at a time."""

    name = ""

    @property
    def settings(self) -> dict:
        return {}

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        raise NotImplementedError

    def score_many(self, archs: Sequence[Arch], ctx: ProxyContext) -> tuple[list[float], list[float]]:
        scores, secs = [], []
        for a in archs:
            start = time.perf_counter()
            scores.append(float(self.value(a, ctx)))
            secs.append(time.perf_counter() - start)
        return scores, secs


def _weights(net: nn.Module) -> list[Tensor]:
    """The conv and linear weights (the pruning literature's 'layers'); norms, biases, WN gains excluded."""
    return [p for n, p in net.named_parameters() if p.dim() > 1 and n.endswith(("weight", "weight_v"))]


class Params(_Single):
    name = "params"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        return float(count_params(ctx.build(arch)))


class Flops(_Single):
    name = "flops"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        return float(count_flops(ctx.build(arch)))


class Synflow(_Single):
    name = "synflow"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        net = ctx.build(arch, torch.float64).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.abs_()
        x = torch.ones((1, *ctx.shape), dtype=torch.float64, device=ctx.device)
        net(x).sum().backward()
        with torch.no_grad():
            return float(sum((w * w.grad).abs().sum() for w in _weights(net) if w.grad is not None))


class Naswot(_Single):
    name = "naswot"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        x, _ = ctx.real_batch(self.name)
        if len(x) < ctx.batch_size or len(x) < 2:
            raise ProxyError(f"naswot needs a batch of at least {max(ctx.batch_size, 2)} images, got {len(x)}")
        net = ctx.build(arch).train()
        k = torch.zeros(len(x), len(x), dtype=torch.float64, device=x.device)

        def hook(_m: nn.Module, inp: tuple[Tensor, ...], _out: Tensor) -> None:
            c = (inp[0].detach().flatten(1) > 0).double()
            k.add_(c @ c.t() + (1 - c) @ (1 - c).t())

        handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
        try:
            with torch.no_grad():
                net(x)
        finally:
            for h in handles:
                h.remove()
        sign, logdet = torch.linalg.slogdet(k)
        return float(logdet) if sign > 0 else -math.inf


class JacobCov(_Single):
    name = "jacob_cov"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        x, _ = ctx.real_batch(self.name)
        net = ctx.build(arch).train()
        x = x.clone().requires_grad_(True)
        out = net(x)
        (jac,) = torch.autograd.grad(out, x, torch.ones_like(out), allow_unused=True)
        if jac is None:  # the output does not depend on the input (no path through the cell)
            return -math.inf
        j = jac.flatten(1).double().cpu().numpy()
        if not np.isfinite(j).all() or (j.std(axis=1) == 0).any():
            return -math.inf
        v = np.linalg.eigvalsh(np.corrcoef(j))
        eps = 1e-5
        return float(-np.sum(np.log(v + eps) + 1.0 / (v + eps)))


def _loss_grads(name: str, arch: Arch, ctx: ProxyContext) -> list[tuple[Tensor, Tensor]]:
    """(weight, dLoss/dweight) for every layer on the shared real batch (fresh network, train mode)."""
    x, y = ctx.real_batch(name)
    net = ctx.build(arch).train()
    ws = _weights(net)
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), ws, allow_unused=True)
    return [(w.detach(), g) for w, g in zip(ws, grads, strict=True) if g is not None]


class Snip(_Single):
    name = "snip"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        return float(sum((w * g).abs().sum() for w, g in _loss_grads(self.name, arch, ctx)))


class GradNorm(_Single):
    name = "grad_norm"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        return float(sum(g.norm() for _, g in _loss_grads(self.name, arch, ctx)))


@dataclass
class _Steps(_Single):
    """Shared by ``real:k`` and ``gtn:k``: a step count in the name and settings."""

    steps: int = 32
    kind: ClassVar[str] = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"{self.kind}:{self.steps}"

    @property
    def settings(self) -> dict:
        return {"steps": self.steps}


class RealSteps(_Steps):
    kind = "real"

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        if ctx.data is None:
            raise ProxyError(f"proxy {self.name!r} needs real data, but none was given")
        net = ctx.build(arch).to(ctx.data.train.x.device)
        return train(net, ctx.data.train, replace(ctx.train, steps=self.steps), seed=ctx.seed, val=ctx.data.val).val_acc


@dataclass
class GTNSteps(_Single):
    """``gtn[:K][:sS][:vN][:cC][:loss]``: fresh networks trained K steps on the teacher's curriculum (default
    its T), the mean over S learner seeds, read on the first N validation images (default all), learners
    C channels wide (default the searched network's), by accuracy or by minus the mean loss."""

    steps: int | None = None
    seeds: int = 1
    val_size: int | None = None
    channels: int | None = None
    metric: str = "acc"

    @property
    def name(self) -> str:  # type: ignore[override]
        return gtn_name(self.steps, self.seeds, self.val_size, self.channels, self.metric)

    @property
    def settings(self) -> dict:
        return {
            "steps": self.steps,
            "seeds": self.seeds,
            "val_size": self.val_size,
            "channels": self.channels,
            "metric": self.metric,
        }

    def read(self, arch: Arch, ctx: ProxyContext) -> dict[str, float]:
        """``gtn_score`` (accuracy, or minus the loss), ``val_loss`` and ``accuracy``, means over the seeds."""
        if ctx.curriculum is None or ctx.data is None:
            raise ProxyError(f"proxy {self.name!r} needs a GTN curriculum and validation data")
        m = gtn_score(
            arch,
            ctx.curriculum,
            ctx.data.val,
            steps=self.steps,
            seed=ctx.seed,
            seeds=self.seeds,
            val_size=self.val_size,
            channels=self.channels or ctx.net.channels,
            cells=ctx.net.cells,
            num_classes=ctx.num_classes,
        )
        return {
            "gtn_score": m["gtn_score"] if self.metric == "acc" else -m["val_loss"],
            "val_loss": m["val_loss"],
            "accuracy": m["gtn_score"],
        }

    def value(self, arch: Arch, ctx: ProxyContext) -> float:
        return self.read(arch, ctx)["gtn_score"]


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
    same :class:`~search.scoring.Scorer` a search uses; a calibrated one combined with equal weights on
    ranks among the cells scored (where a live search starts, before it has real results to fit)."""

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
                    shape=ctx.shape,
                )
            )
            secs.append(time.perf_counter() - start)
        cal = self.scorer.calibrator([], rows) if self.scorer.calibrated else None
        return [self.scorer.value(r, cal) for r in rows], secs


def components(
    scorer: Scorer,
    arch: Arch,
    *,
    net: NetConfig,
    data: Dataset | None = None,
    curriculum: Curriculum | None = None,
    seed: int = 0,
    shape: tuple[int, int, int] | None = None,
) -> dict[str, float]:
    """Every component of ``scorer`` for ``arch`` by its column (plus the GTN score's loss), computed on
    networks of ``net`` on the data's device (benchmark mode reads them instead: :func:`search.nb201.components`)."""
    if shape is None:
        if data is None:
            raise ValueError("components need the data or the input shape")
        shape = data.shape
    out: dict[str, float] = {}
    ctx = ProxyContext(
        net=net,
        shape=shape,
        num_classes=data.num_classes if data is not None else 10,
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


SIMPLE: dict[str, type[_Single]] = {c.name: c for c in (Params, Flops, Synflow, Naswot, JacobCov, Snip, GradNorm)}


def make_proxy(spec: str, search: SearchConfig | None = None) -> Proxy:
    """``synflow``, ``real:128``, ``gtn:32``, ``ensemble:synflow+naswot``, ... -> a proxy.

    ``calibrated:A+B`` (or ``search``: ``search.score`` itself) is a search's rung-1 score with the GTN
    settings of ``search`` (the defaults without one).
    """
    spec = spec.strip()
    if spec in SIMPLE:
        return SIMPLE[spec]()
    kind, _, arg = spec.partition(":")
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
    known = ", ".join([*SIMPLE, "real:K", "gtn[:K][:sS][:vN][:cC][:loss]", "ensemble:A+B", "calibrated:A+B", "search"])
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
