"""The one list of score components: every cheap score a search can name, and where it lands.

The score parser (:mod:`search.scoring`), the combination (:mod:`search.rank_combination`), the leaderboard's
schema and final table (:mod:`results.leaderboard`), the shared actor's cache and the command line's
help all read this list, so a component added here is scored, stored, combined and shown everywhere,
and none can be dropped by a list written twice. Free of torch, numpy and Ray.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    """One cheap score of a cell."""

    name: str  # as ``search.score`` names it
    column: str  # the leaderboard column that holds it
    needs_data: bool  # computed on real images (else from the cell alone: benchmark mode can read it)
    integer: bool = False  # a count, stored as an integer
    log_scale: bool = False  # combined as a logarithm: ranks are unchanged, and a dead cell's 0 stays finite
    extra: tuple[str, ...] = ()  # further columns it fills beside its own
    doc: str = ""


COMPONENTS: tuple[Component, ...] = (
    Component("gtn", "gtn_score", True, extra=("gtn_val_loss",), doc="fresh networks trained on the curriculum"),
    Component("params", "params", False, integer=True, log_scale=True, doc="parameter count"),
    Component("flops", "flops", False, integer=True, log_scale=True, doc="multiply-accumulates of one image"),
    Component("synflow", "synflow", False, log_scale=True, doc="synaptic flow at initialisation"),
    Component("naswot", "naswot", True, doc="activation-pattern kernel of one real batch"),
    Component("jacob_cov", "jacob_cov", True, doc="input-Jacobian correlation of one real batch"),
)
BY_NAME: dict[str, Component] = {c.name: c for c in COMPONENTS}
NAMES: tuple[str, ...] = tuple(BY_NAME)
DATA_FREE: tuple[str, ...] = tuple(c.name for c in COMPONENTS if not c.needs_data)
LOG_SCALE: tuple[str, ...] = tuple(c.name for c in COMPONENTS if c.log_scale)
SCORE_SECONDS = "score_seconds"  # how long the components took, cached with them


def columns() -> tuple[str, ...]:
    """Every column the components fill, in the list's order, extras after their component."""
    return tuple(col for c in COMPONENTS for col in (c.column, *c.extra))


def integer_columns() -> tuple[str, ...]:
    return tuple(c.column for c in COMPONENTS if c.integer)


def help_text() -> str:
    """The components for a command's help: ``gtn (fresh networks ...), params (...), ...``."""
    return ", ".join(f"{c.name} ({c.doc})" for c in COMPONENTS)
