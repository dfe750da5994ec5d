"""End to end on Fashion-MNIST: search strategies at equal wall-clock budgets, run by run, resumable.

Each run is one ``gtnnas search`` (``configs/default.yaml``: C=8, N=1) with ``search.time_budget_s``
on an embedded Ray of ``--cpus`` CPUs, then its top cell (by the search's own validation accuracy)
retrained with the truth protocol (1 epoch, seeds 0 and 1; ranked among the truth table's 300 cells)
and for 5 epochs (seeds 0 and 1), so the comparison does not rest on the 1-epoch protocol alone.
Strategies:

- ``real_asha``: real-data-only ASHA (100 real SGD steps as rung 1, then two more rungs of 100; no screen);
- ``naswot``: NASWOT as rung 1 (no teacher) under plain ASHA (no screen);
- ``naswot_screened``: the default job with NASWOT as rung 1 (the default's screen of 16 cells);
- ``gtn_reused``: the default job, its teacher found in the teacher store (the shipped one);
- ``gtn_fresh``: the default job meta-training its teacher inside its budget (a new data set's first search).

Exclusions are code, stated before the runs and applied to every strategy alike: a run is excluded when
the machine was shared while it ran, as the run itself measured it: the mean 1-minute load average sampled
during it (its provenance's ``load``) above the number of runs the command was told run side by side
(``--parallel``: one per core) plus :data:`LOAD_MARGIN`. The reason is stored in the run's record
(``excluded``), and ``--summarise`` leaves excluded runs out of every figure and lists them.

``--variant NAME=key=value,key=value`` adds a labelled strategy (the default job with overrides): the
allocation candidates are compared that way, on tuning seeds that are never reported.

Every finished run is one JSON line in ``benchmarks/results/search_fashion_mnist_runs.jsonl`` (keyed by
strategy, minutes and seed) with its provenance (commit, command, its own start, end and load); a rerun
of the same command skips what is there at the same commit (and not excluded), so it can be stopped and
continued, across sessions too.
Retrainings are cached by (cell, epochs, seed) in ``search_fashion_mnist_retrains.jsonl``, reused only
when made by the same training code and protocol (``code``, ``protocol``: hashes); a 1-epoch retraining
of a cell the truth table holds is the table's own row (the same protocol). ``--summarise`` writes
``search_fashion_mnist.json`` and a table.

    python -m benchmarks.search_fashion_mnist --strategies real_asha,gtn_reused --minutes 7 --seeds 0-4 --cpus 1
    python -m benchmarks.search_fashion_mnist --summarise

Run it under ``taskset -c 1`` with ``--cpus 1`` to keep the other core for other work: every strategy
then sees the same single core.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmarks import provenance
from benchmarks._common import table, write
from search.config import load_config
from search.data import load_dataset
from search.space import parse
from search.stats import mean_interval
from search.teacher_files import load_teacher
from search.train import train_arch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
RUNS = RESULTS / "search_fashion_mnist_runs.jsonl"
RETRAINS = RESULTS / "search_fashion_mnist_retrains.jsonl"
TRUTH = ROOT / "benchmarks" / "truth" / "fashion_mnist.parquet"
CONFIG = "configs/default.yaml"
STRATEGIES: dict[str, list[str]] = {  # the baselines pin search.screen=0 (plain ASHA; the default before 196e02b)
    "real_asha": ["search.score=none", "search.real_rungs=3", "search.real_steps=100", "search.screen=0"],
    "naswot": ["search.score=naswot", "search.screen=0"],
    "naswot_screened": ["search.score=naswot"],
    "gtn_reused": [],
    "gtn_fresh": ["search.teacher=fresh"],
}
LOAD_MARGIN = 1.0  # a run's mean load above --parallel + this: something else shared the machine
RETRAIN = ((1.0, (0, 1)), (5.0, (0, 1)))  # (epochs, seeds): the truth protocol, then a longer one
RETRAIN_CODE = ("search/train.py", "search/nets.py", "search/data.py", "search/space.py")  # a retraining's code


def parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- retraining


class Retrainer:
    """Train a cell with the truth protocol (``configs/default.yaml``, all 50k training images), cached.

    A cached retraining is reused only if the same code (``code``: a hash of :data:`RETRAIN_CODE`) and
    the same network and training settings (``protocol``) made it.
    """

    def __init__(self, threads: int):
        torch.set_num_threads(threads)
        self.cfg = load_config(ROOT / CONFIG, ["data.val_subset=null"])
        self.data = load_dataset("fashion_mnist", split_seed=self.cfg.data.split_seed)
        self.code = provenance.code_hash(RETRAIN_CODE)
        self.protocol_hash = provenance.config_hash({"net": asdict(self.cfg.net), "train": asdict(self.cfg.train)})
        self.cache = {
            (r["arch"], r["epochs"], r["seed"]): r
            for r in read_jsonl(RETRAINS)
            if (r.get("code"), r.get("protocol")) == (self.code, self.protocol_hash)
        }
        truth = pd.read_parquet(TRUTH)
        for r in truth[truth["budget_epochs"] == 1.0].to_dict("records"):
            self.cache.setdefault(
                (r["arch"], 1.0, int(r["seed"])),
                {
                    "arch": r["arch"],
                    "epochs": 1.0,
                    "seed": int(r["seed"]),
                    "val_acc": float(r["val_acc"]),
                    "test_acc": float(r["test_acc"]),
                    "seconds": float(r["seconds"]),
                    "source": "truth table",
                },
            )

    def run(self, arch: str, epochs: float, seed: int) -> dict[str, Any]:
        key = (arch, epochs, seed)
        if key not in self.cache:
            row = train_arch(
                parse(arch), self.data, self.cfg.net, replace(self.cfg.train, epochs=epochs, steps=None), seed=seed
            )
            rec = {
                "arch": arch,
                "epochs": epochs,
                "seed": seed,
                "val_acc": row["val_acc"],
                "test_acc": row["test_acc"],
                "seconds": row["seconds"],
                "source": "retrained",
                "code": self.code,
                "protocol": self.protocol_hash,
            }
            self.cache[key] = provenance.append_record(RETRAINS, rec)
        return self.cache[key]

    def protocol(self, arch: str, epochs_wanted: tuple[float, ...] = (1.0, 5.0)) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for epochs, seeds in RETRAIN:
            if epochs not in epochs_wanted:
                continue
            rows = [self.run(arch, epochs, s) for s in seeds]
            tag = f"e{epochs:g}"
            out[f"{tag}_val_acc"] = float(np.mean([r["val_acc"] for r in rows]))
            out[f"{tag}_test_acc"] = float(np.mean([r["test_acc"] for r in rows]))
            out[f"{tag}_runs"] = [{k: r[k] for k in ("seed", "val_acc", "test_acc", "source")} for r in rows]
        out["truth_rank"], out["truth_cells"] = truth_rank(out["e1_val_acc"])
        return out


def truth_rank(val_acc: float) -> tuple[int, int]:
    """1 + the number of truth cells whose 2-seed mean validation accuracy beats ``val_acc``."""
    t = pd.read_parquet(TRUTH)
    means = t[t["seed"].isin([0, 1])].groupby("arch")["val_acc"].mean()
    return int((means > val_acc).sum()) + 1, len(means)


# --------------------------------------------------------------------------- one run


def search(label: str, overrides: list[str], seed: int, minutes: float, cpus: int, storage: Path) -> dict[str, Any]:
    """One ``gtnnas search`` in a subprocess; what it found and what it spent."""
    name = f"{label}_m{minutes:g}_s{seed}"
    if (storage / name).exists():  # a run killed midway: start it again from nothing
        shutil.rmtree(storage / name)
    cmd = [
        sys.executable,
        "-m",
        "cluster.cli",
        "search",
        "--config",
        CONFIG,
        "--num-cpus",
        str(cpus),
        f"storage={storage}",
        f"name={name}",
        f"seed={seed}",
        "search.num_samples=100000",
        f"search.time_budget_s={minutes * 60}",
        *overrides,
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed: {out.stderr[-3000:]}")
    exp = storage / name
    final = pd.read_parquet(exp / "leaderboard.parquet")
    parts = pd.read_parquet(exp / "leaderboard")
    real = final.dropna(subset=["val_acc"])
    top = real.iloc[0] if len(real) else final.iloc[0]  # no cell reached real data: the best rung-1 score
    rec: dict[str, Any] = {
        "name": name,
        "wall_seconds": wall,
        "trials": int(parts["trial_id"].nunique()),
        "cells_screened": int(parts.dropna(subset=["rung1_score"])["arch_hash"].nunique())
        if "rung1_score" in parts
        else 0,
        "real_evaluations": int(parts.dropna(subset=["val_acc"])["arch_hash"].nunique()),
        "top_arch": str(top["arch"]),
        "search_val_acc": float(top["val_acc"]) if len(real) else None,
        "teacher_seconds": teacher_seconds(exp),
        "teacher_outer_steps": load_teacher(exp / "teacher.pt").outer_steps if (exp / "teacher.pt").exists() else None,
    }
    for col in [c for c in parts.columns if c.startswith("cs_")]:  # core-seconds by phase, where recorded
        rec[col] = float(parts.groupby("trial_id")[col].max().sum())
    return rec


def teacher_seconds(exp: Path) -> float | None:
    """Seconds from the experiment's start to a teacher meta-trained inside it (None: none was)."""
    teacher = exp / "teacher.pt"
    return teacher.stat().st_mtime - (exp / "experiment.json").stat().st_mtime if teacher.exists() else None


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--strategies", default="", help=f"comma-separated: {', '.join(STRATEGIES)} or a --variant")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=k=v,k=v",
        help="a labelled strategy: the default job with these overrides",
    )
    ap.add_argument("--minutes", type=float, default=7.0)
    ap.add_argument("--seeds", default="0-4", help="e.g. 0-4 or 100,101")
    ap.add_argument(
        "--role",
        choices=("report", "tuning"),
        default="report",
        help="tuning: runs that choose a setting (never reported as results)",
    )
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of each search's embedded Ray (and retraining threads)")
    ap.add_argument("--epochs", default="1,5", help="retrainings to run: 1 (the truth protocol, ranks) and/or 5")
    ap.add_argument("--keep", type=Path, default=ROOT / "runs" / "e2e", help="where experiments are kept")
    ap.add_argument("--parallel", type=int, default=1, help="runs side by side on this machine (one per core)")
    ap.add_argument("--summarise", action="store_true", help="only write search_fashion_mnist.json from the runs")
    ap.add_argument(
        "--commit",
        default=None,
        help="summarise only the runs made at this commit (default: the commit of the newest reported run)",
    )
    ap.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="where the JSON lines go (another checkout's "
        "benchmarks/results when this one runs from a frozen worktree)",
    )
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    ap = build_parser()
    args = ap.parse_args(argv)
    provenance.start(args)
    global RUNS, RETRAINS
    RUNS, RETRAINS = args.results / RUNS.name, args.results / RETRAINS.name
    strategies = dict(STRATEGIES)
    for v in args.variant:
        name, _, rest = v.partition("=")
        strategies[name] = [o for o in rest.split(",") if o]
    if not args.summarise:
        todo = [s for s in args.strategies.split(",") if s]
        unknown = [s for s in todo if s not in strategies]
        if unknown:
            ap.error(f"unknown strategy {unknown[0]!r}")
        done = done_runs(read_jsonl(RUNS), provenance.commit())
        retrainer = Retrainer(args.cpus)
        for seed in parse_seeds(args.seeds):  # interleaved by seed: the machine's drift hits every strategy alike
            for s in todo:
                if (s, args.minutes, seed) in done:
                    continue
                segment = provenance.Segment()  # this run's own start, end and load
                rec = {
                    "strategy": s,
                    "minutes": args.minutes,
                    "seed": seed,
                    "role": args.role,
                    "cpus": args.cpus,
                    "overrides": strategies[s],
                    "finished": None,
                }
                rec.update(search(s, strategies[s], seed, args.minutes, args.cpus, args.keep))
                rec.update(retrainer.protocol(rec["top_arch"], tuple(float(e) for e in args.epochs.split(","))))
                rec["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
                rec["parallel"] = args.parallel
                written = provenance.append_record(RUNS, rec, segment)
                if exclusion(written):
                    print(f"{s} seed {seed}: excluded ({exclusion(written)})", flush=True)
                print(
                    f"{s} {args.minutes:g} min seed {seed}: {rec['trials']} trials, {rec['real_evaluations']} real, "
                    f"rank {rec['truth_rank']}/{rec['truth_cells']}, 5-epoch val {rec.get('e5_val_acc')}",
                    flush=True,
                )
    summarise(args.commit)


def done_runs(rows: list[dict[str, Any]], commit: str | None) -> set[tuple[str, float, int]]:
    """(strategy, minutes, seed) of the runs a rerun skips: those made at ``commit`` and not excluded
    (an excluded run is run again; a run at another commit is not this comparison's)."""
    return {
        (r["strategy"], r["minutes"], r["seed"])
        for r in rows
        if (r.get("provenance") or {}).get("commit") == commit and exclusion(r) is None
    }


def exclusion(run: dict[str, Any]) -> str | None:
    """Why ``run`` is left out of the figures (the rule in the module docstring), or None."""
    load = (run.get("provenance") or {}).get("load") or {}
    allowed = float(run.get("parallel", 1)) + LOAD_MARGIN
    if load.get("mean") is not None and float(load["mean"]) > allowed:
        side = run.get("parallel", 1)
        return f"mean load {float(load['mean']):.2f} while it ran, above {allowed:g} ({side} side by side)"
    return None


def seeds_needed(diffs: list[float], effect: float = 10.0) -> int | None:
    """Paired seeds that would show a mean difference of ``effect`` at this spread: two-sided 5% level, 80%
    power (normal approximation, n = ((z_0.975 + z_0.8) sd / effect)^2, rounded up)."""
    if len(diffs) < 2:
        return None
    sd = float(np.std(diffs, ddof=1))
    return max(2, int(np.ceil(((1.959964 + 0.841621) * sd / effect) ** 2)))


def paired_differences(groups: dict[tuple[float, str], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """gtn_reused minus each other strategy, seed by seed at each budget (a seed gives every strategy the
    same first population, so runs of one seed are paired), with the 95% t interval of the mean."""
    out = []
    for (minutes, s), rs in sorted(groups.items()):
        mine = {r["seed"]: r for r in groups.get((minutes, "gtn_reused"), [])}
        theirs = {r["seed"]: r for r in rs}
        seeds = sorted(set(mine) & set(theirs))
        if s == "gtn_reused" or not seeds:
            continue
        row: dict[str, Any] = {"minutes": minutes, "against": s, "seeds": seeds}
        for k in ("truth_rank", "e1_val_acc", "e5_val_acc", "e5_test_acc"):  # test: no search selected on it
            d = [float(mine[x][k]) - float(theirs[x][k]) for x in seeds]
            row[f"{k}_diffs"], row[f"{k}_mean"], row[f"{k}_ci95"] = d, float(np.mean(d)), mean_interval(d)
        row["seeds_for_10_ranks"] = seeds_needed(row["truth_rank_diffs"])
        out.append(row)
    return out


def summarise(commit: str | None = None) -> None:
    reported = [r for r in read_jsonl(RUNS) if r.get("role") == "report"]
    if commit is None and reported:
        commit = (reported[-1].get("provenance") or {}).get("commit")
    at = [r for r in reported if (r.get("provenance") or {}).get("commit") == commit]
    runs = [r for r in at if exclusion(r) is None]
    excluded = [{**r, "excluded": exclusion(r)} for r in at if exclusion(r) is not None]
    groups: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["minutes"], r["strategy"]), []).append(r)
    summary = []
    for (minutes, s), rs in sorted(groups.items()):
        row: dict[str, Any] = {"minutes": minutes, "strategy": s, "runs": len(rs), "seeds": [r["seed"] for r in rs]}
        for k in ("trials", "cells_screened", "real_evaluations"):
            row[f"{k}_mean"] = float(np.mean([r[k] for r in rs]))
        for k in ("truth_rank", "e1_val_acc", "e5_val_acc", "e5_test_acc"):
            vals = [float(r[k]) for r in rs]
            row[f"{k}_mean"], row[f"{k}_ci95"] = float(np.mean(vals)), mean_interval(vals)
        row["truth_ranks"] = [r["truth_rank"] for r in rs]
        summary.append(row)
    paired = paired_differences(groups)
    path = write(
        "search_fashion_mnist",
        {
            "protocol": "each run: gtnnas search --config configs/default.yaml with search.time_budget_s; its top "
            "cell retrained 1 epoch (seeds 0, 1; the truth protocol; rank among the truth's 300 cells by "
            "the 2-seed mean val_acc) and 5 epochs (seeds 0, 1). Intervals: 95% t over seeds.",
            "strategies": STRATEGIES,
            "summary": summary,
            "paired": paired,
            "runs": runs,
            "commit": commit,
            "exclusion_rule": f"mean 1-minute load while the run ran > runs side by side + {LOAD_MARGIN:g}",
            "tuning_runs": [r for r in read_jsonl(RUNS) if r.get("role") == "tuning"],
            "excluded_runs": excluded,  # with the reason
            "other_commits": sorted({str((r.get("provenance") or {}).get("commit")) for r in reported} - {commit}),
        },
    )
    print(
        table(
            summary,
            [
                "minutes",
                "strategy",
                "runs",
                "trials_mean",
                "cells_screened_mean",
                "real_evaluations_mean",
                "truth_rank_mean",
                "e1_val_acc_mean",
                "e5_val_acc_mean",
            ],
        )
    )
    for p in paired:
        print(
            f"{p['minutes']:g} min, gtn_reused - {p['against']} over seeds {p['seeds']}: truth rank "
            f"{p['truth_rank_mean']:+.1f} {p['truth_rank_ci95']}, 5-epoch val acc {p['e5_val_acc_mean']:+.4f} "
            f"{p['e5_val_acc_ci95']}; seeds to show 10 ranks at this spread: {p['seeds_for_10_ranks']}"
        )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
