"""The real-data baseline job: train a few sampled cells as Tune trials and rank them.

This is what ``gtnnas baseline`` runs: a pure train function from ``search.train`` wrapped by one
thin Tune trainable.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from ray import tune

from cluster.entry import enter, naming_the_node
from cluster.grid import run_grid
from results.storage import storage_path
from search import space
from search.config import ExperimentConfig
from search.train import train_arch


def sample_archs(cfg: ExperimentConfig) -> list[space.Arch]:
    """``num_archs`` distinct cells (by equivalence hash) from the experiment's seed."""
    rng = np.random.default_rng(cfg.seed)
    seen: dict[str, space.Arch] = {}
    while len(seen) < cfg.baseline.num_archs:
        a = space.sample(rng)
        seen.setdefault(a.equiv_hash(), a)
    return list(seen.values())


def baseline_trainable(config: dict[str, Any], experiment: dict[str, Any]) -> None:
    """One Tune trial: parse the cell, train it on real data, report the metrics once."""
    with naming_the_node("a baseline trial"):
        me = enter(experiment, "baseline", threads=experiment["baseline"]["cpus_per_trial"])
        cfg, data = me.cfg, me.data()
    result = train_arch(space.parse(config["job"]["arch"]), data, cfg.net, cfg.train, seed=cfg.seed)
    tune.report({k: v for k, v in result.items() if v is not None})


def run_baseline(cfg: ExperimentConfig) -> Any:
    """Run the baseline on the Ray that is already initialised; return the results DataFrame."""
    results = run_grid(
        tune.with_parameters(baseline_trainable, experiment=cfg.to_dict()),
        [{"arch": str(a)} for a in sample_archs(cfg)],
        stage="baseline",
        name=f"{cfg.name}-baseline-{time.strftime('%Y%m%d-%H%M%S')}",
        storage=storage_path(cfg.storage),
        cpus=cfg.baseline.cpus_per_trial,
    )
    df = pd.DataFrame(results)[["arch", "val_acc", "test_acc", "params", "flops", "seconds"]]
    return df.sort_values("val_acc", ascending=False).reset_index(drop=True)
