"""Meta-training a teacher (the outer loop) and its checkpoints.

Each outer step samples a learner (a fresh NB201 cell by default, so the teacher generalises across
the space it will score), unrolls T inner steps on the teacher's curriculum, and takes an Adam step
on the meta-loss (cosine-decayed learning rate, optional gradient clipping). A non-finite meta-loss
or meta-gradient stops with :class:`MetaTrainingError` naming the outer step, before anything is
saved. Checkpoints hold the teacher, its config, data set and versions in one file that loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import math
import pickle
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .config import ExperimentConfig, config_from_dict
from .curriculum import Curriculum, gtn_score, materialize
from .data import Dataset
from .errors import CheckpointError, InputError, first_line  # noqa: F401  (CheckpointError re-exported)
from .files import atomic_write
from .gtn import Teacher
from .meta import autocast_dtype, draw_meta_batches, learner_seed, make_learner, meta_batch_count, unroll
from .rank import load_pool, ranking_gradient
from .space import parse
from .train import cosine

FORMAT = "gtnnas-teacher"
FORMAT_VERSION = 1


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
    began, warm = time.perf_counter(), 0.0  # a time limit counts the set-up too
    g = cfg.gtn
    gen = torch.Generator().manual_seed(g.seed)
    rng = np.random.default_rng(g.seed)
    device = data.train.x.device
    teacher = Teacher(g, data.shape, data.num_classes, gen).to(device)
    state = load_state(checkpoint, cfg) if checkpoint is not None and Path(checkpoint).is_file() else None
    if state is None and g.pixels_init == "real":
        teacher.init_pixels_from(data.train, gen)
    if state is None and g.generator_init == "real":
        teacher.fit_generator_to(data.train, gen, g.generator_init_steps)
    gen_params = list(teacher.generator.parameters()) if teacher.generator is not None else []
    rest = [p for n, p in teacher.named_parameters() if not n.startswith("generator.")]
    groups = [{"params": rest}] + (
        [{"params": gen_params, "lr": g.generator_meta_lr or g.meta_lr}] if gen_params else []
    )
    opt = torch.optim.Adam(groups, lr=g.meta_lr, betas=(0.9, g.meta_beta2), eps=g.meta_eps)
    plan = [g.outer_steps]  # the last outer step; a time limit may cut it (the schedule reads it each step)
    least = g.outer_steps  # the fewest steps ever planned: below outer_steps, the schedule was not the configured one
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: cosine(i, plan[0], g.final_relative_lr))
    first = 1
    if state is not None:
        teacher.load_state_dict(state["teacher"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["gen"])
        rng.bit_generator.state = json.loads(state["rng"])
        first = int(state["step"]) + 1
        plan[0] = int(state.get("planned", g.outer_steps))
        least = int(state.get("least_plan", plan[0]))
    val = data.val.head(g.validate_size)
    pool = load_pool(g.rank_pool) if g.rank_weight > 0 else None
    if pool is not None and len(pool.archs) < g.learners_per_step:
        raise InputError(f"gtn.rank_pool: {len(pool.archs)} cells, fewer than learners_per_step")
    for it in range(first, g.outer_steps + 1):
        if it > plan[0]:
            break
        start = time.perf_counter()
        order = None
        if pool is not None:
            try:
                loss, acc, name, order = ranking_gradient(teacher, cfg, data, pool, rng, gen, it)
            except ArithmeticError as e:
                raise MetaTrainingError(f"{e}; try a lower gtn.meta_lr or gtn.rank_weight") from None
        else:
            loss, acc, name = meta_gradient(teacher, cfg, data, rng, gen, it)
        if g.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(teacher.parameters(), g.grad_clip)
        bad = [n for n, p in teacher.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        if bad:
            raise MetaTrainingError(f"non-finite meta-gradient at outer step {it} in {', '.join(bad[:3])}")
        meta_lr = opt.param_groups[0]["lr"]
        if seconds is not None:  # before the schedule steps, so the next step's rate follows the new plan
            elapsed = time.perf_counter() - began
            warm = elapsed if it == first else warm
            plan[0] = fit_plan(g.outer_steps, plan[0], it, it - first + 1, elapsed, warm, seconds)
            least = min(least, plan[0])
        opt.step()
        sched.step()
        val_acc = None
        if it % g.validate_every == 0 or it == plan[0]:
            val_acc = validate(teacher, cfg, data, val)
        if callback is not None:  # before the checkpoint, so what it logs covers every step the checkpoint does
            limited = least if seconds is not None or least < g.outer_steps else None
            callback(OuterStep(it, loss, acc, name, time.perf_counter() - start, meta_lr, val_acc, order, limited))
        if checkpoint is not None and it % g.checkpoint_every == 0 and it < plan[0]:
            save_state(checkpoint, cfg, it, teacher, opt, sched, gen, rng, (plan[0], least))
            if on_checkpoint is not None:
                on_checkpoint(Path(checkpoint))
    return teacher


PLAN_AFTER = 3
"""Steady outer steps timed (after this run's first, which pays the warm-up) before a time limit plans."""


def fit_plan(outer_steps: int, plan: int, step: int, done: int, elapsed: float, warm: float, seconds: float) -> int:
    """The last outer step that fits in ``seconds``: ``done`` steps of this run (the latest ``step``) took
    ``elapsed``, the first of them ``warm``.

    Once :data:`PLAN_AFTER` steady steps are timed, the plan follows their mean pace at every step, with
    a 5% margin (so the cosine schedule ends where training does), never beyond ``outer_steps``; before
    that it stays at ``plan``. Whenever one more step at the pace so far would overrun, it stops here.
    """
    steady = done - 1 >= PLAN_AFTER
    pace = (elapsed - warm) / (done - 1) if steady else elapsed / done
    if elapsed + pace > seconds:
        return step
    if steady:
        plan = min(outer_steps, step + int((0.95 * seconds - elapsed) / pace))
    return max(plan, step)


STATE_FORMAT = "gtnnas-teacher-state"


CURRICULUM_VERSION = 2  # bump when a code change alters what a stored teacher's curriculum would be
NOT_TEACHER = {"data": ("val_subset",), "gtn": ("validate_every", "validate_size", "validate_arch", "checkpoint_every")}
"""Settings that only report on or save meta-training; they do not shape the teacher."""


def teacher_key(cfg: ExperimentConfig) -> str:
    """What a teacher depends on: the data set and its training split, the gtn settings (its own seed
    included) and the curriculum code's version; not the search, the network searched or the storage.
    Teacher stores file teachers under it, and a resumed meta-training refuses another key's state."""
    return f"{cfg.data.dataset}-{cfg.hash(('data', 'gtn'), NOT_TEACHER)}-v{CURRICULUM_VERSION}"


def save_state(
    path: str | Path,
    cfg: ExperimentConfig,
    step: int,
    teacher: Teacher,
    opt: Any,
    sched: Any,
    gen: torch.Generator,
    rng: np.random.Generator,
    plan: tuple[int, int] | None = None,
) -> None:
    """The resumable state after outer step ``step``, written atomically; ``plan``: a time limit's
    (planned last step, fewest planned so far)."""
    blob = {
        "format": STATE_FORMAT,
        "format_version": FORMAT_VERSION,
        "teacher_key": teacher_key(cfg),
        "step": step,
        "planned": cfg.gtn.outer_steps if plan is None else plan[0],
        "least_plan": cfg.gtn.outer_steps if plan is None else plan[1],
        "teacher": {k: v.detach().cpu() for k, v in teacher.state_dict().items()},
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "gen": gen.get_state(),
        "rng": json.dumps(rng.bit_generator.state),
    }
    with atomic_write(path) as f:
        torch.save(blob, f)


def load_state(path: str | Path, cfg: ExperimentConfig) -> dict[str, Any]:
    """A resumable state written by :func:`save_state` for this configuration; one line if not."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:  # truncated, foreign, not a zip
        raise CheckpointError(
            f"{path}: not a readable meta-training state ({type(e).__name__}); delete it to start over"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a gtn-nas meta-training state")
    if blob.get("teacher_key") != teacher_key(cfg):
        raise CheckpointError(
            f"{path}: written by a run with other seed, data or gtn settings; delete it to start over"
        )
    return blob


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
        res = unroll(
            learner,
            teacher,
            plan,
            batches,
            meta_loss_every=g.meta_loss_every,
            first_order=g.first_order,
            checkpointing=g.checkpointing,
            eval_bn=g.eval_bn,
            autocast=autocast_dtype(g),
        )
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


# --------------------------------------------------------------------------- checkpoints


def versions() -> dict[str, str]:
    return {
        "gtnnas": __version__,
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }


def save_teacher(
    path: str | Path,
    teacher: Teacher,
    cfg: ExperimentConfig,
    data: Dataset,
    outer_steps: int,
    provenance: dict[str, Any] | None = None,
    compact: bool = False,
) -> None:
    """Write atomically (temporary name, then rename) so a crash never leaves half a checkpoint.

    ``compact`` stores learned images in float16, which is what the curriculum holds anyway (half the
    file, the same curriculum; meta-training cannot continue from it exactly): for shipped teachers.
    """
    state = {k: v.detach().cpu() for k, v in teacher.state_dict().items()}
    if compact and "pixels" in state:
        state["pixels"] = state["pixels"].half()
    blob = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
        "teacher_key": teacher_key(cfg),
        "dataset": data.name,
        "shape": list(data.shape),
        "num_classes": data.num_classes,
        "mean": list(data.mean),
        "std": list(data.std),
        "outer_steps": outer_steps,
        "versions": versions(),
        "provenance": json.loads(json.dumps(provenance or {}, default=str)),
        "teacher": state,
    }
    with atomic_write(path) as f:
        torch.save(blob, f)


@dataclass(frozen=True)
class LoadedTeacher:
    teacher: Teacher
    config: ExperimentConfig
    dataset: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    outer_steps: int
    versions: dict[str, str]
    key: str | None = None  # teacher_key of the settings it was meta-trained with (None: written before keys)
    provenance: dict[str, Any] = field(default_factory=dict)  # how a shipped teacher was made

    def curriculum(self, real: Any = None) -> Curriculum:
        return materialize(
            self.teacher, dataset=self.dataset, mean=self.mean, std=self.std, real=real, seed=self.config.gtn.seed
        )


def load_teacher(path: str | Path, *, expect_dataset: str | None = None) -> LoadedTeacher:
    """Load and validate a checkpoint; any problem is one :class:`CheckpointError` line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such teacher checkpoint")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, pickle garbage, foreign objects
        raise CheckpointError(
            f"{path}: not a readable teacher checkpoint ({type(e).__name__}: {first_line(e)})"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gtn-nas teacher checkpoint (no '{FORMAT}' format tag)")
    if blob.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {blob.get('format_version')} (this gtnnas reads {FORMAT_VERSION})"
        )
    try:
        cfg = config_from_dict(blob["config"], str(path))
        teacher = Teacher(cfg.gtn, tuple(blob["shape"]), int(blob["num_classes"]))
        teacher.load_state_dict(blob["teacher"], strict=True)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: checkpoint does not match its config ({first_line(e, 200)})") from None
    if cfg.gtn.curriculum == "pixels" and "pixels_init" not in blob["config"].get("gtn", {}):
        raise CheckpointError(
            f"{path}: a pixels teacher from before learned images were stored unsquashed; train it again"
        )
    if expect_dataset is not None and blob["dataset"] != expect_dataset:
        raise CheckpointError(f"{path}: teacher was trained on {blob['dataset']}, not {expect_dataset}")
    return LoadedTeacher(
        teacher,
        cfg,
        blob["dataset"],
        tuple(blob["mean"]),
        tuple(blob["std"]),
        int(blob["outer_steps"]),
        dict(blob["versions"]),
        blob.get("teacher_key"),
        dict(blob.get("provenance") or {}),
    )
