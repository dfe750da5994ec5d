"""The docs stay true: every dotted config key they name exists, and every flag in the README's command
table is a flag of that command."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from cluster.cli import build_parser
from search.config import ExperimentConfig

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "benchmarks" / "README.md",
    ROOT / "search" / "teachers" / "README.md",
]
KEY = re.compile(r"(?<![\w./-])(data|net|train|baseline|gtn|search|retrain)\.([a-z_]+)(?![\w(])")


def _fields(section: str) -> set[str]:
    cls = {f.name: f.default_factory for f in dataclasses.fields(ExperimentConfig)}[section]()  # type: ignore[misc]
    return {f.name for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_dotted_config_key_in_the_docs_exists(doc):
    text = doc.read_text()
    named = {(m[1], m[2]) for m in KEY.finditer(text)}
    suffixes = {"py", "yaml", "md", "json", "parquet", "pt", "png", "csv"}  # file names such as search.py

    def module(s: str, k: str) -> bool:  # search.data is also the package's module
        return (ROOT / s / f"{k}.py").exists() or (ROOT / s / k).is_dir()

    missing = sorted(f"{s}.{k}" for s, k in named if k not in suffixes and not module(s, k) and k not in _fields(s))
    assert not missing, f"{doc.name} names config keys that do not exist: {missing}"
    assert named or doc.name != "README.md"


def test_every_flag_in_the_readmes_command_table_exists():
    text = (ROOT / "README.md").read_text()
    block = text.split("## The command line", 1)[1].split("```", 2)[1]
    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices  # noqa: SLF001
    checked = 0
    for line in block.splitlines():
        words = line.split("#")[0].split()
        if len(words) < 2 or words[0] != "gtnnas":
            continue
        p = subs[words[1]]
        nested = next((a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"), None)
        if nested is not None and len(words) > 2 and words[2] in nested.choices:
            p = nested.choices[words[2]]
        known = {o for a in p._actions for o in a.option_strings}
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", line.split("#")[0]):
            assert flag in known, f"README: `{' '.join(words[:3])}` has no {flag}"
            checked += 1
    assert checked > 20
