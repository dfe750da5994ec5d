"""The default rung-1 score, chosen by a rule stated before looking (issue #29, item 0).

The rule, fixed in this file before it was first run:

- Candidates: the equal-weight rank combination (the mean of each component's rank among the scored
  cells: what a live search computes until it has enough real results to refit, and what it uses if it
  never refits) of every non-empty subset of {gtn, params, synflow, naswot, jacob_cov}: 31 candidates.
  ``gtn`` is the default GTN score (C=8 learners, the curriculum's 16 steps, the mean accuracy of learner
  seeds 0 and 1 read on 1,000 validation images, the shipped Fashion-MNIST teacher); ``flops`` is left
  out as it orders cells at this network size almost exactly as ``params`` does.
- Statistic: Spearman rho against the truth (the mean val_acc of the truth's seeds 0 and 1) on the
  truth table's tuning split (cells 1-100).
- Incumbent: the default before this rule, ``gtn+synflow``. A candidate replaces it only when it has a
  higher rho than the incumbent in at least 90% of 2,000 paired bootstrap resamples of the tuning cells
  (seed 0); if several do, the one with the highest share of wins, then the highest rho on the tuning
  split.
- The chosen score (and the incumbent, for the comparison) is then scored once on the evaluation split
  (cells 101-300).

The refit (weights fitted on the search's own real results) is judged on the tuning split too: for n
cells with a real result (drawn at random, 400 draws per n), the chosen combination with ridge weights
fitted on those n cells against the same combination with equal weights, both read on the remaining
tuning cells. Optimistic for the refit: a live search fits on the 200-step real rungs of the cells its
own score promoted (a narrow, noisier sample), not on the truth of random cells.

    python -m benchmarks.score_choice --teacher-scores benchmarks/results/gtn_scores/c8_t16.parquet \\
        --eval-scores benchmarks/results/gtn_scores/c8_t16_eval.parquet
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks import provenance
from benchmarks._common import table, write
from results.truthtable import load_truth, split_of
from search.rank_combination import RankCombination
from search.stats import ranks, spearman

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "benchmarks" / "truth" / "fashion_mnist.parquet"
SCORES = ROOT / "benchmarks" / "results" / "gtn_scores"
COMPONENTS = ("gtn", "params", "synflow", "naswot", "jacob_cov")
ZERO_COST = COMPONENTS[1:]
INCUMBENT = ("gtn", "synflow")
WIN_SHARE = 0.90
RESAMPLES = 2000
REFIT_N = (5, 10, 15, 20, 30, 40, 60)
REFIT_DRAWS = 400
CODE = ("search/proxies.py", "search/nets.py", "search/proxy_specs.py", "search/data.py")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", default=str(TRUTH))
    ap.add_argument("--teacher-scores", default=str(SCORES / "c8_t16.parquet"), help="per-seed GTN rows, tuning")
    ap.add_argument("--eval-scores", default=str(SCORES / "c8_t16_eval.parquet"), help="per-seed GTN rows, evaluation")
    ap.add_argument("--cache", default="runs/scores", help="zero-cost proxies, keyed by the code that computes them")
    ap.add_argument("--threads", type=int, default=1)
    return provenance.add_common_args(ap)


def code_version() -> str:
    h = hashlib.sha256()
    for f in CODE:
        h.update((ROOT / f).read_bytes())
    return h.hexdigest()[:10]


def zero_cost(archs: list[str], meta: dict[str, Any], cache: Path, threads: int) -> pd.DataFrame:
    """params, synflow, naswot and jacob_cov of every truth cell on the truth's network (cached per code version)."""
    path = cache / f"zero_cost-{code_version()}.parquet"
    if path.exists():
        return pd.read_parquet(path).set_index("arch")
    import torch  # noqa: PLC0415  (lazy: only when the cache misses)

    from search.config import config_from_dict  # noqa: PLC0415
    from search.data import load_dataset  # noqa: PLC0415
    from search.proxies import ProxyContext  # noqa: PLC0415
    from search.proxy_specs import make_proxy  # noqa: PLC0415
    from search.space import parse  # noqa: PLC0415

    torch.set_num_threads(threads)
    cfg = config_from_dict(meta["config"], "truth")
    data = load_dataset(cfg.data.dataset, None, split_seed=cfg.data.split_seed, val_subset=5000)
    ctx = ProxyContext(net=cfg.net, shape=data.shape, num_classes=data.num_classes, data=data, train=cfg.train)
    cols: dict[str, Any] = {"arch": archs}
    for name in ZERO_COST:
        cols[name] = make_proxy(name).score_many([parse(a) for a in archs], ctx)[0]
    df = pd.DataFrame(cols)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path)
    return df.set_index("arch")


def gtn_two_seeds(path: str) -> pd.Series:
    rows = pd.read_parquet(path)
    rows = rows[(rows["seed"] < 2) & (rows["val_size"] == 1000) & (rows["steps"] == 16)]
    acc = rows.groupby("arch")["acc"]
    return acc.mean().where(acc.count() == 2)


def rank_combination(frame: pd.DataFrame, parts: tuple[str, ...]) -> np.ndarray:
    """Equal weights on ranks among the cells given: the live search's combination before any refit."""
    return np.mean([ranks(np.nan_to_num(frame[p].to_numpy(float), nan=-np.inf)) for p in parts], axis=0)


def name(parts: tuple[str, ...]) -> str:
    return "+".join(parts)


def choose(frame: pd.DataFrame, truth: np.ndarray, rng: np.random.Generator) -> tuple[dict[str, Any], str]:
    """Every candidate's tuning rho and paired-bootstrap share of wins over the incumbent; the choice."""
    cands = [c for k in range(1, len(COMPONENTS) + 1) for c in itertools.combinations(COMPONENTS, k)]
    scores = {name(c): rank_combination(frame, c) for c in cands}
    idx = rng.integers(0, len(truth), (RESAMPLES, len(truth)))
    boot = {n: np.array([spearman(s[i], truth[i]) for i in idx]) for n, s in scores.items()}
    inc = name(INCUMBENT)
    out = {
        n: {
            "components": n.split("+"),
            "tuning_rho": spearman(s, truth),
            "tuning_ci95": [float(np.percentile(boot[n], 2.5)), float(np.percentile(boot[n], 97.5))],
            "wins_over_incumbent": float(np.mean(boot[n] > boot[inc])),
        }
        for n, s in scores.items()
    }
    winners = [n for n, r in out.items() if n != inc and r["wins_over_incumbent"] >= WIN_SHARE]
    chosen = max(winners, key=lambda n: (out[n]["wins_over_incumbent"], out[n]["tuning_rho"])) if winners else inc
    return out, chosen


def refit_study(frame: pd.DataFrame, truth: np.ndarray, parts: tuple[str, ...], rng: np.random.Generator) -> list:
    """For n real results: rho of ridge-refitted weights against equal weights on the remaining cells."""
    rows = []
    for n in REFIT_N:
        diffs = []
        for _ in range(REFIT_DRAWS):
            pick = rng.permutation(len(truth))
            fit_i, rest = pick[:n], pick[n:]
            values = {p: frame[p].to_numpy(float) for p in parts}
            cal = RankCombination.fit(parts, {p: v[fit_i] for p, v in values.items()}, truth[fit_i])
            fitted = cal.combine({p: v[rest] for p, v in values.items()})
            equal = RankCombination.equal(parts, {p: v[rest] for p, v in values.items()}).combine(
                {p: v[rest] for p, v in values.items()}
            )
            diffs.append(spearman(fitted, truth[rest]) - spearman(equal, truth[rest]))
        d = np.asarray(diffs)
        rows.append(
            {
                "n_real": n,
                "mean_rho_gain": float(d.mean()),
                "gain_ci95": [float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))],
                "share_refit_better": float(np.mean(d > 0)),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    started = time.time()
    df, meta = load_truth(args.truth)
    truth = df[df["seed"].isin([0, 1])].groupby("arch")["val_acc"].mean()
    split = split_of(list(truth.index), meta.get("sample_seed", 0))
    zc = zero_cost(list(truth.index), meta, Path(args.cache), args.threads)
    gtn = pd.concat([gtn_two_seeds(args.teacher_scores), gtn_two_seeds(args.eval_scores)])
    frame = zc.join(gtn.rename("gtn"))
    tuning = [a for a in truth.index if split[a] == "tuning"]
    evaluation = [a for a in truth.index if split[a] == "evaluation"]
    rng = np.random.default_rng(0)
    t_tune = truth.reindex(tuning).to_numpy(float)
    cands, chosen = choose(frame.reindex(tuning), t_tune, rng)
    parts = tuple(chosen.split("+"))
    refit = refit_study(frame.reindex(tuning), t_tune, parts, rng) if len(parts) > 1 else []
    t_eval = truth.reindex(evaluation).to_numpy(float)
    once = {}
    for n in dict.fromkeys([chosen, name(INCUMBENT)]):
        s = rank_combination(frame.reindex(evaluation), tuple(n.split("+")))
        idx = rng.integers(0, len(t_eval), (RESAMPLES, len(t_eval)))
        bs = np.array([spearman(s[i], t_eval[i]) for i in idx])
        once[n] = {
            "evaluation_rho": spearman(s, t_eval),
            "evaluation_ci95": [float(np.percentile(bs, 2.5)), float(np.percentile(bs, 97.5))],
        }
    payload = {
        "rule": __doc__.split("The rule, fixed in this file before it was first run:")[1].split("The refit")[0].strip(),
        "incumbent": name(INCUMBENT),
        "chosen": chosen,
        "tuning_cells": len(tuning),
        "evaluation_cells": len(evaluation),
        "candidates": cands,
        "evaluation_once": once,
        "refit": {"components": list(parts), "draws": REFIT_DRAWS, "by_n": refit},
        "seconds": time.time() - started,
    }
    path = write("score_choice", payload)
    rows = sorted(
        ({"candidate": n, **{k: r[k] for k in ("tuning_rho", "wins_over_incumbent")}} for n, r in cands.items()),
        key=lambda r: -r["tuning_rho"],
    )
    print(table(rows, ["candidate", "tuning_rho", "wins_over_incumbent"]))
    print(f"chosen: {chosen} (incumbent {name(INCUMBENT)}); evaluation once: {once}")
    if refit:
        print(table(refit, ["n_real", "mean_rho_gain", "share_refit_better"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
