"""Build search/tables/nb201_proxies.parquet: params, flops and synflow of all 15,625 NB201 cells.

On NAS-Bench-201's own network (C=16, N=5, 3x32x32, 10 classes, BN, init seed 0): what benchmark
mode's rung 1 and the proxy-seeded evolution read instead of recomputing. params and flops are
additive over edges (every edge of a stage holds the same operation shapes), so they come from six
reference networks; synflow is computed per cell (about 0.1 s each on one core). Resumable: chunks
land in search/tables/nb201_proxies.parts/ and a rerun computes only what is missing.

    python -m benchmarks.nb201_proxy_table [--threads 1] [--chunk 500]
"""

from __future__ import annotations

import argparse
import time

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from benchmarks import provenance
from results.storage import write_parquet
from search import nb201
from search.space import EDGES, OPS, Arch, all_archs

PARTS = nb201.TABLES / "nb201_proxies.parts"


def additive_costs() -> dict[str, dict[str, float]]:
    """params/flops of the all-``none`` cell plus, per operation, what one edge of it adds."""
    base = Arch(("none",) * len(EDGES))
    ref = {"params": nb201.compute_proxy(base, "params"), "flops": nb201.compute_proxy(base, "flops")}
    out = {"base": ref}
    for op in OPS[1:]:
        one = Arch((op,) + ("none",) * (len(EDGES) - 1))
        out[op] = {k: nb201.compute_proxy(one, k) - ref[k] for k in ref}
    out["none"] = {"params": 0.0, "flops": 0.0}
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=500)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args, outputs=[nb201.PROXY_TABLE])  # the table it rebuilds does not make the tree dirty
    torch.set_num_threads(args.threads)
    archs = all_archs()
    costs = additive_costs()
    PARTS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for lo in range(0, len(archs), args.chunk):
        part = PARTS / f"part-{lo:05d}.parquet"
        if part.exists():
            continue
        rows = []
        for a in archs[lo : lo + args.chunk]:
            rows.append(
                {
                    "arch": str(a),
                    "params": costs["base"]["params"] + sum(costs[op]["params"] for op in a.ops),
                    "flops": costs["base"]["flops"] + sum(costs[op]["flops"] for op in a.ops),
                    "synflow": nb201.compute_proxy(a, "synflow"),
                }
            )
        write_parquet(pa.Table.from_pylist(rows), str(part))
        print(f"{lo + len(rows)}/{len(archs)} cells, {time.perf_counter() - start:.0f}s", flush=True)
    table = pa.concat_tables([pq.read_table(p) for p in sorted(PARTS.glob("part-*.parquet"))])
    assert table.num_rows == len(archs)
    write_parquet(table, str(nb201.PROXY_TABLE), provenance.parquet_metadata())
    print(f"wrote {nb201.PROXY_TABLE} ({table.num_rows} cells)")


if __name__ == "__main__":
    main()
