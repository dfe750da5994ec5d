"""Published-table check: data-free proxies on NB201's own network against the 12-epoch NB201 table.

Samples --archs cells (seeded) from ../shared/data/nb201/nb201_12epoch.parquet, scores them with the
data-free proxies on NB201's network (C=16, N=5, 3x32x32 input, BN, fresh weights) and reports
Spearman rho and Kendall tau against the CIFAR-10 and CIFAR-100 validation and test columns.
Published full-space figures on the 200-epoch table (Abdelfattah et al. 2021): synflow 0.737,
params 0.69 (CIFAR-10). Writes benchmarks/results/nb201_proxies.json and prints a table.

    python -m benchmarks.nb201_proxies [--archs 1000] [--table PATH]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks import provenance
from benchmarks._common import table, write
from search.config import NetConfig
from search.proxies import ProxyContext
from search.proxy_specs import make_proxy
from search.scoring import DATA_FREE
from search.space import parse
from search.stats import kendall, spearman, top_half_spearman

DEFAULT_TABLE = (
    Path(os.environ.get("GTNNAS_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    / "nb201"
    / "nb201_12epoch.parquet"
)
COLUMNS = ("cifar10_val", "cifar10_test", "cifar100_val", "cifar100_test")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table", default=str(DEFAULT_TABLE))
    ap.add_argument("--threads", type=int, default=2)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    torch.set_num_threads(args.threads)
    nb = pd.read_parquet(args.table)
    sample = nb.sample(min(args.archs, len(nb)), random_state=args.seed)
    archs = [parse(a) for a in sample["arch"]]
    ctx = ProxyContext(net=NetConfig(channels=16, cells=5), shape=(3, 32, 32), num_classes=10)
    rows, start = [], time.perf_counter()
    for name in DATA_FREE:
        scores, secs = make_proxy(name).score_many(archs, ctx)
        for col in COLUMNS:
            truth = sample[col].tolist()
            rows.append(
                {
                    "proxy": name,
                    "target": col,
                    "spearman": spearman(scores, truth),
                    "kendall": kendall(scores, truth),
                    "spearman_top_half": top_half_spearman(scores, truth),
                    "seconds_per_arch": sum(secs) / len(secs),
                }
            )
    print(
        f"{len(archs)} NB201 cells (seed {args.seed}) against the 12-epoch table; "
        f"{time.perf_counter() - start:.0f}s in all"
    )
    print(table(rows, ["proxy", "target", "spearman", "kendall", "spearman_top_half", "seconds_per_arch"]))
    path = write(
        "nb201_proxies",
        {
            "archs": len(archs),
            "seed": args.seed,
            "table": "nb201_12epoch.parquet",
            "net": {"channels": 16, "cells": 5, "input": [3, 32, 32]},
            "published_200_epoch_cifar10": {"synflow": 0.737, "params": 0.69},
            "results": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
