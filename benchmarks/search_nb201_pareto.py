"""Accuracy against cost on NAS-Bench-201: how close each strategy's found front gets to the true front (issue #28).

Benchmark mode's light loop (``cluster.bench_search.run_repeat``: the search's own searchers and
scheduler, table lookups for the real rung), objectives ``val_acc:max`` (the 12-epoch table's
``cifar10_val``) and a cost (``params``, or ``flops`` with ``--cost flops``) of NB201's own network.
After each evaluation: the hypervolume of the evaluated cells' front relative to the true front of all
15,625 cells, with the reference point at the space's median accuracy and its largest cost (so the
figure measures the front, not the easy bulk).

Strategies: ``random``; ``rea`` (single-objective evolution: NAS-Bench-201's REA); ``nsga2`` (evolution
selecting parents by NSGA-II's order); ``optuna_mo`` (Optuna's multi-objective TPE through Tune's
OptunaSearch: ``--optuna-evaluations`` and ``--optuna-repeats`` only, as its cost grows faster than linearly
with the trials: 200 evaluations took 208 s a repeat here, 300 more than 15 minutes); ``nsga2_seeded``
(NSGA-II whose first population is the first cells by NSGA-II's order of synflow against the cost among
all 15,625: the proxy's own front); and the cheap rung (``--asha-evaluations``):
``asha_synflow`` (random cells, synflow as rung 1, ASHA promoting by the score alone) against
``asha_synflow_pareto`` (promoting by NSGA-II's order of synflow against the cost).

NSGA-II's population and tournament are chosen on tuning seeds (``--tune``: seeds 1000+, never
reported; the choice is stored in the JSON), then every strategy runs on seeds 0..R-1.

    python -m benchmarks.search_nb201_pareto --tune --repeats 50
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from typing import Any

import numpy as np

from benchmarks import provenance
from benchmarks._common import RESULTS, table, write
from cluster.bench_search import Repeat, run_repeat
from search import nb201
from search.files import atomic_write
from search.pareto import hypervolume, non_dominated_ranks
from search.search_config import SearchConfig
from search.space import parse

TUNING_SEED0 = 1000
NSGA2_GRID = ((10, 3), (20, 5), (50, 10))  # (population, tournament) tried on the tuning seeds
LEVELS = (0.95, 0.97, 0.98, 0.99)


def strategies(cost: str, population: int, tournament: int) -> dict[str, dict[str, Any]]:
    mo = {"objectives": f"val_acc:max,{cost}:min"}
    evo = {"searcher": "evolution", "scheduler": "fifo", "score": "none"}
    return {
        "random": {"searcher": "random", "scheduler": "fifo", "score": "none"},
        "rea": {**evo, "population": 10, "tournament": 3},
        "nsga2": {**evo, **mo, "population": population, "tournament": tournament},
        "optuna_mo": {"searcher": "optuna", "scheduler": "fifo", "score": "none", **mo},
        "nsga2_seeded": {
            **evo,
            **mo,
            "population": population,
            "tournament": tournament,
            "seed_proxy": "synflow",
            "seed_sample": 15625,
        },
        "asha_synflow": {"searcher": "random", "scheduler": "asha", "score": "synflow", "reduction_factor": 4},
        "asha_synflow_pareto": {
            "searcher": "random",
            "scheduler": "asha",
            "score": "synflow",
            "reduction_factor": 4,
            **mo,
        },
    }


class Space:
    """The whole space's points (val_acc, cost), the reference point and the true front's hypervolume."""

    def __init__(self, cost: str):
        self.cost = cost
        val = {a: v for a, (v, _) in nb201.table().items()}
        costs = {a: r[cost] for a, r in nb201.proxy_table().items()}
        archs = sorted(set(val) & set(costs))
        self.points = np.array([[val[a], costs[a]] for a in archs], float)
        self.reference = [float(np.median(self.points[:, 0])), float(self.points[:, 1].max())]
        front = self.points[non_dominated_ranks(self.points, ["max", "min"]) == 0]
        self.front_size = len(front)
        self.true_hv = hypervolume(front, ["max", "min"], self.reference)

    def curve(self, rep: Repeat) -> np.ndarray:
        """Relative hypervolume of the evaluated cells' front after each evaluation."""
        front: list[tuple[float, float]] = []
        out = np.zeros(len(rep.cells))
        for i, (cell, v) in enumerate(zip(rep.cells, rep.val, strict=True)):
            c = nb201.proxy(parse(parse(cell).canonical()), self.cost)
            if not any(fv >= v and fc <= c for fv, fc in front):
                front = [(fv, fc) for fv, fc in front if not (v >= fv and c <= fc)] + [(v, c)]
            out[i] = hypervolume(np.array(front), ["max", "min"], self.reference) / self.true_hv
        return out


def run(name: str, kwargs: dict[str, Any], seeds: range, evaluations: int, space: Space) -> list[np.ndarray]:
    s = SearchConfig(evaluator="nb201", real_rungs=1, num_samples=evaluations, **kwargs)
    return [space.curve(run_repeat(s, seed, evaluations)) for seed in seeds]


def run_job(job: tuple[str, dict[str, Any], int, int, str]) -> tuple[str, dict[str, Any]]:
    """One strategy's repeats, in a worker process: (name, its summary)."""
    name, kwargs, repeats, evaluations, cost = job
    start = time.perf_counter()
    curves = run(name, kwargs, range(repeats), evaluations, Space(cost))
    out = {**summary(curves), "settings": kwargs, "seconds": time.perf_counter() - start}
    print(name, out["at"], out["evals_to"]["0.99"], flush=True)
    return name, out


def summary(curves: list[np.ndarray]) -> dict[str, Any]:
    n = min(len(c) for c in curves)
    m = np.array([c[:n] for c in curves])
    reach = {
        str(level): [int(np.argmax(c >= level)) + 1 if (c >= level).any() else None for c in curves] for level in LEVELS
    }
    return {
        "repeats": len(curves),
        "evaluations": n,
        "median": np.median(m, axis=0).round(5).tolist(),
        "q25": np.percentile(m, 25, axis=0).round(5).tolist(),
        "q75": np.percentile(m, 75, axis=0).round(5).tolist(),
        "at": {str(k): float(np.median(m[:, k - 1])) for k in (50, 100, 200, 300, 500, 1000) if k <= n},
        "evals_to": {
            level: {
                "median": float(np.median([r if r is not None else np.inf for r in rs])),
                "share_reached": float(np.mean([r is not None for r in rs])),
            }
            for level, rs in reach.items()
        },
    }


def choose_nsga2(space: Space, cost: str, repeats: int, evaluations: int) -> dict[str, Any]:
    """NSGA-II's (population, tournament) by the median evaluations to 0.98 on the tuning seeds."""
    tried = []
    for population, tournament in NSGA2_GRID:
        kw = strategies(cost, population, tournament)["nsga2"]
        curves = run("nsga2", kw, range(TUNING_SEED0, TUNING_SEED0 + repeats), evaluations, space)
        s = summary(curves)
        tried.append({"population": population, "tournament": tournament, "evals_to_0.98": s["evals_to"]["0.98"]})
        print(tried[-1], flush=True)
    best = min(tried, key=lambda t: (t["evals_to_0.98"]["median"], -t["evals_to_0.98"]["share_reached"]))
    return {"tried": tried, "chosen": {"population": best["population"], "tournament": best["tournament"]}}


def plot(results: dict[str, dict[str, Any]], path: str, cost: str) -> None:
    import matplotlib  # noqa: PLC0415  (lazy: only to plot)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, r in results.items():
        x = np.arange(1, len(r["median"]) + 1)
        ax.plot(x, r["median"], label=name)
        ax.fill_between(x, r["q25"], r["q75"], alpha=0.15)
    ax.axhline(0.99, color="k", lw=0.5, ls=":")
    ax.set_xscale("log")
    ax.set_ylim(0.5, 1.0)
    ax.set_xlabel("evaluations (12-epoch table lookups)")
    ax.set_ylabel(f"hypervolume / true front's (val_acc vs {cost})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.suptitle("NAS-Bench-201 CIFAR-10: median and quartiles over repeats", fontsize=9)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png")
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cost", choices=("params", "flops"), default="params")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--evaluations", type=int, default=1000)
    ap.add_argument("--optuna-evaluations", type=int, default=200)
    ap.add_argument("--optuna-repeats", type=int, default=15)
    ap.add_argument(
        "--asha-evaluations",
        type=int,
        default=300,
        help="the two ASHA strategies' budget: about four trials an evaluation, and the Pareto rung's NSGA-II order "
        "over every trial recorded costs more per decision as they accumulate",
    )
    ap.add_argument("--processes", type=int, default=2, help="strategies run side by side (one per core)")
    ap.add_argument("--tune", action="store_true", help="choose NSGA-II's population and tournament on tuning seeds")
    ap.add_argument("--tune-repeats", type=int, default=20)
    ap.add_argument("--strategies", default=None, help="comma-separated subset (default: all)")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    space = Space(args.cost)
    tuning = choose_nsga2(space, args.cost, args.tune_repeats, 300) if args.tune else None
    chosen = tuning["chosen"] if tuning else {"population": 20, "tournament": 5}
    plan = strategies(args.cost, chosen["population"], chosen["tournament"])
    names = args.strategies.split(",") if args.strategies else list(plan)
    jobs = [
        (
            name,
            plan[name],
            args.optuna_repeats if name == "optuna_mo" else args.repeats,
            args.optuna_evaluations
            if name == "optuna_mo"
            else args.asha_evaluations
            if name.startswith("asha")
            else args.evaluations,
            args.cost,
        )
        for name in names
    ]
    jobs.sort(key=lambda j: j[0] != "optuna_mo")  # the longest first, so the other process takes the rest
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        done = pool.map(run_job, jobs, chunksize=1)
    results = {name: r for name, r in sorted(done, key=lambda d: names.index(d[0]))}
    rand = results.get("random", {}).get("evals_to", {}).get("0.98", {}).get("median")
    payload = {
        "cost": args.cost,
        "reference": space.reference,
        "true_front_size": space.front_size,
        "true_hypervolume": space.true_hv,
        "nsga2_tuning": tuning,
        "strategies": results,
        "targets": {
            "best_median_at_200": max(r["at"].get("200", 0.0) for r in results.values()),
            "random_evals_to_0.98": rand,
            "best_evals_to_0.98": min(r["evals_to"]["0.98"]["median"] for r in results.values()),
        },
    }
    path = write(f"search_nb201_pareto_{args.cost}" if args.cost != "params" else "search_nb201_pareto", payload)
    plot(results, str(RESULTS / f"{path.stem}.png"), args.cost)
    rows = [
        {
            "strategy": n,
            **{f"hv@{k}": r["at"].get(k) for k in ("50", "100", "200", "300", "1000")},
            "evals_to_0.98": r["evals_to"]["0.98"]["median"],
            "evals_to_0.99": r["evals_to"]["0.99"]["median"],
        }
        for n, r in results.items()
    ]
    print(table(rows, list(rows[0])))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
