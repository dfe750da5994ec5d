"""The layers a newcomer can see: what reads results needs neither torch nor Ray; search/ never imports Ray."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
# Run the CLI in a fresh interpreter where importing torch, torchvision or ray raises ImportError, as if they
# were not installed: a finder refuses them (None in sys.modules would differ: scipy probes sys.modules["torch"]).
BLOCKED = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "ray"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Refuse())
from cluster.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _cli_without_torch_and_ray(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_leaderboard_report_and_compare_run_with_torch_and_ray_unimportable(smoke_search, tmp_path):
    _, final, exp, _, _ = smoke_search
    out = _cli_without_torch_and_ray("leaderboard", str(exp), "--top", "3", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert '"arch"' in out.stdout and out.stdout.count('"arch_hash"') == min(3, len(final))
    truth = tmp_path / "truth.parquet"

    pd.DataFrame(
        {
            "arch": list(final["arch"]) * 2,
            "seed": [0] * len(final) + [1] * len(final),
            "val_acc": list(final["params"] / 1e5) * 2,
            "test_acc": 0.5,
        }
    ).to_parquet(truth)
    rep = _cli_without_torch_and_ray("report", str(exp), "--out", str(tmp_path / "r"), "--truth", str(truth))
    assert rep.returncode == 0, rep.stderr
    assert (tmp_path / "r" / "index.html").is_file() and (tmp_path / "r" / "curriculum.png").is_file()
    cmp = _cli_without_torch_and_ray("compare", str(exp), str(exp))
    assert cmp.returncode == 0, cmp.stderr
    # the guard itself works: a command that needs torch fails in that interpreter
    assert _cli_without_torch_and_ray("arch", "info", final["arch"][0]).returncode != 0


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_import_rules_hold_in_the_source():
    for path in (ROOT / "results").glob("*.py"):
        assert not _imports(path) & {"torch", "ray", "torchvision", "cluster"}, path
    for path in (ROOT / "search").glob("*.py"):
        assert not _imports(path) & {"ray", "cluster", "results"}, path


def test_only_entry_points_import_the_cli():
    for path in (ROOT / "cluster").glob("*.py"):  # cluster/cli/ itself is the CLI; submit.py is an entry point
        if path.name == "submit.py":
            continue
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m == "cluster.cli" or m.startswith("cluster.cli.") for m in names), path
