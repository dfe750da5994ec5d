"""The benchmark docs stay true: the result tables are their JSON's, every command in benchmarks/README.md
works as written, and every benchmark writes its results with their provenance."""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.cli import build_parser as gtnnas_parser

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of scripts beside the installed packages
    sys.path.insert(0, str(ROOT))
provenance = importlib.import_module("benchmarks.provenance")
tables = importlib.import_module("benchmarks.tables")
done_runs = importlib.import_module("benchmarks.search_fashion_mnist").done_runs
README = ROOT / "benchmarks" / "README.md"
PREFIXES = ("python -m benchmarks.", "python benchmarks/", "gtnnas ")
SCRIPTS = sorted(
    [p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem not in {"__init__", "_common", "provenance"}]
    + [p.parent.name for p in (ROOT / "benchmarks").glob("*/__main__.py")]  # packages: benchmarks/tables/
)


def readme_commands(text: str) -> list[str]:
    """Each command in ``text``: lines of its code blocks (continued by ``\\``) and inline code spans
    that start with ``python -m benchmarks.``, ``python benchmarks/`` or ``gtnnas``."""
    found = []
    prose = []
    for i, part in enumerate(text.split("```")):
        if i % 2 == 0:
            prose.append(part)
            continue
        for line in part.replace("\\\n", " ").splitlines():
            line = re.sub(r"^taskset -c \S+ ", "", line.strip())  # pinned to a core: the command is the rest
            if line.startswith(PREFIXES):
                found.append(line)
    for m in re.finditer(r"`([^`]+)`", "\n\n".join(prose)):
        span = " ".join(m.group(1).split())  # a span may wrap onto the next line
        if span.startswith(PREFIXES):
            found.append(span)
    return found


def parse(command: str) -> None:
    """Parse ``command``'s arguments with its own parser; fails the test with argparse's message."""
    words = shlex.split(command, comments=True)
    if words[0] == "gtnnas":
        parser, args = gtnnas_parser(), words[1:]
    else:
        assert words[:2] == ["python", "-m"], f"not `python -m benchmarks.X`: {command}"
        module = importlib.import_module(words[2])
        assert hasattr(module, "build_parser"), f"{words[2]} has no build_parser()"
        parser, args = module.build_parser(), words[3:]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            parser.parse_args(args)
        except SystemExit as e:
            pytest.fail(f"`{command}` does not parse (exit {e.code}): {err.getvalue().strip()}")


# --------------------------------------------------------------------------- tables


def test_every_table_is_its_json():
    assert tables.main(["--check"]) == 0, "a table differs from its JSON: run python -m benchmarks.tables"


def test_the_check_fails_on_a_typed_number_and_the_rewrite_restores_it(tmp_path, capsys):
    doc = tmp_path / "README.md"
    original = README.read_text()
    region = re.search(r"<!-- table:train-speed -->\n(.*?)<!-- /table:train-speed -->", original, re.S)
    assert region, "benchmarks/README.md has no train-speed table"
    altered = region.group(1).replace("| 245 |", "| 246 |", 1)
    assert altered != region.group(1)
    doc.write_text(original.replace(region.group(1), altered))
    assert tables.main(["--check", "--doc", str(doc)]) == 1
    assert "train-speed" in capsys.readouterr().err
    assert tables.main(["--doc", str(doc)]) == 0
    assert doc.read_text() == original
    assert tables.main(["--check", "--doc", str(doc)]) == 0


def test_a_marker_without_a_generator_is_an_error(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("<!-- table:nonesuch -->\n| a |\n<!-- /table:nonesuch -->\n")
    assert tables.main(["--check", "--doc", str(doc)]) == 1


# --------------------------------------------------------------------------- commands


def test_the_readme_commands_are_found():
    commands = readme_commands(README.read_text())
    assert len(commands) > 25
    assert not [c for c in commands if c.startswith("python benchmarks/")], "use `python -m benchmarks.X`"


@pytest.mark.parametrize("command", readme_commands(README.read_text()), ids=lambda c: c[:60])
def test_every_readme_command_parses(command):
    parse(command)


HELP_ALL = """
import runpy, sys
failed = []
for name in sys.argv[1:]:
    sys.argv = [name, "--help"]
    try:
        runpy.run_module(f"benchmarks.{name}", run_name="__main__", alter_sys=True)
        failed.append(f"{name}: --help did not exit")
    except SystemExit as e:
        if e.code not in (0, None):
            failed.append(f"{name}: exit {e.code}")
print("FAILED:", failed)
"""


def test_every_benchmark_answers_help():
    """Each script run as ``python -m benchmarks.X --help`` (as ``__main__``), all in one fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", HELP_ALL, *SCRIPTS], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("usage:") == len(SCRIPTS), out.stdout[-3000:]
    assert "FAILED: []" in out.stdout, out.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_answers_help_in_its_own_process(name):
    out = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0 and "usage:" in out.stdout, out.stderr[-2000:]


# --------------------------------------------------------------------------- provenance


@pytest.mark.parametrize("name", [s for s in SCRIPTS if s != "tables"])
def test_every_benchmark_starts_a_run_and_takes_draft(name):
    source = (ROOT / "benchmarks" / f"{name}.py").read_text()
    assert "provenance.start(" in source, f"{name} never calls provenance.start(args)"
    module = importlib.import_module(f"benchmarks.{name}")
    assert "--draft" in {o for a in module.build_parser()._actions for o in a.option_strings}  # noqa: SLF001


def test_every_committed_result_json_records_a_commit():
    listed = subprocess.run(
        ["git", "ls-files", "benchmarks/results/*.json", "benchmarks/results/history/*.json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert listed
    missing = [p for p in listed if "commit" not in json.loads((ROOT / p).read_text()).get("provenance", {})]
    assert not missing, f"result JSONs without a provenance commit: {missing}"


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setattr(provenance, "_current", None)
    return monkeypatch


def test_a_reported_run_on_a_dirty_tree_is_refused(run, capsys):
    run.setattr(provenance, "changed_paths", lambda outputs=(): ["search/x.py"])
    with pytest.raises(SystemExit) as e:
        provenance.start({"seeds": 2, "draft": False})
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("refused:") and "search/x.py" in err and "\n" not in err
    assert provenance.start({"seeds": 2, "draft": True}).draft  # --draft lets it run, marked


def test_results_carry_their_provenance(run, tmp_path):
    run.setattr(provenance, "changed_paths", lambda outputs=(): [])
    provenance.start({"seeds": 2, "out": tmp_path / "x", "draft": False})
    path = provenance.write_result(tmp_path / "r.json", {"figure": 1.5})
    p = json.loads(path.read_text())["provenance"]
    assert p["commit"] and re.fullmatch(r"[0-9a-f]{40}", p["commit"])
    assert p["dirty"] is False and p["draft"] is False
    assert p["config"] == {"seeds": 2, "out": str(tmp_path / "x")}
    assert p["config_hash"] == provenance.config_hash(p["config"]) and len(p["config_hash"]) == 12
    assert {"cpu", "cores", "torch", "python", "ray", "cuda"} <= set(p["machine"]) and "hostname" not in p["machine"]
    assert p["command"].startswith("python ")
    assert p["started"] <= p["ended"] and p["started"].endswith("+00:00")
    assert p["load"]["min"] <= p["load"]["mean"] <= p["load"]["max"] and p["load"]["samples"] >= 2
    segment = provenance.Segment()
    line = provenance.append_record(tmp_path / "r.jsonl", {"seed": 0}, segment)
    assert (
        json.loads((tmp_path / "r.jsonl").read_text())["provenance"]["started"]
        == segment.started
        == (line["provenance"]["started"])
    )


def test_the_dirty_check_ignores_results_docs_and_the_runs_own_outputs(monkeypatch):
    status = " M search/x.py\n M benchmarks/results/a.json\n M README.md\n?? benchmarks/truth/pool.parquet\n"
    monkeypatch.setattr(provenance, "_git", lambda *a: status)
    assert provenance.changed_paths() == ["search/x.py", "benchmarks/truth/pool.parquet"]
    assert provenance.changed_paths([ROOT / "benchmarks" / "truth" / "pool.parquet"]) == ["search/x.py"]


def test_score_caches_are_named_by_the_code_that_computes_them():
    proxies_eval = importlib.import_module("benchmarks.proxies_eval")
    name = proxies_eval.cache_file(Path("runs/scores"), "zero_cost").name
    assert re.fullmatch(r"zero_cost\.[0-9a-f]{10}\.parquet", name)
    assert name.split(".")[1] == provenance.code_hash(proxies_eval.SCORE_CODE)
    assert provenance.code_hash(["search/proxies.py"]) != provenance.code_hash(["search/nets.py"])


def test_the_end_to_end_rerun_skips_only_clean_runs_at_its_own_commit():
    def row(seed, commit, load, parallel=2):
        prov = {"commit": commit, "load": {"mean": load}}
        return {"strategy": "gtn_reused", "minutes": 7.0, "seed": seed, "parallel": parallel, "provenance": prov}

    rows = [row(0, "old", 1.0), row(1, "new", 1.9), row(2, "new", 3.5), row(3, None, 1.0)]
    assert done_runs(rows, "new") == {("gtn_reused", 7.0, 1)}  # seed 0: another commit; seed 2: excluded (shared)
    assert done_runs(rows + [row(2, "new", 2.2)], "new") == {("gtn_reused", 7.0, 1), ("gtn_reused", 7.0, 2)}
