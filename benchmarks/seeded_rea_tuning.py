"""Choose the proxy-seeded evolution's settings on tuning seeds (issue #14).

`gtnnas bench search` reports every strategy on seeds 0..R-1. The seeded evolution has two free
settings (which data-free proxy ranks the first population's candidates, and how many uniform
samples it ranks); they are chosen here, on seeds 1000..1000+R-1 that the report never uses.
Population 10 and tournament 3 stay NAS-Bench-201's REA. Criterion: the share of repeats whose
incumbent reaches the top 1% within 100 evaluations, then the median evaluations to get there.
Writes benchmarks/results/seeded_rea_tuning.json.

    python -m benchmarks.seeded_rea_tuning [--repeats 30]
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import provenance
from benchmarks._common import table, write
from cluster.bench_search import run_repeat, strategy_config, summarise

PROXIES = ("synflow", "params", "flops")
SAMPLES = (1000, 3000, 15625)
TUNING_SEED0 = 1000


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--evaluations", type=int, default=300)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    base = strategy_config("rea_synflow_seeded", args.evaluations)
    rows = []
    for proxy, sample in itertools.product(PROXIES, SAMPLES):
        s = dataclasses.replace(base, seed_proxy=proxy, seed_sample=sample)
        start = time.perf_counter()
        reps = [run_repeat(s, TUNING_SEED0 + i, args.evaluations) for i in range(args.repeats)]
        summ = summarise(reps, args.evaluations)
        rows.append(
            {
                "seed_proxy": proxy,
                "seed_sample": sample,
                "share_top1pct_within_100": summ["evals_to_top1pct"]["share_within_100"],
                "median_evals_to_top1pct": summ["evals_to_top1pct"]["median"],
                "test_at_100": summ["at"]["100"]["test_mean"],
                "seconds": time.perf_counter() - start,
            }
        )
        print(rows[-1], flush=True)
    best = max(rows, key=lambda r: (r["share_top1pct_within_100"], -r["median_evals_to_top1pct"]))
    path = write(
        "seeded_rea_tuning",
        {
            "tuning_seeds": [TUNING_SEED0, TUNING_SEED0 + args.repeats - 1],
            "evaluations": args.evaluations,
            "population": base.population,
            "tournament": base.tournament,
            "chosen": best,
            "variants": rows,
        },
    )
    print(
        table(rows, ["seed_proxy", "seed_sample", "share_top1pct_within_100", "median_evals_to_top1pct", "test_at_100"])
    )
    print(f"\nchosen: {best['seed_proxy']} over {best['seed_sample']} samples; wrote {path}")


if __name__ == "__main__":
    main()
