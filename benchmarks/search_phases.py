"""Where the default job's cores go: core-seconds by phase, the idle share, cells screened and promoted.

Runs ``gtnnas search --config configs/default.yaml`` (plus overrides) on an embedded Ray of ``--cpus``
CPUs and reads the split the search writes into its final table's metadata (``gtnnas.phases``: each
trial's core-seconds by phase, summed, against cores x the search stage's wall time). Each labelled
run is added to ``benchmarks/results/search_phases.json`` (a label run again replaces its record).

    python -m benchmarks.search_phases --label after [--cpus 2] [key=value ...]
    python -m benchmarks.search_phases --label demo --from runs/default --wall 640 --cpus 2   # a search run elsewhere
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks._common import RESULTS, machine, table
from results.storage import read_metadata
from search.files import write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = RESULTS / "search_phases.json"


def run(label: str, cpus: int, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "cluster.cli",
            "search",
            "--config",
            "configs/default.yaml",
            "--num-cpus",
            str(cpus),
            f"storage={tmp}",
            "name=phases",
            *overrides,
        ]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"{label} failed: {out.stderr[-2000:]}")
        return record(label, Path(tmp) / "phases", cpus, wall, overrides)


def record(label: str, experiment: Path, cpus: int, wall: float | None, overrides: list[str]) -> dict:
    """The phases a finished search wrote into its final table's metadata, as one labelled record."""
    meta = read_metadata(pq.read_schema(experiment / "leaderboard.parquet").metadata)
    return {
        "label": label,
        "overrides": overrides,
        "cpus": cpus,
        "total_wall_seconds": wall,
        **meta["phases"],
        "calibration": meta.get("calibration"),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--from", dest="experiment", type=Path, help="record a search already run (its folder)")
    ap.add_argument("--wall", type=float, help="with --from: the command's wall seconds, as measured")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    args = ap.parse_args()
    if args.experiment:
        rec = record(args.label, args.experiment, args.cpus, args.wall, args.overrides)
    else:
        rec = run(args.label, args.cpus, args.overrides)
    old = json.loads(OUT.read_text()) if OUT.exists() else {"benchmark": "search_phases", "runs": []}
    runs = [r for r in old["runs"] if r["label"] != args.label] + [rec]
    write_json(OUT, {"benchmark": "search_phases", "machine": machine(), "runs": runs}, indent=2)
    rows = [
        {
            "label": r["label"],
            "total_s": r["total_wall_seconds"],
            "search_s": r["wall_seconds"],
            **{p: r["share"][p] for p in r["share"]},
            "idle": r["idle_share"],
            "screened": r["cells_screened"],
            "promoted": r["cells_promoted"],
        }
        for r in runs
    ]
    print(table(rows, list(rows[-1])))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
