"""Real-data training and evaluation: the baseline, the truth builder and the ``real:k`` proxy.

Plain SGD with (Nesterov) momentum, cosine learning rate and weight decay. The batch order comes
from an explicit generator and the weights from :func:`search.nets.build_net`'s seed, so the same
seed gives the same result on CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import NetConfig, TrainConfig
from .data import Dataset, Split
from .nets import build_net, count_flops, count_params
from .space import Arch


@dataclass(frozen=True)
class TrainResult:
    val_acc: float
    val_loss: float
    test_acc: float | None
    test_loss: float | None
    train_loss: float  # mean over the last 10% of steps
    steps: int
    seconds: float


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, batch_size: int = 1000) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) in eval mode."""
    was_training = model.training
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(split), batch_size):
        x, y = split.x[i : i + batch_size], split.y[i : i + batch_size]
        out = model(x)
        loss += F.cross_entropy(out, y, reduction="sum").item()
        correct += int((out.argmax(1) == y).sum())
    model.train(was_training)
    n = max(len(split), 1)
    return correct / n, loss / n


def total_steps(cfg: TrainConfig, n_train: int) -> int:
    if cfg.steps is not None:
        return cfg.steps
    return max(1, math.ceil(cfg.epochs * n_train / cfg.batch_size))


def train(
    model: nn.Module,
    train_split: Split,
    cfg: TrainConfig,
    *,
    seed: int = 0,
    val: Split | None = None,
    test: Split | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` (or ``cfg.epochs``) and evaluate it."""
    start = time.perf_counter()
    n = len(train_split)
    steps = total_steps(cfg, n)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
        nesterov=cfg.nesterov and cfg.momentum > 0,
    )
    model.train()
    perm, pos, tail = torch.randperm(n, generator=gen), 0, []
    bs = min(cfg.batch_size, n)
    for step in range(steps):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=gen), 0
        idx = perm[pos : pos + bs].to(train_split.x.device)
        pos += bs
        for group in opt.param_groups:
            group["lr"] = 0.5 * cfg.lr * (1 + math.cos(math.pi * step / steps))
        loss = F.cross_entropy(model(train_split.x[idx]), train_split.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.item())
    val_acc, val_loss = evaluate(model, val, cfg.eval_batch_size) if val is not None else (float("nan"),) * 2
    test_acc, test_loss = evaluate(model, test, cfg.eval_batch_size) if test is not None else (None, None)
    return TrainResult(val_acc, val_loss, test_acc, test_loss, sum(tail) / len(tail), steps,
                       time.perf_counter() - start)


def net_for(arch: Arch, net: NetConfig, data: Dataset, seed: int) -> nn.Module:
    c, h, _ = data.shape
    return build_net(arch, channels=net.channels, cells=net.cells, in_channels=c, image_size=h,
                     num_classes=data.num_classes, norm=net.norm, seed=seed, device=data.train.x.device)


def train_arch(
    arch: Arch, data: Dataset, net: NetConfig, cfg: TrainConfig, *, seed: int = 0, with_test: bool = True
) -> dict[str, float | int | str | None]:
    """Build ``arch`` and train it on real data; a flat dict ready for a table or ``tune.report``."""
    model = net_for(arch, net, data, seed)
    res = train(model, data.train, cfg, seed=seed, val=data.val, test=data.test if with_test else None)
    return {
        "arch": str(arch), "arch_hash": arch.equiv_hash(), "seed": seed,
        "val_acc": res.val_acc, "val_loss": res.val_loss, "test_acc": res.test_acc,
        "train_loss": res.train_loss, "steps": res.steps, "seconds": res.seconds,
        "params": count_params(model), "flops": count_flops(model),
    }
