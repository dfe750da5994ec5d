"""Meta-training a teacher: the outer loop.

Each outer step samples a learner (a fresh NB201 cell by default, so the teacher generalises across
the space it will score), unrolls T inner steps on the teacher's curriculum (:mod:`search.inner_loop`),
and takes an Adam step on the meta-loss (cosine-decayed learning rate, optional gradient clipping). A
non-finite meta-loss or meta-gradient stops with :class:`MetaTrainingError` naming the outer step,
before anything is saved. Under a time limit the last step is planned as it goes
(:mod:`search.time_plan`); the resumable state and the finished teacher's file are
:mod:`search.teacher_files`' formats.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ExperimentConfig, GTNConfig
from .curriculum import gtn_score, materialize
from .data import Dataset
from .errors import InputError
from .gtn import Teacher
from .inner_loop import draw_meta_batches, learner_seed, make_learner, meta_batch_count, unroll_as
from .rank import Pool, load_pool, ranking_gradient
from .space import parse
from .teacher_files import load_state, save_state
from .time_plan import fit_plan
from .train import cosine


class MetaTrainingError(RuntimeError):
    """Meta-training diverged (NaN/inf); nothing was saved."""


@dataclass(frozen=True)
class OuterStep:
    step: int
    meta_loss: float
    learner_acc: float  # accuracy of this step's learner on its final meta batch
    learner: str
    seconds: float
    meta_lr: float  # of latents/pixels and the lr/momentum schedule (the generator's: gtn.generator_meta_lr)
    val_acc: float | None = None  # held-out architecture trained on the curriculum, when validated
    rank_order: float | None = None  # share of the step's learner pairs ordered as their targets (rank_weight > 0)
    least_plan: int | None = None  # under a time limit: the fewest outer steps planned so far (below
    # gtn.outer_steps, the teacher is not the configured one even if it ran them all)


@dataclass
class _Training:
    """A meta-training in progress: what carries from one outer step to the next (and into a checkpoint)."""

    teacher: Teacher
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    gen: torch.Generator
    rng: np.random.Generator
    plan: list[int]  # [the last outer step]: a time limit may cut it (the schedule reads it each step)
    least: int  # the fewest steps ever planned: below outer_steps, the schedule was not the configured one
    first: int = 1  # this run's first outer step (later than 1 when it continues a checkpoint)


@dataclass
class _TimeLimit:
    """Meta-training within ``seconds`` of ``began`` (the set-up counts too)."""

    seconds: float
    began: float
    warm: float = 0.0  # time from ``began`` to the end of this run's first step, which pays the warm-up

    def replan(self, run: _Training, it: int, outer_steps: int) -> None:
        """Plan the last step from the pace so far, at outer step ``it`` (:func:`fit_plan`)."""
        elapsed = time.perf_counter() - self.began
        self.warm = elapsed if it == run.first else self.warm
        run.plan[0] = fit_plan(outer_steps, run.plan[0], it, it - run.first + 1, elapsed, self.warm, self.seconds)
        run.least = min(run.least, run.plan[0])


def train_teacher(
    cfg: ExperimentConfig,
    data: Dataset,
    *,
    callback: Callable[[OuterStep], None] | None = None,
    checkpoint: str | Path | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
    seconds: float | None = None,
) -> Teacher:
    """Meta-train a teacher with ``cfg.gtn`` on ``data`` (its train split).

    With ``seconds``, meta-training fits in that time: once a few steps are timed, the last step is
    planned from their pace at every step (:func:`fit_plan`; the cosine schedule ends on it), and a step
    that would overrun stops it; ``callback``'s last step says how many ran.

    With ``checkpoint``, everything needed to continue (teacher, optimiser and schedule state, both
    RNGs, the step) is written there atomically every ``gtn.checkpoint_every`` outer steps, and when
    the file exists at the start, training continues from it: on CPU the result equals an
    uninterrupted run's bit for bit. ``on_checkpoint(path)`` runs after each write (the search's
    teacher stage uploads it to the experiment's storage).
    """
    began = time.perf_counter()  # a time limit counts the set-up too
    limit = None if seconds is None else _TimeLimit(seconds, began)
    g = cfg.gtn
    run = _set_up(cfg, data, checkpoint)
    val = data.val.head(g.validate_size)
    pool = _rank_pool(g)
    for it in range(run.first, g.outer_steps + 1):
        if it > run.plan[0]:
            break
        start = time.perf_counter()
        step = _outer_step(run, cfg, data, pool, it, limit)
        val_acc = None
        if it % g.validate_every == 0 or it == run.plan[0]:
            val_acc = validate(run.teacher, cfg, data, val)
        if callback is not None:  # before the checkpoint, so what it logs covers every step the checkpoint does
            limited = run.least if limit is not None or run.least < g.outer_steps else None
            callback(replace(step, seconds=time.perf_counter() - start, val_acc=val_acc, least_plan=limited))
        if checkpoint is not None and it % g.checkpoint_every == 0 and it < run.plan[0]:
            save_state(checkpoint, cfg, it, run.teacher, run.opt, run.sched, run.gen, run.rng, (run.plan[0], run.least))
            if on_checkpoint is not None:
                on_checkpoint(Path(checkpoint))
    return run.teacher


def _set_up(cfg: ExperimentConfig, data: Dataset, checkpoint: str | Path | None) -> _Training:
    """The teacher, its optimiser, cosine schedule and both RNGs: fresh (warm-started from real images
    as configured), or as the meta-training state at ``checkpoint`` left them when that file exists."""
    g = cfg.gtn
    gen = torch.Generator().manual_seed(g.seed)
    rng = np.random.default_rng(g.seed)
    teacher = Teacher(g, data.shape, data.num_classes, gen).to(data.train.x.device)
    state = load_state(checkpoint, cfg) if checkpoint is not None and Path(checkpoint).is_file() else None
    if state is None and g.pixels_init == "real":
        teacher.init_pixels_from(data.train, gen)
    if state is None and g.generator_init == "real":
        teacher.fit_generator_to(data.train, gen, g.generator_init_steps)
    opt = _optimizer(teacher, g)
    plan = [g.outer_steps]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: cosine(i, plan[0], g.final_relative_lr))
    run = _Training(teacher, opt, sched, gen, rng, plan, least=g.outer_steps)
    if state is not None:
        _resume(run, state, g.outer_steps)
    return run


def _optimizer(teacher: Teacher, g: GTNConfig) -> torch.optim.Adam:
    """Adam over the teacher, the generator in its own group when it has its own rate."""
    gen_params = list(teacher.generator.parameters()) if teacher.generator is not None else []
    rest = [p for n, p in teacher.named_parameters() if not n.startswith("generator.")]
    groups = [{"params": rest}] + (
        [{"params": gen_params, "lr": g.generator_meta_lr or g.meta_lr}] if gen_params else []
    )
    return torch.optim.Adam(groups, lr=g.meta_lr, betas=(0.9, g.meta_beta2), eps=g.meta_eps)


def _resume(run: _Training, state: dict[str, Any], outer_steps: int) -> None:
    """Continue after the step a meta-training state (:func:`search.teacher_files.load_state`) was saved at."""
    run.teacher.load_state_dict(state["teacher"])
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    run.gen.set_state(state["gen"])
    run.rng.bit_generator.state = json.loads(state["rng"])
    run.first = int(state["step"]) + 1
    run.plan[0] = int(state.get("planned", outer_steps))
    run.least = int(state.get("least_plan", run.plan[0]))


def _rank_pool(g: GTNConfig) -> Pool | None:
    """The cells whose real accuracies the teacher learns to rank (``rank_weight > 0``), else None."""
    pool = load_pool(g.rank_pool) if g.rank_weight > 0 else None
    if pool is not None and len(pool.archs) < g.learners_per_step:
        raise InputError(f"gtn.rank_pool: {len(pool.archs)} cells, fewer than learners_per_step")
    return pool


def _outer_step(
    run: _Training, cfg: ExperimentConfig, data: Dataset, pool: Pool | None, it: int, limit: _TimeLimit | None
) -> OuterStep:
    """Outer step ``it`` up to the teacher's update: the gradient, clipped and checked finite, the time
    limit's plan (before the schedule steps, so the next step's rate follows the new plan), then the
    optimiser and schedule steps. The step's record leaves seconds, validation and plan to the caller."""
    g = cfg.gtn
    order = None
    if pool is not None:
        try:
            loss, acc, name, order = ranking_gradient(run.teacher, cfg, data, pool, run.rng, run.gen, it)
        except ArithmeticError as e:
            raise MetaTrainingError(f"{e}; try a lower gtn.meta_lr or gtn.rank_weight") from None
    else:
        loss, acc, name = meta_gradient(run.teacher, cfg, data, run.rng, run.gen, it)
    if g.grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(run.teacher.parameters(), g.grad_clip)
    bad = [n for n, p in run.teacher.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    if bad:
        raise MetaTrainingError(f"non-finite meta-gradient at outer step {it} in {', '.join(bad[:3])}")
    meta_lr = run.opt.param_groups[0]["lr"]
    if limit is not None:
        limit.replan(run, it, g.outer_steps)
    run.opt.step()
    run.sched.step()
    return OuterStep(it, loss, acc, name, 0.0, meta_lr, rank_order=order)


def meta_gradient(
    teacher: Teacher, cfg: ExperimentConfig, data: Dataset, rng: np.random.Generator, gen: torch.Generator, it: int
) -> tuple[float, float, str]:
    """Set the teacher's .grad to outer step ``it``'s meta-gradient; (meta-loss, learner accuracy, learner).

    With ``learners_per_step`` L > 1, L fresh learners are unrolled one after another (so memory
    stays that of one) and their meta-losses and gradients averaged, as MAML averages over tasks.
    """
    g = cfg.gtn
    teacher.zero_grad(set_to_none=True)
    loss, acc, name = 0.0, 0.0, ""
    for j in range(g.learners_per_step):
        learner, name = make_learner(g, data.shape, data.num_classes, rng, seed=learner_seed(g.seed, it, j))
        learner.to(data.train.x.device)
        plan = teacher.plan(gen, data.train)
        batches = draw_meta_batches(data.train, meta_batch_count(g), g.meta_batch, gen)
        res = unroll_as(g, learner, teacher, plan, batches)
        one = float(res.meta_loss.detach())
        if not math.isfinite(one):
            raise MetaTrainingError(
                f"meta-loss is {one} at outer step {it} (learner {name}); "
                f"try a lower gtn.meta_lr or gtn.init_lr, or set gtn.grad_clip"
            )
        (res.meta_loss / g.learners_per_step).backward()
        loss, acc = loss + one / g.learners_per_step, acc + res.final_acc / g.learners_per_step
    return loss, acc, name


def validate(teacher: Teacher, cfg: ExperimentConfig, data: Dataset, val: Any = None) -> float:
    """Accuracy of the held-out architecture trained for T steps on the current curriculum."""
    cur = materialize(teacher, dataset=data.name, mean=data.mean, std=data.std, real=data.train, seed=cfg.gtn.seed)
    arch = parse(cfg.gtn.validate_arch)
    res = gtn_score(
        arch,
        cur,
        val if val is not None else data.val,
        seed=cfg.gtn.seed,
        channels=cfg.net.channels,
        cells=cfg.net.cells,
        num_classes=data.num_classes,
    )
    return res["gtn_score"]
