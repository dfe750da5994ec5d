"""Cheap scores judged on cells that played no part in choosing them (issue #13).

Every choice (teacher, steps, learner seeds, validation images, ensemble members, calibration
weights) is made on the truth table's tuning split (cells 1-100); the evaluation split (cells
101-300) is scored once per candidate. The target is the mean val_acc of the truth's first two seeds.

Inputs: per-seed GTN score rows of each teacher (``benchmarks/gtn_scores.py --split all``), zero-cost
proxies and the real:k ladder (computed here, cached under --cache in files named by a hash of the code
that computes them, so a code change computes them anew). Candidates:
- every single proxy, ``real:k``, and ``gtn:16:sK:vN`` (the mean over K learner seeds read on N images);
- rank ensembles (mean rank over the scored cells) of pairs;
- ``calibrated:...``: standardised components combined with ridge weights fitted on the tuning split.
Per candidate and split: Spearman, Kendall, top-half rho (best half by the candidate), top-20% rho
(best 20% by the truth), seconds per cell, a bootstrap 95% interval of Spearman. The winner is the
best GTN-based candidate on the tuning split within a quarter of real:128's cost.

    python -m benchmarks.proxies_eval --gtn default=runs/scores/default_s0.parquet [--gtn rank=...] \\
        --json benchmarks/results/proxies_fashion_mnist_eval.json
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from benchmarks import provenance
from benchmarks._common import table
from results.storage import write_parquet
from results.truthtable import load_truth, planned_cells, split_of
from search.config import config_from_dict
from search.data import load_dataset
from search.proxies import ProxyContext
from search.proxy_specs import make_proxy
from search.rank_combination import RankCombination
from search.space import parse
from search.stats import kendall, ranks, spearman, top_half_spearman

TRUTH = Path(__file__).resolve().parent / "truth" / "fashion_mnist.parquet"
ZERO_COST = ("params", "flops", "synflow", "naswot", "jacob_cov")
REAL = (16, 32, 64, 128)
# the code behind a cached score: a change to any of these files makes a new cache file, never a stale hit
SCORE_CODE = (
    "search/proxies.py",
    "search/proxy_specs.py",
    "search/nets.py",
    "search/train.py",
    "search/space.py",
    "search/data.py",
)


def cache_file(cache: Path, name: str) -> Path:
    """``<cache>/<name>.<code hash>.parquet``: scores cached under the version of the code that made them."""
    return cache / f"{name}.{provenance.code_hash(SCORE_CODE)}.parquet"


def cached(path: Path, compute) -> pd.DataFrame:
    """The table at ``path`` (a :func:`cache_file` name), computed and stored if it is not there."""
    if path.exists():
        return pd.read_parquet(path)
    df = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(pa.Table.from_pandas(df, preserve_index=False), str(path))
    return df


def proxy_table(names: list[str], archs: list[str], ctx: ProxyContext) -> pd.DataFrame:
    rows = {"arch": archs}
    for n in names:
        scores, secs = make_proxy(n).score_many([parse(a) for a in archs], ctx)
        rows[n], rows[f"{n}__s"] = scores, secs
        print(f"  {n}: {np.mean(secs):.3f}s per cell", flush=True)
    return pd.DataFrame(rows)


def gtn_candidates(
    name: str,
    rows: pd.DataFrame,
    cost: pd.DataFrame | None = None,
) -> dict[str, tuple[pd.Series, float]]:
    """``gtn[name]:T:sK:vN[:cC][:loss]`` -> (score per cell, seconds per cell) from per-seed rows (seeds 0..K-1).

    Seconds are medians (robust to shared cores) over ``cost`` rows of the same family (learner width
    and steps) if given, else over ``rows``.
    """
    out = {}
    steps = int(rows["steps"].iloc[0])
    channels = int(rows["channels"].iloc[0]) if "channels" in rows else None
    if cost is not None and "channels" in cost:
        cost = cost[(cost["steps"] == steps) & (cost["channels"] == channels)]
    cost = rows if cost is None or cost.empty else cost
    train_s = cost.groupby(["arch", "seed"])["train_seconds"].first().median()
    for n in sorted(rows["val_size"].unique()):
        d = rows[rows["val_size"] == n]
        if d["arch"].nunique() < rows["arch"].nunique():
            continue  # read on this many images for only some cells
        eval_s = (
            cost[cost["val_size"] == n]["eval_seconds"].median()
            if (cost["val_size"] == n).any()
            else rows[rows["val_size"] == n]["eval_seconds"].median()
        )
        for k in sorted({1, 2, 3, 4, 6, 8} & set(range(1, d["seed"].nunique() + 1))):  # the mean of seeds 0..k-1
            for metric in ("acc", "loss"):  # accuracy, or minus the mean cross-entropy (less seed noise)
                sub = d[d["seed"] < k].groupby("arch")[metric]
                value = sub.mean().where(sub.count() == k)  # cells scored with fewer seeds: not scored by this
                label = (
                    f"gtn[{name}]:{steps}"
                    + (f":s{k}" if k > 1 else "")
                    + f":v{n}"
                    + (f":c{channels}" if channels is not None else "")
                    + (":loss" * (metric == "loss"))
                )
                out[label] = (value if metric == "acc" else -value, float(k * (train_s + eval_s)))
    return out


def metrics(score: np.ndarray, truth: np.ndarray, rng: np.random.Generator, boot: int) -> dict:
    top20 = ranks(truth) >= 0.8 * (len(truth) - 1)
    idx = [rng.integers(0, len(truth), len(truth)) for _ in range(boot)]
    bs = np.array([spearman(score[i], truth[i]) for i in idx])
    return {
        "spearman": spearman(score, truth),
        "kendall": kendall(score, truth),
        "spearman_top_half": top_half_spearman(score, truth),
        "spearman_top20_truth": spearman(score[top20], truth[top20]),
        "spearman_ci95": [float(np.nanpercentile(bs, 2.5)), float(np.nanpercentile(bs, 97.5))],
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", default=str(TRUTH))
    ap.add_argument("--gtn", action="append", default=[], metavar="NAME=ROWS.parquet[,MORE.parquet]")
    ap.add_argument(
        "--cost-rows",
        default=None,
        metavar="ROWS.parquet[,MORE]",
        help="score rows whose timings give every GTN candidate's seconds (default: each teacher's own)",
    )
    ap.add_argument("--cache", default="runs/scores", help="score cache (files keyed by the code's hash)")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-real", action="store_true", help="leave out the real:k ladder (slow)")
    ap.add_argument(
        "--real-cells",
        type=int,
        default=None,
        help="compute the real:k ladder (which plays no part in any choice) on only the first N cells "
        "of the evaluation split in plan order (default: every cell)",
    )
    ap.add_argument(
        "--ladder-shard",
        metavar="K/N",
        default=None,
        help="only compute shard K of N of the ladder into the cache, then exit (run N at once)",
    )
    ap.add_argument("--json", required=True)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    torch.set_num_threads(args.threads)
    df, meta = load_truth(args.truth)
    truth = df[df["seed"].isin([0, 1])].groupby("arch")["val_acc"].mean()
    split = split_of(list(truth.index), meta.get("sample_seed", 0))
    cfg = config_from_dict(meta["config"], args.truth)
    d = cfg.data
    data = load_dataset(d.dataset, None, split_seed=d.split_seed, val_subset=5000)
    ctx = ProxyContext(net=cfg.net, shape=data.shape, num_classes=data.num_classes, data=data, train=cfg.train)
    archs = list(truth.index)
    cache = Path(args.cache)
    ladder_cells = archs
    if args.real_cells:
        plan = [a for a in planned_cells(len(archs), meta.get("sample_seed", 0)) if split.get(a) == "evaluation"]
        ladder_cells = plan[: args.real_cells]
    ladder = [f"real:{k}" for k in REAL]
    if args.ladder_shard:
        k, n = map(int, args.ladder_shard.split("/"))
        cached(cache_file(cache, f"real_ladder.{k}-of-{n}"), lambda: proxy_table(ladder, ladder_cells[k - 1 :: n], ctx))
        return
    zc = cached(cache_file(cache, "zero_cost"), lambda: proxy_table(list(ZERO_COST), archs, ctx)).set_index("arch")
    cands: dict[str, tuple[pd.Series, float]] = {n: (zc[n], float(zc[f"{n}__s"].mean())) for n in ZERO_COST}
    if not args.skip_real:
        shards = sorted(cache.glob(f"real_ladder.*-of-*.{provenance.code_hash(SCORE_CODE)}.parquet"))
        rl = cached(
            cache_file(cache, "real_ladder"),
            lambda: (
                pd.concat([pd.read_parquet(f) for f in shards]) if shards else proxy_table(ladder, ladder_cells, ctx)
            ),
        )
        rl = rl.set_index("arch")
        cands.update({f"real:{k}": (rl[f"real:{k}"], float(rl[f"real:{k}__s"].mean())) for k in REAL})
    cost = pd.concat([pd.read_parquet(p) for p in args.cost_rows.split(",")]) if args.cost_rows else None
    for spec in args.gtn:
        name, _, path = spec.partition("=")
        cands.update(gtn_candidates(name, pd.concat([pd.read_parquet(p) for p in path.split(",")]), cost))
    gtn_names = [c for c in cands if c.startswith("gtn[")]

    def frame(names: list[str], cells: list[str]) -> dict[str, np.ndarray]:
        return {n: cands[n][0].reindex(cells).to_numpy(float) for n in names}

    tuning = [a for a in archs if split[a] == "tuning"]
    evaluation = [a for a in archs if split[a] == "evaluation"]
    # rank ensembles and calibrated combinations of each GTN candidate with each zero-cost proxy, and of pairs
    combos = [(a, b) for a, b in itertools.combinations(ZERO_COST[:1] + ZERO_COST[2:], 2)]
    combos += [(g, z) for g in gtn_names for z in ("params", "naswot", "synflow")]
    combos += [(g, "params", "naswot") for g in gtn_names]
    results: dict[str, dict] = {}
    rng = np.random.default_rng(0)
    for cells, label in ((tuning, "tuning"), (evaluation, "evaluation")):
        if not cells:
            continue
        t = truth.reindex(cells).to_numpy(float)
        for n, (s, secs) in cands.items():
            v = s.reindex(cells).to_numpy(float)
            if np.isnan(v).all():  # e.g. the real ladder, computed on the evaluation split only
                continue
            results.setdefault(n, {"seconds_per_arch": secs})[label] = metrics(v, t, rng, args.boot)
        for parts in combos:
            f = frame(list(parts), cells)
            if any(np.isnan(v).all() for v in f.values()):
                continue  # a part not scored on this split (e.g. a teacher scored on the tuning split only)
            secs = sum(cands[p][1] for p in parts)
            ens = np.mean([ranks(np.nan_to_num(f[p], nan=-np.inf)) for p in parts], axis=0)
            results.setdefault("ensemble:" + "+".join(parts), {"seconds_per_arch": secs})[label] = metrics(
                ens, t, rng, args.boot
            )
            comps = tuple("gtn" if p.startswith("gtn[") else p for p in parts)
            fit = RankCombination.fit(
                comps,
                {c: frame([p], tuning)[p] for c, p in zip(comps, parts, strict=True)},
                truth.reindex(tuning).to_numpy(float),
            )  # always fitted on the tuning split
            cal = fit.combine({c: f[p] for c, p in zip(comps, parts, strict=True)})
            r = results.setdefault(
                "calibrated:" + "+".join(parts), {"seconds_per_arch": secs, "weights_fit_on_tuning": list(fit.weights)}
            )
            r[label] = metrics(cal, t, rng, args.boot)
    real128 = results.get("real:128", {}).get("seconds_per_arch")
    if cost is not None and "channels" in cost and (cost["channels"] == -1).any():  # real:128 timed beside the
        real128 = float(cost[cost["channels"] == -1]["train_seconds"].median())  # GTN families: the same conditions
    budget = real128 / 4 if real128 else float("inf")
    all_gtn = {n: r for n, r in results.items() if "gtn[" in n and "tuning" in r}
    gtn_based = {n: r for n, r in all_gtn.items() if r["seconds_per_arch"] <= budget} or all_gtn  # none cheap enough:
    winner = max(gtn_based, key=lambda n: gtn_based[n]["tuning"]["spearman"]) if gtn_based else None  # the best
    no_gtn = {n: r for n, r in results.items() if "gtn[" not in n and not n.startswith("real:")}
    best_no_gtn = max(no_gtn, key=lambda n: no_gtn[n]["tuning"]["spearman"])
    seed_ceiling = {}
    for cells, label in ((tuning, "tuning"), (evaluation, "evaluation")):
        if cells:
            piv = (
                df[df["arch"].isin(cells) & df["seed"].isin([0, 1])]
                .pivot(index="arch", columns="seed", values="val_acc")
                .dropna()
            )
            seed_ceiling[label] = spearman(piv[0], piv[1])
    ladder = sorted(
        (int(n.split(":")[1]), r["evaluation"]["spearman"])
        for n, r in results.items()
        if n.startswith("real:") and "evaluation" in r
    )

    def step_efficiency(name: str | None) -> dict | None:
        """Real SGD steps (log-interpolated on the real:k ladder) that rank as well as ``name`` does."""
        if not (name and ladder and "evaluation" in results[name]):
            return None
        rho = results[name]["evaluation"]["spearman"]
        for (s0, r0), (s1, r1) in itertools.pairwise(ladder):
            if min(r0, r1) <= rho <= max(r0, r1) and r0 != r1:
                steps = float(np.exp(np.log(s0) + (rho - r0) / (r1 - r0) * (np.log(s1) - np.log(s0))))
                return {"candidate": name, "real_steps_same_rho": steps, "bound": None}
        return {
            "candidate": name,
            "real_steps_same_rho": None,
            "bound": "above the ladder" if rho > ladder[-1][1] else "below the ladder",
        }

    alone = {n: r for n, r in gtn_based.items() if n.startswith("gtn[")}
    best_alone = max(alone, key=lambda n: alone[n]["tuning"]["spearman"]) if alone else None
    eff = step_efficiency(winner)
    eff_alone = step_efficiency(best_alone)
    payload = {
        "benchmark": "proxies_fashion_mnist_eval",
        "truth": Path(args.truth).name,
        "target": "mean val_acc of the truth's seeds 0 and 1",
        "split": {
            "rule": "cells 1-100 of the truth plan (sample seed 0) are the tuning split, 101-300 "
            "the evaluation split; every choice was made on the tuning split",
            "tuning": len(tuning),
            "evaluation": len(evaluation),
        },
        "n_archs": len(evaluation),
        "ceiling_spearman": seed_ceiling,
        "winner_chosen_on_tuning": winner,
        "best_without_gtn_chosen_on_tuning": best_no_gtn,
        "real128_seconds_per_arch": real128,
        "cost_budget_seconds": budget,
        "winner_step_efficiency": eff,
        "best_gtn_alone_chosen_on_tuning": best_alone,
        "gtn_alone_step_efficiency": eff_alone,
        "winner_within_quarter_of_real128": bool(winner and results[winner]["seconds_per_arch"] <= budget),
        "candidates": results,
    }
    provenance.write_result(args.json, payload, indent=1)
    rows = [
        {
            "candidate": n,
            "s/arch": r["seconds_per_arch"],
            **{f"{sp}_rho": r.get(sp, {}).get("spearman") for sp in ("tuning", "evaluation")},
            "eval_top20": r.get("evaluation", {}).get("spearman_top20_truth"),
        }
        for n, r in results.items()
    ]
    print(
        table(
            sorted(rows, key=lambda r: -(r["tuning_rho"] or -9))[:40],
            ["candidate", "tuning_rho", "evaluation_rho", "eval_top20", "s/arch"],
        )
    )
    print(f"winner (chosen on tuning): {winner}; best without GTN: {best_no_gtn}; wrote {args.json}")


if __name__ == "__main__":
    main()
