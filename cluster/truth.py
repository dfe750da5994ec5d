"""The truth builder: uniformly sampled cells trained fully on real data, as Tune trials, resumably.

``<out>`` is the truth Parquet; ``<out>.parts/`` holds one part file per finished (arch, seed),
written by the driver under a temporary name and renamed, so a run killed at any moment loses at
most the trials in flight. Running the same command again trains only what is missing, then
rewrites ``<out>`` from all parts. Parts made with another budget or config are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from ray.tune import Callback

from cluster.storage import exists, join, resolve
from search.config import ExperimentConfig
from search.space import all_archs

SCHEMA = pa.schema([
    ("arch", pa.string()), ("arch_hash", pa.string()), ("seed", pa.int64()), ("val_acc", pa.float64()),
    ("test_acc", pa.float64()), ("val_loss", pa.float64()), ("train_loss", pa.float64()),
    ("budget_epochs", pa.float64()), ("steps", pa.int64()), ("params", pa.int64()), ("flops", pa.int64()),
    ("seconds", pa.float64()), ("dataset", pa.string()), ("config_hash", pa.string()),
    ("versions", pa.string()), ("timestamp", pa.float64()),
])
REQUIRED = ("arch", "seed", "val_acc", "test_acc")


def plan_jobs(n_archs: int, n_seeds: int, sample_seed: int = 0) -> list[tuple[str, int]]:
    """``n_archs`` distinct cells drawn uniformly from all 15,625 (seeded), each with seeds 0..n_seeds-1.

    A smaller ``n_archs`` gives a prefix of a larger one, so a table can grow in resumable chunks.
    """
    everything = all_archs()
    if not 1 <= n_archs <= len(everything):
        raise ValueError(f"--archs must be in 1..{len(everything)}, got {n_archs}")
    if n_seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {n_seeds}")
    pick = np.random.default_rng(sample_seed).permutation(len(everything))[:n_archs]  # prefixes agree
    return [(str(everything[i]), s) for i in pick for s in range(n_seeds)]


def truth_config(cfg: ExperimentConfig, budget: float) -> ExperimentConfig:
    return replace(cfg, train=replace(cfg.train, epochs=budget, steps=None))


IRRELEVANT = {"data": ("root", "device"), "train": ("eval_batch_size",)}


def truth_hash(cfg: ExperimentConfig) -> str:
    """Hash of what a truth run depends on: the data, network and training settings.

    Stored as each row's ``config_hash`` and compared on resume, so a table stays resumable when
    unrelated sections (gtn, search) gain settings or the data directory moves.
    """
    d = cfg.to_dict()
    blob = {k: {f: v for f, v in d[k].items() if f not in IRRELEVANT.get(k, ())} for k in ("data", "net", "train")}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]


def parts_dir(out: str) -> str:
    return out + ".parts"


def read_rows(out: str) -> list[dict[str, Any]]:
    """All finished rows: the table ``out`` itself (a fresh clone has no parts) and ``<out>.parts/``.

    Deduplicated on (arch, seed), a part winning over the table.
    """
    import pyarrow.fs as pafs

    rows: dict[tuple[str, int], dict[str, Any]] = {}
    if exists(out):
        fs, path = resolve(out)
        for r in pq.read_table(path, filesystem=fs).to_pylist():
            rows[(r["arch"], r["seed"])] = r
    fs, base = resolve(parts_dir(out))
    if not exists(parts_dir(out)):
        return list(rows.values())
    for info in fs.get_file_info(pafs.FileSelector(base)):
        if info.base_name.startswith("part-") and info.base_name.endswith(".parquet"):
            for r in pq.read_table(info.path, filesystem=fs).to_pylist():
                rows[(r["arch"], r["seed"])] = r
    return list(rows.values())


def write_row(out: str, row: dict[str, Any]) -> None:
    fs, base = resolve(parts_dir(out))
    fs.create_dir(base, recursive=True)
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = f"{base}/.{name}.tmp"
    pq.write_table(pa.Table.from_pylist([row], schema=SCHEMA), tmp, filesystem=fs)
    fs.move(tmp, f"{base}/{name}")


def write_truth(out: str, rows: list[dict[str, Any]], metadata: dict[str, Any]) -> None:
    fs, path = resolve(out)
    fs.create_dir(os.path.dirname(path), recursive=True)
    rows = sorted(rows, key=lambda r: (r["arch"], r["seed"]))
    table = pa.Table.from_pylist(rows, schema=SCHEMA).replace_schema_metadata(
        {f"gtnnas.{k}": json.dumps(v, default=str) for k, v in metadata.items()})
    pq.write_table(table, path + ".tmp", filesystem=fs)
    fs.move(path + ".tmp", path)


def truth_trainable(config: dict[str, Any], *, experiment: dict[str, Any], threads: int) -> None:
    """One (arch, seed): train for the budget, report the row (the driver writes it)."""
    import torch
    from ray import tune

    from cluster.trainable import cached_dataset
    from search.config import config_from_dict
    from search.space import parse
    from search.teach import versions
    from search.train import train_arch

    torch.set_num_threads(threads)
    cfg = config_from_dict(experiment)
    d = cfg.data
    data = cached_dataset(d.dataset, d.root, d.split_seed, d.train_subset, d.val_subset, d.device)
    job = config["job"]
    row = train_arch(parse(job["arch"]), data, cfg.net, cfg.train, seed=int(job["seed"]))
    row.update(budget_epochs=cfg.train.epochs, dataset=d.dataset, config_hash=truth_hash(cfg),
               versions=json.dumps(versions(), sort_keys=True), timestamp=time.time())
    tune.report(row)


class TruthCallback(Callback):
    def __init__(self, out: str):
        self.out = out

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        write_row(self.out, {k: result.get(k) for k in SCHEMA.names})


def check_compatible(rows: list[dict[str, Any]], cfg: ExperimentConfig, out: str) -> None:
    others = {(r["config_hash"], r["budget_epochs"]) for r in rows} - {(truth_hash(cfg), cfg.train.epochs)}
    if others:
        raise ValueError(f"{parts_dir(out)} holds rows made with another config or budget "
                         f"({min(others)}); choose another --out")


def build_truth(cfg: ExperimentConfig, out: str, *, n_archs: int, n_seeds: int, sample_seed: int = 0,
                cpus_per_trial: int = 1) -> tuple[list[dict[str, Any]], int]:
    """Train what is missing, write ``out``; returns (all rows, how many trials ran now)."""
    from ray import tune

    jobs = plan_jobs(n_archs, n_seeds, sample_seed)
    rows = read_rows(out)
    check_compatible(rows, cfg, out)
    done = {(r["arch"], r["seed"]) for r in rows}
    todo = [{"arch": a, "seed": s} for a, s in jobs if (a, s) not in done]
    if todo:
        trainable = tune.with_resources(
            tune.with_parameters(truth_trainable, experiment=cfg.to_dict(), threads=cpus_per_trial),
            {"cpu": cpus_per_trial, "gpu": cfg.search.gpus_per_trial})
        storage = join(out + ".tune")
        tuner = tune.Tuner(
            trainable, param_space={"job": tune.grid_search(todo)},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(name=f"truth-{time.strftime('%Y%m%d-%H%M%S')}", storage_path=storage,
                                      callbacks=[TruthCallback(out)], failure_config=tune.FailureConfig(max_failures=2),
                                      verbose=int(os.environ.get("GTNNAS_TUNE_VERBOSE", "1"))),
        )
        tuner.fit()
        rows = read_rows(out)
    wanted = set(jobs)
    planned = {a for a, _ in jobs}
    rows = [r for r in rows if r["arch"] in planned]  # extra seeds of planned cells stay in the table
    missing = len(wanted - {(r["arch"], r["seed"]) for r in rows})
    if missing:
        raise RuntimeError(f"{missing} of {len(wanted)} truth trials did not finish; run the same command again")
    write_truth(out, rows, {"config": cfg.to_dict(), "config_hash": truth_hash(cfg), "budget_epochs": cfg.train.epochs,
                            "archs": n_archs, "seeds": n_seeds, "sample_seed": sample_seed})
    return rows, len(todo)


def seed_rho(rows: list[dict[str, Any]]) -> float:
    """The truth's own ceiling: mean Spearman rho of val_acc between every pair of seeds."""
    from itertools import combinations

    from search.stats import spearman

    by_seed: dict[int, dict[str, float]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[r["arch"]] = r["val_acc"]
    rhos = []
    for a, b in combinations(sorted(by_seed), 2):
        common = sorted(set(by_seed[a]) & set(by_seed[b]))
        rhos.append(spearman([by_seed[a][k] for k in common], [by_seed[b][k] for k in common]))
    rhos = [r for r in rhos if r == r]
    return float(np.mean(rhos)) if rhos else float("nan")


def replicate_rho(rows: list[dict[str, Any]]) -> tuple[float, int]:
    """(rho, k): Spearman rho between the mean val_acc over k seeds and over k other seeds.

    With 2k seeds per cell this measures directly how reliably a k-seed mean ranks cells (the truth
    value when one run is too noisy), averaged over every split of the seeds into two halves; cells
    missing a seed are left out. NaN and k = 0 with fewer than 4 seeds.
    """
    from itertools import combinations

    from search.stats import spearman

    by_arch: dict[str, dict[int, float]] = {}
    for r in rows:
        by_arch.setdefault(r["arch"], {})[r["seed"]] = r["val_acc"]
    seeds = sorted({r["seed"] for r in rows})
    k = len(seeds) // 2
    if k < 2:
        return float("nan"), 0
    seeds = seeds[:2 * k]
    full = sorted(a for a, v in by_arch.items() if all(s in v for s in seeds))
    rhos = []
    for half in combinations(seeds[1:], k - 1):  # each split once: the first half holds seeds[0]
        one = (seeds[0], *half)
        other = [s for s in seeds if s not in one]
        rhos.append(spearman([np.mean([by_arch[a][s] for s in one]) for a in full],
                             [np.mean([by_arch[a][s] for s in other]) for a in full]))
    rhos = [r for r in rhos if r == r]
    return (float(np.mean(rhos)) if rhos else float("nan")), k
