"""The scoring API: freeze a teacher into a :class:`Curriculum`, then score architectures on it.

``materialize`` runs the teacher once and keeps only data: images, targets, per-step learning rate
and momentum, float16, with a content hash. ``gtn_score`` trains fresh networks of an architecture on
that curriculum (plain autograd, no meta-graph) and evaluates it on real validation data. This is
what the shared Ray actor serves and what every trial calls.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from .data import Split
from .gtn import Teacher, soft_cross_entropy
from .inner_loop import momentum_step
from .nets import net_from
from .shapes import InputSpec, NetSpec
from .space import Arch
from .train import evaluate


@dataclass(frozen=True)
class Curriculum:
    images: Tensor  # T x B x C x H x W, float16, normalised-data space
    targets: Tensor  # T x B x K, float16 (one-hot or learned soft labels)
    lr: Tensor  # T, float32
    momentum: Tensor  # T, float32
    dataset: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    norm: str = "gtn"  # normalisation of the learners it was meta-trained for
    eval_bn: Literal["batch", "running"] = "batch"  # BatchNorm statistics on real data: "batch" (its own) or "running"
    content_hash: str = field(default="", compare=False)

    @property
    def steps(self) -> int:
        return int(self.images.shape[0])

    def compute_hash(self) -> str:
        h = hashlib.sha256()
        for t in (self.images, self.targets, self.lr, self.momentum):
            h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
            h.update(np.ascontiguousarray(t.detach().cpu().numpy()).tobytes())
        h.update(repr((self.dataset, self.mean, self.std, self.norm, self.eval_bn)).encode())
        return h.hexdigest()[:16]

    def to_dict(self) -> dict:
        return {
            "images": self.images,
            "targets": self.targets,
            "lr": self.lr,
            "momentum": self.momentum,
            "dataset": self.dataset,
            "mean": list(self.mean),
            "std": list(self.std),
            "norm": self.norm,
            "eval_bn": self.eval_bn,
            "content_hash": self.content_hash,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Curriculum:
        c = cls(
            d["images"],
            d["targets"],
            d["lr"],
            d["momentum"],
            d["dataset"],
            tuple(d["mean"]),
            tuple(d["std"]),
            d["norm"],
            d["eval_bn"],
        )
        h = c.compute_hash()
        if d.get("content_hash") and d["content_hash"] != h:
            raise ValueError(f"curriculum content hash mismatch ({d['content_hash']} stored, {h} computed)")
        return _with_hash(c, h)


def _with_hash(c: Curriculum, h: str) -> Curriculum:
    object.__setattr__(c, "content_hash", h)
    return c


@torch.no_grad()
def materialize(
    teacher: Teacher,
    *,
    dataset: str,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    real: Split | None = None,
    seed: int = 0,
) -> Curriculum:
    """Run the teacher once and keep its T batches. Random curricula are drawn from ``seed``."""
    plan = teacher.plan(torch.Generator().manual_seed(seed), real)
    xs, ys = zip(*(teacher.batch(s) for s in plan), strict=True)
    c = Curriculum(
        torch.stack(xs).half().cpu(),
        torch.stack(ys).half().cpu(),
        teacher.lr().float().cpu(),
        teacher.momentum().float().cpu(),
        dataset,
        tuple(mean),
        tuple(std),
        teacher.cfg.learner_norm,
        teacher.cfg.eval_bn,
    )
    return _with_hash(c, c.compute_hash())


def train_on(
    arch: Arch,
    curriculum: Curriculum,
    *,
    steps: int | None = None,
    seed: int = 0,
    channels: int = 8,
    cells: int = 1,
    num_classes: int = 10,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """A fresh ``arch`` (weights from ``seed``) trained for ``steps`` (default T, cycling) on the curriculum."""
    inputs = InputSpec(tuple(curriculum.images.shape[2:]), num_classes)  # type: ignore[arg-type]
    net = net_from(arch, NetSpec(channels, cells, curriculum.norm), inputs, seed=seed, device=device)
    params = dict(net.named_parameters())
    velocity = {k: torch.zeros_like(p) for k, p in params.items()}
    images = curriculum.images.to(device=device, dtype=torch.float32)
    targets = curriculum.targets.to(device=device, dtype=torch.float32)
    lrs, moms = curriculum.lr.tolist(), curriculum.momentum.tolist()
    net.train()
    for t in range(steps if steps is not None else curriculum.steps):
        i = t % curriculum.steps
        loss = soft_cross_entropy(net(images[i]), targets[i])
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        with torch.no_grad():  # the meta-training update, not differentiated here
            new, velocity = momentum_step(params, velocity, dict(zip(params, grads, strict=True)), lrs[i], moms[i])
            for k, p in params.items():
                p.copy_(new[k])
    return net


def gtn_score(
    arch: Arch,
    curriculum: Curriculum,
    val: Split,
    *,
    steps: int | None = None,
    seed: int = 0,
    seeds: int = 1,
    val_size: int | None = None,
    channels: int = 8,
    cells: int = 1,
    num_classes: int = 10,
    eval_batch: int = 1000,
) -> dict[str, float]:
    """Train fresh ``arch`` networks on the curriculum and evaluate them on real validation data.

    ``seeds`` networks (weights from ``seed``, ``seed + 1``, ...) are trained for ``steps`` (default T,
    cycling the curriculum) and evaluated on the first ``val_size`` validation images (default all);
    their metrics are averaged, since one network's score is mostly its initialisation's luck.
    Returns ``gtn_score`` (validation accuracy), ``val_loss``, ``seconds``, ``steps``.
    """
    start = time.perf_counter()
    n = len(val) if val_size is None else min(val_size, len(val))
    accs, losses = [], []
    for s in range(seed, seed + seeds):
        net = train_on(
            arch,
            curriculum,
            steps=steps,
            seed=s,
            channels=channels,
            cells=cells,
            num_classes=num_classes,
            device=val.x.device,
        )
        acc, loss = evaluate(net, val, bn=curriculum.eval_bn, batch_size=eval_batch, prefixes=(n,))[n]
        accs.append(acc)
        losses.append(loss)
    return {
        "gtn_score": float(np.mean(accs)),
        "val_loss": float(np.mean(losses)),
        "seconds": time.perf_counter() - start,
        "steps": steps if steps is not None else curriculum.steps,
    }
