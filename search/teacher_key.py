"""A teacher's identity: what its curriculum depends on, as the key teacher stores file it under."""

from __future__ import annotations

from .config import ExperimentConfig
from .data import data_identity

CURRICULUM_VERSION = 2  # bump when a code change alters what a stored teacher's curriculum would be
NOT_TEACHER = {"data": ("val_subset",), "gtn": ("validate_every", "validate_size", "validate_arch", "checkpoint_every")}
"""Settings that only report on or save meta-training; they do not shape the teacher."""


def teacher_key(cfg: ExperimentConfig) -> str:
    """What a teacher depends on: the data set (a source by its content: :func:`search.data.data_identity`)
    and its training split, the gtn settings (its own seed included) and the curriculum code's version; not
    the search, the network searched, the storage or where a source lies. Teacher stores file teachers
    under it, and a resumed meta-training refuses another key's state."""
    ident = data_identity(cfg.data)
    skip = NOT_TEACHER if ident == cfg.data.dataset else {**NOT_TEACHER, "data": (*NOT_TEACHER["data"], "dataset")}
    return f"{ident}-{cfg.hash(('data', 'gtn'), skip)}-v{CURRICULUM_VERSION}"
