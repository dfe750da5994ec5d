"""How noisy is a GTN score, and what averaging learner seeds buys per second (issue #13, item 2).

Reads per-seed score rows (``benchmarks/gtn_scores.py``) of one teacher, and optionally of a second
teacher meta-trained with another seed, for the same cells. Reports, for each validation prefix and
metric (accuracy; minus the loss):
- the learner-initialisation noise: Spearman rho between single seeds (mean over seed pairs);
- the meta-training noise: rho between the two teachers' scores (same learner seed);
- rho against the truth (mean of the truth's first two seeds) of the mean over k learner seeds,
  with its cost in seconds per cell (training k networks plus reading them on N images).
All on the cells the rows hold (the tuning split when chosen there). Writes JSON and prints a table.

    python -m benchmarks.gtn_noise --scores runs/scores/default_s0.parquet [--other runs/scores/default_s1.parquet] \\
        --json benchmarks/results/gtn_noise.json
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import provenance
from benchmarks._common import table
from results.truthtable import load_truth
from search.stats import spearman

TRUTH = Path(__file__).resolve().parent / "truth" / "fashion_mnist.parquet"


def truth_means(path: str, seeds: tuple[int, ...] = (0, 1)) -> pd.Series:
    df, _ = load_truth(path)
    return df[df["seed"].isin(seeds)].groupby("arch")["val_acc"].mean()


def per_seed(scores: pd.DataFrame, n: int, metric: str) -> pd.DataFrame:
    """cells x seeds matrix of the metric (higher is better) on the first n validation images."""
    d = scores[scores["val_size"] == n]
    value = d["acc"] if metric == "acc" else -d["loss"]
    return d.assign(v=value).pivot(index="arch", columns="seed", values="v").sort_index()


def analyse(
    scores: pd.DataFrame, truth: pd.Series, other: pd.DataFrame | None, cost: pd.DataFrame | None = None
) -> list[dict]:
    rows = []
    cost = scores if cost is None else cost  # the rows whose timings count (medians: robust to shared cores)
    train_s = cost.groupby(["arch", "seed"])["train_seconds"].first().median()
    for n in sorted(scores["val_size"].unique()):
        eval_s = cost[cost["val_size"] == n]["eval_seconds"].median()
        for metric in ("acc", "neg_loss"):
            m = per_seed(scores, n, "acc" if metric == "acc" else "loss")
            cells = m.index.intersection(truth.index)
            m, t = m.loc[cells], truth.loc[cells].to_numpy()
            seeds = list(m.columns)
            pairs = [spearman(m[a], m[b]) for a, b in itertools.combinations(seeds, 2)]
            meta = None
            if other is not None:
                o = per_seed(other, n, "acc" if metric == "acc" else "loss").reindex(cells)
                meta = float(np.nanmean([spearman(m[s], o[s]) for s in seeds if s in o]))
            for k in range(1, len(seeds) + 1):
                # every subset of k seeds, so k=1 is not one lucky seed
                rhos = [spearman(m[list(sub)].mean(axis=1), t) for sub in itertools.combinations(seeds, k)]
                rows.append(
                    {
                        "val_size": int(n),
                        "metric": metric,
                        "seeds": k,
                        "spearman": float(np.mean(rhos)),
                        "spearman_sd": float(np.std(rhos)),
                        "seed_to_seed": float(np.mean(pairs)),
                        "meta_seed_to_seed": meta,
                        "seconds_per_cell": float(k * (train_s + eval_s)),
                        "cells": int(len(cells)),
                    }
                )
    return rows


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scores", required=True)
    ap.add_argument("--other", default=None, help="the same cells scored by a teacher with another meta seed")
    ap.add_argument("--truth", default=str(TRUTH))
    ap.add_argument("--cost-rows", default=None, help="score rows whose timings give the seconds (default: --scores)")
    ap.add_argument("--json", required=True)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    scores = pd.read_parquet(args.scores)
    other = pd.read_parquet(args.other) if args.other else None
    cost = pd.concat([pd.read_parquet(p) for p in args.cost_rows.split(",")]) if args.cost_rows else None
    rows = analyse(scores, truth_means(args.truth), other, cost)
    print(
        table(
            rows,
            [
                "val_size",
                "metric",
                "seeds",
                "spearman",
                "spearman_sd",
                "seed_to_seed",
                "meta_seed_to_seed",
                "seconds_per_cell",
                "cells",
            ],
        )
    )
    split = sorted(set(scores["split"]))
    provenance.write_result(
        args.json,
        {
            "benchmark": "gtn_noise",
            "scores": Path(args.scores).name,
            "other": Path(args.other).name if args.other else None,
            "split": split,
            "cost_rows": args.cost_rows,
            "truth": "mean val_acc of the truth's seeds 0 and 1",
            "rows": rows,
        },
        indent=1,
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
