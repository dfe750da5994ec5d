"""Where the default job's cores go: core-seconds by phase, the idle share, cells screened and promoted.

Runs ``gtnnas search --config configs/default.yaml`` (plus overrides) on an embedded Ray of ``--cpus``
CPUs and reads the split the search writes into its final table's metadata (``gtnnas.phases``: each
trial's core-seconds by phase, summed, against cores x the search stage's wall time). ``--demo`` runs
the demo exactly as ``make demo`` does (``gtnnas search --config configs/default.yaml``, Ray's own CPU
count, no overrides). The command's wall time is measured here, around the search's process. Each
labelled run is added to ``benchmarks/results/search_phases.json`` with its provenance (a label run
again replaces its record).

    python -m benchmarks.search_phases --label after [--cpus 2] [key=value ...]
    python -m benchmarks.search_phases --label demo --demo [--keep runs/phases]
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

from benchmarks import provenance
from benchmarks._common import RESULTS, table
from results.storage import read_metadata

ROOT = Path(__file__).resolve().parents[1]
OUT = RESULTS / "search_phases.json"


def search_command(storage: Path, name: str, cpus: int | None, overrides: list[str]) -> list[str]:
    """``gtnnas search --config configs/default.yaml``, kept under ``storage/name`` (``cpus`` None: Ray's count)."""
    return [
        sys.executable,
        "-m",
        "cluster.cli",
        "search",
        "--config",
        "configs/default.yaml",
        *(["--num-cpus", str(cpus)] if cpus is not None else []),
        f"storage={storage}",
        f"name={name}",
        *overrides,
    ]


def run(label: str, cpus: int | None, overrides: list[str], keep: Path | None) -> dict:
    """One search in its own process, timed around the process; its phases as one labelled record."""
    with tempfile.TemporaryDirectory() as tmp:
        storage = keep or Path(tmp)
        start = time.perf_counter()
        out = subprocess.run(search_command(storage, label, cpus, overrides), cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"{label} failed: {out.stderr[-2000:]}")
        return record(label, storage / label, cpus, wall, overrides)


def record(label: str, experiment: Path, cpus: int | None, wall: float, overrides: list[str]) -> dict:
    """The phases a finished search wrote into its final table's metadata, as one labelled record."""
    meta = read_metadata(pq.read_schema(experiment / "leaderboard.parquet").metadata)
    return {
        "label": label,
        "overrides": overrides,
        "cpus": cpus if cpus is not None else meta["phases"].get("cores"),
        "total_wall_seconds": wall,
        **meta["phases"],
        "calibration": meta.get("calibration"),
        "provenance": provenance.current().provenance(),
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument(
        "--demo", action="store_true", help="the demo as `make demo` runs it: Ray's CPU count, no overrides"
    )
    ap.add_argument("--keep", type=Path, default=None, help="keep the experiment under this storage folder")
    ap.add_argument("overrides", nargs="*", metavar="key=value")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.demo and args.overrides:
        ap.error("--demo runs the demo as it is: no overrides")
    provenance.start(args)
    rec = run(args.label, None if args.demo else args.cpus, args.overrides, args.keep)
    old = json.loads(OUT.read_text()) if OUT.exists() else {"runs": []}
    runs = [r for r in old["runs"] if r["label"] != args.label] + [rec]
    provenance.write_result(OUT, {"benchmark": "search_phases", "runs": runs})
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
