"""The teacher's two file formats: the finished teacher and the resumable meta-training state.

A teacher checkpoint (:func:`save_teacher`, :func:`load_teacher`) holds the teacher, its config, data
set, key (:func:`search.teacher_key.teacher_key`) and versions in one file that loads with
``torch.load(weights_only=True)``; any problem reading one is one :class:`CheckpointError` line. The
meta-training state (:func:`save_state`, :func:`load_state`) holds everything a resumed run needs to
continue bit for bit, and is refused by a run with another teacher key.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ExperimentConfig, config_from_dict
from .curriculum import Curriculum, materialize
from .data import Dataset
from .errors import CheckpointError, first_line
from .files import atomic_write
from .gtn import Teacher
from .teacher_key import teacher_key
from .versions import versions

FORMAT = "gtnnas-teacher"
MAX_CHECKPOINT_BYTES = 2 * 2**30  # the most a teacher file handed to us may hold (refused unread above it)
FORMAT_VERSION = 1
STATE_FORMAT = "gtnnas-teacher-state"


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
        "data_id": data.identity,  # what a loader compares (a source by its content, wherever it lies)
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
    if (size := path.stat().st_size) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(
            f"{path}: {size / 2**20:,.0f} MiB, more than the {MAX_CHECKPOINT_BYTES / 2**20:,.0f} MiB a teacher may take"
        )
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
    trained_on = blob.get("data_id", blob["dataset"])  # teachers saved before data ids: the built-in's name
    if expect_dataset is not None and trained_on != expect_dataset:
        raise CheckpointError(f"{path}: teacher was trained on {trained_on}, not {expect_dataset}")
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
