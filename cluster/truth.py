"""The truth builder: uniformly sampled cells trained fully on real data, as Tune trials, resumably.

``<out>`` is the truth Parquet; ``<out>.parts/`` holds one part file per finished (arch, seed),
written by the driver under a temporary name and renamed (:mod:`results.truthtable`), so a run
killed at any moment loses at most the trials in flight. Running the same command again trains
only what is missing, then rewrites ``<out>`` from all parts. Parts made with another budget or
config are refused.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from ray import tune
from ray.tune import Callback

from cluster.entry import enter, naming_the_node
from cluster.grid import run_grid
from results.storage import join
from results.truthtable import SCHEMA, parts_dir, planned_cells, read_rows, write_row, write_truth
from search.config import ExperimentConfig
from search.errors import InputError, TruthError
from search.space import parse
from search.train import train_arch
from search.versions import versions


def plan_jobs(n_archs: int, n_seeds: int, sample_seed: int = 0) -> list[tuple[str, int]]:
    """``n_archs`` distinct cells drawn uniformly from all 15,625 (seeded), each with seeds 0..n_seeds-1.

    A smaller ``n_archs`` gives a prefix of a larger one, so a table can grow in resumable chunks.
    """
    if n_seeds < 1:
        raise InputError(f"--seeds must be >= 1, got {n_seeds}")
    return [(a, s) for a in planned_cells(n_archs, sample_seed) for s in range(n_seeds)]


def truth_config(cfg: ExperimentConfig, budget: float) -> ExperimentConfig:
    return replace(cfg, train=replace(cfg.train, epochs=budget, steps=None))


def truth_hash(cfg: ExperimentConfig) -> str:
    """Hash of what a truth run depends on: the data, network and training settings.

    Stored as each row's ``config_hash`` and compared on resume, so a table stays resumable when
    unrelated sections (gtn, search) gain settings or the data directory moves.
    """
    return cfg.hash(("data", "net", "train"))


def truth_trainable(config: dict[str, Any], *, experiment: dict[str, Any], threads: int) -> None:
    """One (arch, seed): train for the budget, report the row (the driver writes it)."""
    with naming_the_node("a truth trial"):
        me = enter(experiment, "truth", threads=threads, gpu_share=experiment["search"]["gpus_per_trial"])
        cfg, data = me.cfg, me.data()
    d = cfg.data
    job = config["job"]
    row = train_arch(parse(job["arch"]), data, cfg.net, cfg.train, seed=int(job["seed"]))
    row.update(
        budget_epochs=cfg.train.epochs,
        dataset=d.dataset,
        config_hash=truth_hash(cfg),
        versions=json.dumps(versions(), sort_keys=True),
        timestamp=time.time(),
    )
    tune.report(row)


class TruthCallback(Callback):
    def __init__(self, out: str):
        self.out = out

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        write_row(self.out, {k: result.get(k) for k in SCHEMA.names})


def check_compatible(rows: list[dict[str, Any]], cfg: ExperimentConfig, out: str) -> None:
    others = {(r["config_hash"], r["budget_epochs"]) for r in rows} - {(truth_hash(cfg), cfg.train.epochs)}
    if others:
        raise TruthError(
            f"{parts_dir(out)} holds rows made with another config or budget ({min(others)}); choose another --out"
        )


def build_truth(
    cfg: ExperimentConfig, out: str, *, n_archs: int, n_seeds: int, sample_seed: int = 0, cpus_per_trial: int = 1
) -> tuple[list[dict[str, Any]], int]:
    """Train what is missing, write ``out``; returns (all rows, how many trials ran now)."""
    jobs = plan_jobs(n_archs, n_seeds, sample_seed)
    rows = read_rows(out)
    check_compatible(rows, cfg, out)
    done = {(r["arch"], r["seed"]) for r in rows}
    todo = [{"arch": a, "seed": s} for a, s in jobs if (a, s) not in done]
    if todo:
        run_grid(
            tune.with_parameters(truth_trainable, experiment=cfg.to_dict(), threads=cpus_per_trial),
            todo,
            stage="truth",
            name=f"truth-{time.strftime('%Y%m%d-%H%M%S')}",
            storage=join(out + ".tune"),
            cpus=cpus_per_trial,
            gpus=cfg.search.gpus_per_trial,
            callbacks=[TruthCallback(out)],
        )
        rows = read_rows(out)
    wanted = set(jobs)
    planned = {a for a, _ in jobs}
    rows = [r for r in rows if r["arch"] in planned]  # extra seeds of planned cells stay in the table
    missing = len(wanted - {(r["arch"], r["seed"]) for r in rows})
    if missing:
        raise RuntimeError(f"{missing} of {len(wanted)} truth trials did not finish; run the same command again")
    write_truth(
        out,
        rows,
        {
            "config": cfg.to_dict(),
            "config_hash": truth_hash(cfg),
            "budget_epochs": cfg.train.epochs,
            "archs": n_archs,
            "seeds": n_seeds,
            "sample_seed": sample_seed,
        },
    )
    return rows, len(todo)
