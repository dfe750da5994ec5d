"""Helpers shared by the benchmark scripts: JSON output (with provenance), a printed table, the real-data baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.provenance import write_result
from search.config import load_config
from search.curriculum import gtn_score, materialize
from search.gtn import Teacher

RESULTS = Path(__file__).resolve().parent / "results"


def write(name: str, payload: dict[str, Any]) -> Path:
    """``benchmarks/results/<name>.json`` with its provenance (the run :func:`benchmarks.provenance.start` began)."""
    return write_result(RESULTS / f"{name}.json", {"benchmark": name, **payload})


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        return f"{v:,.3f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def real_baseline(
    arch: Any, data: Any, overrides: list[str], lrs: tuple[float, ...], seeds: int, **net: Any
) -> tuple[float, list[float]]:
    """Real batches at a fixed learning rate (no meta-learning), the baseline GTN must beat at equal steps.

    ``overrides`` set the GTN config's T, B, momentum, learner norm; the lr of ``lrs`` with the best
    accuracy on 2,000 validation images wins (ties: the larger), then its test accuracy for each seed
    (each seed also draws its own real batches). Returns (lr, test accuracies).
    """

    def curriculum(lr: float, seed: int) -> Any:
        cfg = load_config(None, [*overrides, "gtn.curriculum=real", f"gtn.init_lr={lr}"])
        return materialize(
            Teacher(cfg.gtn, data.shape, data.num_classes),
            dataset=data.name,
            mean=data.mean,
            std=data.std,
            real=data.train,
            seed=seed,
        )

    val = data.val.head(2000)
    _, lr = max((gtn_score(arch, curriculum(lr, 0), val, seed=0, **net)["gtn_score"], lr) for lr in lrs)
    return lr, [gtn_score(arch, curriculum(lr, s), data.test, seed=s, **net)["gtn_score"] for s in range(seeds)]
