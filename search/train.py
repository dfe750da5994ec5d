"""Real-data training and evaluation: the baseline, the truth builder and the ``real:k`` proxy.

Plain SGD with (Nesterov) momentum, cosine learning rate and weight decay. The batch order comes
from an explicit generator and the weights from :func:`search.nets.net_from`'s seed, so the same
seed gives the same result on CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .config import NetConfig, TrainConfig
from .data import Dataset, Split
from .nets import count_flops, count_params, net_from
from .space import Arch


@dataclass(frozen=True)
class TrainResult:
    val_acc: float
    val_loss: float
    test_acc: float | None
    test_loss: float | None
    train_loss: float  # mean over the last 10% of steps
    steps: int
    seconds: float  # all of it
    eval_seconds: float = 0.0  # of which evaluating


def cosine(i: int, steps: int, final: float = 0.0) -> float:
    """Cosine decay of a learning rate's factor from 1 at step 0 to ``final`` at ``steps`` (and after)."""
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: Split,
    *,
    bn: Literal["running", "batch"],
    batch_size: int = 1000,
    prefixes: tuple[int, ...] | None = None,
) -> dict[int, tuple[float, float]]:
    """(accuracy, mean cross-entropy) on the first n images for each n in ``prefixes`` (default: all).

    ``bn``: BatchNorm normalises with its running statistics (eval mode; real-data training) or with
    each batch's own (a learner trained a few steps on a curriculum, as MAML and the GTN code do). A
    batch never spans a prefix's end, so a prefix's numbers do not depend on how many images follow.
    """
    was_training = model.training
    model.train(bn == "batch")
    out, correct, total, done = {}, 0, 0.0, 0
    for n in sorted(prefixes or (len(split),)):
        while done < min(n, len(split)):
            j = min(done + batch_size, n, len(split))
            logits = model(split.x[done:j])
            total += F.cross_entropy(logits, split.y[done:j], reduction="sum").item()
            correct += int((logits.argmax(1) == split.y[done:j]).sum())
            done = j
        out[n] = (correct / max(done, 1), total / max(done, 1))
    model.train(was_training)
    return out


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
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
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
            group["lr"] = cfg.lr * cosine(step, steps)
        loss = F.cross_entropy(model(train_split.x[idx]), train_split.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.item())
    trained = time.perf_counter()
    val_acc, val_loss = _whole(model, val, cfg) if val is not None else (float("nan"),) * 2
    test_acc, test_loss = _whole(model, test, cfg) if test is not None else (None, None)
    end = time.perf_counter()
    return TrainResult(val_acc, val_loss, test_acc, test_loss, sum(tail) / len(tail), steps, end - start, end - trained)


def _whole(model: nn.Module, split: Split, cfg: TrainConfig) -> tuple[float, float]:
    return evaluate(model, split, bn="running", batch_size=cfg.eval_batch_size)[len(split)]


def train_arch(
    arch: Arch, data: Dataset, net: NetConfig, cfg: TrainConfig, *, seed: int = 0, with_test: bool = True
) -> dict[str, float | int | str | None]:
    """Build ``arch`` and train it on real data; a flat dict ready for a table or ``tune.report``."""
    model = net_from(arch, net, data, seed=seed, device=data.train.x.device)
    res = train(model, data.train, cfg, seed=seed, val=data.val, test=data.test if with_test else None)
    return {
        "arch": str(arch),
        "arch_hash": arch.equiv_hash(),
        "seed": seed,
        "val_acc": res.val_acc,
        "val_loss": res.val_loss,
        "test_acc": res.test_acc,
        "train_loss": res.train_loss,
        "steps": res.steps,
        "seconds": res.seconds,
        "params": count_params(model),
        "flops": count_flops(model),
    }
