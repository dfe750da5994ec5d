"""Where a search's cores went: core-seconds by phase, summed over trials, against cores x wall time.

Each trial reports its core-seconds so far by phase (``cs_startup``, ``cs_data``, ``cs_score``,
``cs_train``, ``cs_eval``; :mod:`cluster.trainable`); the newest report of a trial holds its totals.
What no trial accounts for (scheduling, Ray's and Tune's own work, reporting, cores waiting) is the
idle share. pandas only, like the rest of ``results``.
"""

from __future__ import annotations

from typing import Any

PHASES = ("startup", "data", "score", "train", "eval")  # the one list: trials, leaderboard, status line, report


def column(phase: str) -> str:
    """The leaderboard column of a phase's core-seconds."""
    return f"cs_{phase}"


COLUMNS = tuple(column(p) for p in PHASES)


def phase_split(parts: Any, cores: float | None = None, wall: float | None = None) -> dict[str, Any]:
    """Core-seconds by phase over every trial, their shares of ``cores x wall`` and the idle share, and
    the cells the cheap rung screened against those promoted to real rungs."""
    have = [c for c in COLUMNS if c in parts]
    per_trial = parts.groupby("trial_id")[have].max() if have and len(parts) else None
    seconds = {
        p: float(per_trial[column(p)].sum()) if per_trial is not None and column(p) in per_trial else 0.0
        for p in PHASES
    }
    out: dict[str, Any] = {
        "core_seconds": seconds,
        "trial_core_seconds": sum(seconds.values()),
        "cells_screened": int(parts.dropna(subset=["rung1_score"])["arch_hash"].nunique())
        if "rung1_score" in parts
        else 0,
        "cells_promoted": int(parts.dropna(subset=["val_acc"])["arch_hash"].nunique()) if "val_acc" in parts else 0,
    }
    if cores and wall:
        total = cores * wall
        out.update(
            cores=cores,
            wall_seconds=wall,
            share={p: v / total for p, v in seconds.items()},
            idle_share=max(0.0, 1.0 - out["trial_core_seconds"] / total),
        )
    return out


def split_line(split: dict[str, Any]) -> str:
    """``cores: score 18% | train 60% | eval 4% | startup 1% | data 0% | idle 17%`` (or core-seconds alone)."""
    if "share" not in split:
        return "core-s: " + " ".join(f"{p} {v:.0f}" for p, v in split["core_seconds"].items())
    parts = sorted(split["share"].items(), key=lambda kv: -kv[1])
    return "cores: " + " ".join(f"{p} {v:.0%}" for p, v in parts) + f" idle {split['idle_share']:.0%}"
