"""The result tables of benchmarks/README.md and README.md ("Results at a glance"), written from the JSON.

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` and is written by the function
registered under NAME, which reads the JSON under ``benchmarks/results/`` that holds its figures; no
figure in a table is typed by hand.

    python -m benchmarks.tables            # rewrite the tables in place
    python -m benchmarks.tables --check    # exit 1, naming each table that differs from its JSON
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from benchmarks.tables import budget, ranking, readme, search, speed, teachers  # noqa: F401 (each registers its tables)
from benchmarks.tables.base import RESULTS, ROOT, TABLES, bold, ci, load, md, pct, pm, table, top_of

__all__ = [
    "DOCS",
    "MARKED",
    "RESULTS",
    "ROOT",
    "TABLES",
    "bold",
    "build_parser",
    "ci",
    "load",
    "main",
    "md",
    "pct",
    "pm",
    "render",
    "table",
    "top_of",
]

DOCS = (ROOT / "benchmarks" / "README.md", ROOT / "README.md")
MARKED = re.compile(r"(<!-- table:([\w-]+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


def render(text: str) -> tuple[str, list[str], list[str]]:
    """``text`` with every marked table rewritten; the names of those that changed, and unknown names."""
    stale: list[str] = []
    unknown: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in TABLES:
            unknown.append(name)
            return m.group(0)
        new = TABLES[name]()
        if new != m.group(3):
            stale.append(name)
        return m.group(1) + new + m.group(4)

    return MARKED.sub(sub, text), stale, unknown


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tables", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale table")
    ap.add_argument(
        "--doc", action="append", type=Path, help="a Markdown file to process (repeatable; default: both READMEs)"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    docs = args.doc or list(DOCS)
    problems, used = [], set()
    for doc in docs:
        text = doc.read_text()
        new, stale, unknown = render(text)
        used |= {m.group(2) for m in MARKED.finditer(text)}
        problems += [f"{doc}: no generator for table {n!r}" for n in unknown]
        if args.check:
            problems += [f"{doc}: table {n!r} differs from its JSON" for n in stale]
        elif new != text:
            doc.write_text(new)
            print(f"{doc}: rewrote {', '.join(stale)}")
    if not args.doc:
        problems += [f"table {n!r} is in neither README" for n in sorted(set(TABLES) - used)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems and args.check:
        print("regenerate with: python -m benchmarks.tables", file=sys.stderr)
    return 1 if problems else 0
