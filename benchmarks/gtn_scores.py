"""Per-seed GTN scores of truth cells, the raw material of the noise and ranking analyses (issue #13).

For one teacher and one split of the truth table (tuning: cells 1-100; evaluation: 101-300), every cell
is trained on the curriculum with learner seeds 0..S-1 and read on the first N validation images for
each N in --sizes; one row per (cell, seed, N) with accuracy, loss and the seconds it took. Resumable
(rows already in --out are kept). ``benchmarks/gtn_noise.py`` turns these rows into the figures.

    python -m benchmarks.gtn_scores --teacher runs/t/teacher.pt --split tuning --seeds 4 \\
        --sizes 1000,5000 --out runs/scores/default_s0.parquet [--channels 4] [--steps 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from benchmarks import provenance
from results.storage import write_parquet
from results.truthtable import load_truth, planned_cells, split_of
from search.config import config_from_dict
from search.curriculum import train_on
from search.data import load_dataset
from search.space import parse
from search.teacher_files import load_teacher
from search.train import evaluate

TRUTH = Path(__file__).resolve().parent / "truth" / "fashion_mnist.parquet"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--truth", default=str(TRUTH))
    ap.add_argument("--split", choices=("tuning", "evaluation", "all"), default="tuning")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=None, help="curriculum steps (default: its T)")
    ap.add_argument("--sizes", default="1000,5000", help="validation prefixes to read each network on")
    ap.add_argument("--channels", type=int, default=None, help="the learners' width (default: the truth's network's)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--planned",
        type=int,
        default=None,
        help="score the first N cells of the truth's plan (its cells need not be trained yet)",
    )
    ap.add_argument("--shard", metavar="K/N", default=None, help="only every N-th cell from the K-th (run N at once)")
    ap.add_argument("--out", required=True)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args, outputs=[args.out])
    torch.set_num_threads(args.threads)
    df, meta = load_truth(args.truth)
    planned = planned_cells(args.planned, meta.get("sample_seed", 0)) if args.planned else []
    cells = sorted(set(df["arch"]) | set(planned))
    split = split_of(cells, meta.get("sample_seed", 0))
    cells = [a for a in cells if args.split == "all" or split[a] == args.split]
    if args.shard:
        k, n = map(int, args.shard.split("/"))
        cells = cells[k - 1 :: n]
    cfg = config_from_dict(meta["config"], args.truth)
    sizes = tuple(sorted(int(s) for s in args.sizes.split(",")))
    data = load_dataset(cfg.data.dataset, None, split_seed=cfg.data.split_seed, val_subset=max(sizes))
    loaded = load_teacher(args.teacher, expect_dataset=cfg.data.dataset)
    cur = loaded.curriculum(real=data.train)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = pq.read_table(out).to_pylist() if out.exists() else []
    before = provenance.parquet_provenance(out)  # the runs that added rows before this one
    done = {(r["arch"], r["seed"]) for r in rows}
    start = time.perf_counter()
    for i, a in enumerate(cells):
        for seed in range(args.seeds):
            if (a, seed) in done:
                continue
            t0 = time.perf_counter()
            net = train_on(
                parse(a),
                cur,
                steps=args.steps,
                seed=seed,
                channels=args.channels or cfg.net.channels,
                cells=cfg.net.cells,
                num_classes=data.num_classes,
            )
            train_s = time.perf_counter() - t0
            for n in sizes:
                t1 = time.perf_counter()
                acc, loss = evaluate(net, data.val, bn=cur.eval_bn, prefixes=(n,))[n]
                rows.append(
                    {
                        "arch": a,
                        "split": split[a],
                        "seed": seed,
                        "val_size": n,
                        "acc": acc,
                        "loss": loss,
                        "train_seconds": train_s,
                        "eval_seconds": time.perf_counter() - t1,
                        "steps": args.steps or cur.steps,
                        "channels": args.channels or cfg.net.channels,
                        "curriculum": cur.content_hash,
                    }
                )
        write_parquet(pa.Table.from_pylist(rows), str(out), provenance.parquet_metadata(before))
        if (i + 1) % 10 == 0:
            print(f"{i + 1}/{len(cells)} cells, {time.perf_counter() - start:.0f}s", flush=True)
    print(f"wrote {out}: {len(rows)} rows")


if __name__ == "__main__":
    main()
