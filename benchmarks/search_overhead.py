"""Search overhead: how much of the trials' wall time is spent scoring, and how many architectures
a core scores per minute. 200 trials of the small preset (GTN score only, random search, FIFO) on
an embedded 2-CPU Ray, then the same on a simulated 2-worker cluster (ray.cluster_utils.Cluster:
a head with no CPUs and two 1-CPU workers). Writes benchmarks/results/search_overhead.json.
``--saving`` instead compares Tune saving its state every control-loop step (``search.state_save:
step``, what crash-consistent resume needs) with its own timer, twice each, interleaved, and writes
benchmarks/results/resume_overhead.json.

    python -m benchmarks.search_overhead [--trials 200] [--skip-cluster] [--saving]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import provenance
from benchmarks._common import table, write
from cluster.tune_compat import init_local
from search.config import load_config
from search.data import load_dataset
from search.outer_loop import train_teacher
from search.teacher_files import save_teacher

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")

PRESET = [
    "data.val_subset=2000",
    "net.channels=8",
    "net.cells=1",
    "gtn.inner_steps=16",
    "gtn.inner_batch=64",
    "gtn.outer_steps=2",
    "gtn.validate_every=1000",
    "search.searcher=random",
    "search.scheduler=fifo",
    "search.real_rungs=0",
    "search.cpus_per_trial=1",
    "search.flush_rows=100",
]


def make_teacher(folder: Path) -> Path:
    cfg = load_config(None, PRESET)
    data = load_dataset("fashion_mnist", train_subset=5000, val_subset=500)
    path = folder / "teacher.pt"
    save_teacher(path, train_teacher(cfg, data), cfg, data, cfg.gtn.outer_steps)
    return path


def run(label: str, teacher: Path, storage: Path, trials: int, slots: int, extra: tuple[str, ...] = ()) -> dict:
    from ray.tune import ExperimentAnalysis  # noqa: PLC0415  (lazy: Ray only after the environment above is set)

    from cluster.search_run import run_search  # noqa: PLC0415  (lazy: it imports Ray, as above)

    cfg = load_config(
        None,
        PRESET
        + [f"storage={storage}", f"name={label}", f"search.teacher={teacher}", f"search.num_samples={trials}", *extra],
    )
    start = time.perf_counter()
    final, root, _ = run_search(cfg)
    wall = time.perf_counter() - start
    df = ExperimentAnalysis(str(root)).dataframe()
    score_s = df["score_seconds"].where(~df["cached"], 0.0)
    return {
        "setup": label,
        "trials": len(df),
        "slots": slots,
        "wall_seconds": wall,
        # the share of trial wall time not spent in score(): fetching, caching, reporting, Tune
        "overhead_fraction": 1 - float(score_s.sum()) / float(df["time_total_s"].sum()),
        # the same over the whole run, driver start-up, actor, scheduling gaps and idle slots included
        "end_to_end_overhead_fraction": 1 - float(score_s.sum()) / (wall * slots),
        "archs_per_core_minute": len(df) / (wall * slots / 60),
        "score_seconds_mean": float(df.loc[~df["cached"], "score_seconds"].mean()),
        "fetch_seconds_mean": float(df["fetch_seconds"].mean()),
        "fetch_seconds_median": float(statistics.median(df["fetch_seconds"])),
        "cache_hits": int(df["cached"].sum()),
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--skip-cluster", action="store_true")
    ap.add_argument(
        "--saving",
        action="store_true",
        help="compare search.state_save step (the default) with Tune's "
        "timer on the embedded Ray; writes resume_overhead.json",
    )
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    import ray  # noqa: PLC0415  (lazy: Ray only after the environment above is set)

    if args.saving:
        return compare_saving(args.trials)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        teacher = make_teacher(tmp)
        init_local(num_cpus=2, include_dashboard=False, configure_logging=False)
        try:
            rows.append(run("local_2cpu", teacher, tmp / "runs", args.trials, 2))
        finally:
            ray.shutdown()
        if not args.skip_cluster:
            from ray.cluster_utils import Cluster  # noqa: PLC0415  (lazy: as ray)

            c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1"})
            for _ in range(2):
                c.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            ray.init(address=c.address)
            try:
                rows.append(run("cluster_2x1cpu", teacher, tmp / "runs", args.trials, 2))
            finally:
                ray.shutdown()
                c.shutdown()
    first = rows[0]
    path = write(
        "search_overhead",
        {
            "preset": PRESET,
            "overhead_fraction": first["overhead_fraction"],
            "archs_per_core_minute": first["archs_per_core_minute"],
            "runs": rows,
        },
    )
    print(
        table(
            rows,
            [
                "setup",
                "trials",
                "wall_seconds",
                "overhead_fraction",
                "end_to_end_overhead_fraction",
                "archs_per_core_minute",
                "score_seconds_mean",
                "fetch_seconds_mean",
                "cache_hits",
            ],
        )
    )
    print(f"\nwrote {path}")


def compare_saving(trials: int) -> None:
    """The overhead of saving Tune's state every control-loop step (crash consistency) against its timer."""
    import ray  # noqa: PLC0415  (lazy: Ray only after the environment above is set)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        teacher = make_teacher(tmp)
        for policy in ("timer", "step", "timer", "step"):  # interleaved: the machine's drift hits both
            init_local(num_cpus=2, include_dashboard=False, configure_logging=False)
            try:
                rows.append(
                    {
                        "state_save": policy,
                        **run(
                            f"{policy}_{len(rows)}", teacher, tmp / "runs", trials, 2, (f"search.state_save={policy}",)
                        ),
                    }
                )
            finally:
                ray.shutdown()
    summary = {
        p: {
            k: statistics.mean(r[k] for r in rows if r["state_save"] == p)
            for k in ("overhead_fraction", "end_to_end_overhead_fraction", "wall_seconds")
        }
        for p in ("timer", "step")
    }
    path = write("resume_overhead", {"preset": PRESET, "trials": trials, "summary": summary, "runs": rows})
    print(
        table(
            rows,
            [
                "state_save",
                "trials",
                "wall_seconds",
                "overhead_fraction",
                "end_to_end_overhead_fraction",
                "archs_per_core_minute",
            ],
        )
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
