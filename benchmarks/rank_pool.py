"""Build a rank pool: cells with a real-data quality measured on the training split only.

The ranking teacher (gtn.rank_weight > 0, search/rank.py) draws its learners from this pool. Each cell
is trained for --steps SGD steps on the training split minus its last 5,000 images and scored on
those 5,000 (never the validation split); cells equivalent to any cell of the truth table are left
out, so the truth's tuning and evaluation splits stay unseen. Resumable (one row per cell appended).

    python -m benchmarks.rank_pool --truth benchmarks/truth/fashion_mnist.parquet --cells 120 --steps 200 \\
        --out benchmarks/truth/rank_pool_fashion_mnist.parquet
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from benchmarks import provenance
from cluster.truth import plan_jobs
from results.storage import write_parquet
from results.truthtable import load_truth
from search.config import config_from_dict
from search.data import load_dataset
from search.rank import pool_target, sample_pool_cells


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", required=True, help="truth table whose cells (all of its planned cells) are excluded")
    ap.add_argument("--exclude-archs", type=int, default=300, help="the truth plan's first N cells are excluded too")
    ap.add_argument("--cells", type=int, default=120)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args, outputs=[args.out])  # resumable: the pool it is adding to does not make the tree dirty
    torch.set_num_threads(args.threads)
    df, meta = load_truth(args.truth)
    cfg = config_from_dict(meta["config"], args.truth)
    exclude = set(df["arch"]) | {a for a, _ in plan_jobs(args.exclude_archs, 1, meta.get("sample_seed", 0))}
    cells = sample_pool_cells(args.cells, args.seed, exclude)
    d = cfg.data
    data = load_dataset(d.dataset, None, split_seed=d.split_seed)
    out = Path(args.out)
    rows = pq.read_table(out).to_pylist() if out.exists() else []
    before = provenance.parquet_provenance(out)  # the runs that added cells before this one
    done = {r["arch"] for r in rows}
    start = time.perf_counter()
    for i, a in enumerate(cells):
        if str(a) in done:
            continue
        t0 = time.perf_counter()
        rows.append(
            {
                "arch": str(a),
                "arch_hash": a.equiv_hash(),
                "target": pool_target(a, cfg, data, args.steps),
                "steps": args.steps,
                "seconds": time.perf_counter() - t0,
            }
        )
        write_parquet(pa.Table.from_pylist(rows), str(out), provenance.parquet_metadata(before))
        print(f"{i + 1}/{len(cells)} {rows[-1]['target']:.4f} {time.perf_counter() - start:.0f}s", flush=True)
    print(f"wrote {out}: {len(rows)} cells")


if __name__ == "__main__":
    main()
