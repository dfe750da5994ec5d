"""How fast `gtnnas leaderboard` answers on a big table: read + filter + top-10 over 100k synthetic rows.

Writes benchmarks/results/leaderboard_speed.json and prints a table. Each figure is the median of
--repeats runs of the library calls behind the CLI (cluster.analysis.load and top), plus one timed
run of the whole command in a fresh process (Python start-up and imports included).

    python -m benchmarks.leaderboard_speed [--rows 100000] [--experiments 10] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmarks import provenance
from benchmarks._common import table, write
from results.analysis import load, top
from results.storage import write_parquet
from search.space import all_archs


def synthetic(root: Path, rows: int, experiments: int, seed: int = 0) -> None:
    """``experiments`` folders, each with a leaderboard.parquet; ``rows`` rows in all."""
    rng = np.random.default_rng(seed)
    archs = [str(a) for a in all_archs()]
    per = rows // experiments
    for e in range(experiments):
        n = per if e < experiments - 1 else rows - per * (experiments - 1)
        params = rng.integers(5_000, 100_000, n)
        df = pd.DataFrame(
            {
                "experiment": f"exp{e}",
                "arch": rng.choice(archs, n),
                "arch_hash": rng.integers(0, 2**60, n).astype(str),
                "val_acc": rng.uniform(0.1, 0.9, n),
                "test_acc": rng.uniform(0.1, 0.9, n),
                "params": params,
                "flops": params * 90,
                "seconds": rng.uniform(1, 60, n),
                "seed": 0,
                "config_hash": "c" * 12,
                "curriculum": "h" * 16,
                "trial_id": [f"t{e}_{i}" for i in range(n)],
                "gtn_score": rng.uniform(0.1, 0.6, n),
                "trials": 1,
                "max_rung": rng.integers(1, 4, n),
            }
        )
        (root / f"exp{e}").mkdir(parents=True)
        write_parquet(pa.Table.from_pandas(df, preserve_index=False), str(root / f"exp{e}" / "leaderboard.parquet"))


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--experiments", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    where = "val_acc > 0.5 and params < 50000"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        synthetic(root, args.rows, args.experiments)
        matched = len(load(str(root), where))
        results = [
            {"step": "read all rows", "seconds": median_time(lambda: load(str(root)), args.repeats)},
            {"step": "read + filter", "seconds": median_time(lambda: load(str(root), where), args.repeats)},
            {
                "step": "read + filter + top-10",
                "seconds": median_time(lambda: top(load(str(root), where), 10), args.repeats),
            },
        ]
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cluster.cli",
                "leaderboard",
                str(root),
                "--where",
                where,
                "--top",
                "10",
                "--format",
                "json",
            ],
            check=True,
            capture_output=True,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ},
        )
        results.append({"step": "whole CLI command (fresh process)", "seconds": time.perf_counter() - start})
    print(f"{args.rows:,} rows in {args.experiments} experiments; filter {where!r} keeps {matched:,}")
    print(table(results, ["step", "seconds"]))
    path = write(
        "leaderboard_speed",
        {
            "rows": args.rows,
            "experiments": args.experiments,
            "where": where,
            "matched": matched,
            "repeats": args.repeats,
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
