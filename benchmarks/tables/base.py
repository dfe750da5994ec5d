"""What every table generator shares: where the JSON is, the registry of tables by marker name, and
the Markdown formatting."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
TABLES: dict[str, Callable[[], str]] = {}


def table(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    def register(fn: Callable[[], str]) -> Callable[[], str]:
        TABLES[name] = fn
        return fn

    return register


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text())


def md(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pct(x: float, d: int = 1) -> str:
    return f"{x * 100:.{d}f}%"


def pm(mean: float, sd: float, d: int = 1) -> str:
    """A share and its SD in points: ``61.4% ± 2.0``."""
    return f"{mean * 100:.{d}f}% ± {sd * 100:.{d}f}"


def ci(v: float, lo_hi: list[float], d: int = 3, ci_d: int | None = None, sign: str = "", strong: bool = False) -> str:
    """``0.853 [0.807, 0.886]``; ``strong``: the figure in bold."""
    c = ci_d if ci_d is not None else d
    head = f"{v:{sign}.{d}f}"
    return f"{bold(head, strong)} [{lo_hi[0]:{sign}.{c}f}, {lo_hi[1]:{sign}.{c}f}]"


def bold(s: str, yes: bool = True) -> str:
    return f"**{s}**" if yes else s


def top_of(values: list[float | None]) -> float | None:
    have = [v for v in values if v is not None]
    return max(have) if have else None
