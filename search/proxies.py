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

Spec strings (``synflow``, ``gtn:32:s2``, ``ensemble:a+b``, a search's score) become proxies in
:mod:`search.proxy_specs`, which also holds the compositions.

A degenerate network (a cell with no path from input to output) can make the kernel or the Jacobian
correlation singular; those scores are -inf (worst), not NaN, so rankings stay total.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import NetConfig, TrainConfig
from .curriculum import Curriculum, gtn_score
from .data import Dataset
from .errors import ProxyError
from .nets import Network, count_flops, count_params, net_from
from .scoring import gtn_name
from .space import Arch
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
        return net_from(arch, self.net, self, seed=self.seed, device=self.device).to(dtype)

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


SIMPLE: dict[str, type[_Single]] = {c.name: c for c in (Params, Flops, Synflow, Naswot, JacobCov, Snip, GradNorm)}
