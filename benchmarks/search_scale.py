"""Tune at scale: benchmark-mode searches of 1,000 and 10,000 trials on 2 CPUs (issue #14, item 3).

Each run is `gtnnas search --config configs/nb201_bench.yaml` (table lookups, no proxy rung, random
search, FIFO, four trials at a time) in its own process, so the driver's peak memory is its own. Reports
wall time, wall seconds per trial, the driver's peak RSS, and checks the leaderboard: one row per
result Tune recorded (counted per trial folder), no (trial_id, iteration) twice, no trial lost, and
every trial under its own id. Writes
benchmarks/results/search_scale.json.

    python -m benchmarks.search_scale [--trials 1000,10000]
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from benchmarks import provenance
from benchmarks._common import table, write

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [
    "search.score=none",
    "search.searcher=random",
    "search.seed_proxy=null",
    "search.scheduler=fifo",
    "search.cpus_per_trial=0.5",
    "search.state_save=timer",
    "search.flush_rows=500",
    "search.flush_seconds=30",
    "search.trial_logs=false",
]


def run(trials: int, storage: Path) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "cluster.cli",
        "search",
        "--config",
        "configs/nb201_bench.yaml",
        "--num-cpus",
        "2",
        f"storage={storage}",
        f"name=scale{trials}",
        f"search.num_samples={trials}",
        *SETTINGS,
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def watch() -> None:  # the driver's own resident memory, sampled twice a second
        p = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                peak[0] = max(peak[0], p.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            time.sleep(0.5)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{trials} trials failed: {err[-2000:]}")
    exp = storage / f"scale{trials}"
    raw = pd.read_parquet(exp / "leaderboard")  # the parts as any reader sees them, no dedupe
    # What Tune itself recorded: its saved experiment state lists every trial with its last result
    # (the search runs without per-trial result files; a trial keeps its own id there even when two
    # trials drew the same one, which Tune's analysis, keyed by id, would merge).
    state = json.loads(sorted(exp.glob("experiment_state-*.json"))[-1].read_text())
    trials_saved = [json.loads(t[0]) for t in state["trial_data"]]
    folders = [d for d in exp.iterdir() if d.is_dir() and d.name.startswith("nas_trainable_")]
    results = sum(
        int(json.loads(t[1]).get("last_result", {}).get("training_iteration", 0)) for t in state["trial_data"]
    )
    tune_ids = [t["trial_id"] for t in trials_saved]
    states = sorted(exp.glob("searcher-state-*.pkl"))  # our Deduplicated searcher's saved state
    refused = pickle.loads(states[-1].read_bytes()).get("refused") if states else None
    return {
        "requested": trials,
        "trials": int(raw["trial_id"].nunique()),
        "trial_folders": len(folders),
        "distinct_tune_ids": len(set(tune_ids)),
        "ids_refused": refused,
        "results": int(results),
        "rows": len(raw),
        "duplicates": int(raw.duplicated(["trial_id", "iteration"]).sum()),
        "lost": trials - int(raw["trial_id"].nunique()),
        "wall_seconds": wall,
        "seconds_per_trial": wall / trials,
        "driver_peak_rss_mb": peak[0] / 2**20,
        "evaluations_charged": int((raw["sim_epochs"] > 0).sum()),
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", default="1000,10000")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.trials.split(",")):
            rows.append(run(n, Path(tmp)))
            print(rows[-1], flush=True)
    by = {r["requested"]: r for r in rows}
    payload = {
        "settings": SETTINGS,
        "runs": rows,
        "trials": max(by),
        "results": by[max(by)]["results"],
        "rows": by[max(by)]["rows"],
        "duplicates": by[max(by)]["duplicates"],
        "wall_seconds": by[max(by)]["wall_seconds"],
        "driver_peak_rss_mb": by[max(by)]["driver_peak_rss_mb"],
        "seconds_per_trial_1k": by.get(1000, {}).get("seconds_per_trial"),
        "seconds_per_trial_10k": by.get(10000, {}).get("seconds_per_trial"),
    }
    path = write("search_scale", payload)
    print(
        table(
            rows,
            [
                "trials",
                "distinct_tune_ids",
                "ids_refused",
                "results",
                "rows",
                "duplicates",
                "lost",
                "wall_seconds",
                "seconds_per_trial",
                "driver_peak_rss_mb",
            ],
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
