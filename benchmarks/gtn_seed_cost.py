"""Seconds per learner seed of each GTN-score family, measured side by side (issue #22, learner-seed noise).

The per-seed rows of ``benchmarks/gtn_scores.py`` carry timings, but each family was scored at another
time on a shared machine. Here every family (learner width C, curriculum steps T) trains and reads one
learner per cell in turn, cell after cell, so all see the same conditions; the rows have the
gtn_scores format, for ``proxies_eval.py --cost-rows``. ``real:128`` (128 real SGD steps, read on 5,000
validation images, as ``proxies_eval.py``'s ladder) is timed in the same turns: the cost target is a
quarter of it, measured under the same conditions.

    python -m benchmarks.gtn_seed_cost --teacher search/teachers/fashion_mnist-*.pt --families 8x16,4x16,8x8,4x8 \\
        --cells 30 --out benchmarks/results/gtn_seed_cost.parquet
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import torch

from benchmarks import provenance
from results.storage import write_parquet
from results.truthtable import load_truth, split_of
from search.config import config_from_dict
from search.curriculum import train_on
from search.data import load_dataset
from search.proxies import ProxyContext
from search.proxy_specs import make_proxy
from search.space import parse
from search.teacher_files import load_teacher
from search.train import evaluate

TRUTH = Path(__file__).resolve().parent / "truth" / "fashion_mnist.parquet"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--families", default="8x16,4x16,8x8,4x8", help="CxT pairs: learner channels x curriculum steps")
    ap.add_argument("--cells", type=int, default=30, help="tuning-split cells to time")
    ap.add_argument("--size", type=int, default=1000, help="validation images read")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    torch.set_num_threads(args.threads)
    df, meta = load_truth(str(TRUTH))
    cells = sorted(set(df["arch"]))
    split = split_of(cells, meta.get("sample_seed", 0))
    cells = [a for a in cells if split[a] == "tuning"][: args.cells]
    cfg = config_from_dict(meta["config"], str(TRUTH))
    data = load_dataset(cfg.data.dataset, None, split_seed=cfg.data.split_seed, val_subset=5000)
    real128 = make_proxy("real:128")
    ctx = ProxyContext(net=cfg.net, shape=data.shape, num_classes=data.num_classes, data=data, train=cfg.train)
    cur = load_teacher(args.teacher, expect_dataset=cfg.data.dataset).curriculum(real=data.train)
    families = [tuple(int(v) for v in f.split("x")) for f in args.families.split(",")]
    rows = []
    for i, a in enumerate(cells):
        for c, t in families:
            t0 = time.perf_counter()
            net = train_on(
                parse(a), cur, steps=t, seed=i, channels=c, cells=cfg.net.cells, num_classes=data.num_classes
            )
            t1 = time.perf_counter()
            evaluate(net, data.val.head(args.size), bn=cur.eval_bn)
            rows.append(
                {
                    "arch": a,
                    "seed": 0,
                    "val_size": args.size,
                    "train_seconds": t1 - t0,
                    "eval_seconds": time.perf_counter() - t1,
                    "steps": t,
                    "channels": c,
                }
            )
        t0 = time.perf_counter()
        real128.score_many([parse(a)], ctx)
        rows.append(
            {
                "arch": a,
                "seed": 0,
                "val_size": 5000,
                "train_seconds": time.perf_counter() - t0,
                "eval_seconds": 0.0,
                "steps": 128,
                "channels": -1,
            }
        )  # channels -1: real:128, not a GTN family
    out = pd.DataFrame(rows)
    write_parquet(pa.Table.from_pandas(out, preserve_index=False), args.out, provenance.parquet_metadata())
    print(out.groupby(["channels", "steps"])[["train_seconds", "eval_seconds"]].median().to_string())


if __name__ == "__main__":
    main()
