# Heavy imports stay inside the commands, so `gtnnas --help` and results commands load no torch or Ray.
"""``gtnnas truth``, ``gtnnas bench proxies`` and ``gtnnas bench search``: ground truth and the benchmarks on it."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from cluster.bench_search import (
    CHECKPOINTS,
    PROTOCOL,
    STRATEGIES,
    STRATEGY_NOTE,
    plot,
    run_repeat,
    strategy_config,
    summarise,
)
from cluster.cli.common import add_ray_args, ensure_data
from cluster.raysetup import ray_session
from results.truthtable import load_truth, replicate_rho, seed_rho
from search import nb201
from search.components import NAMES
from search.config import ExperimentConfig, config_from_dict, load_config
from search.data import load_configured
from search.errors import InputError
from search.files import write_json

if TYPE_CHECKING:
    from search.proxies import ProxyContext


def register(sub: argparse._SubParsersAction) -> None:
    _truth_parser(sub)
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(
        dest="bench_command", required=True, metavar="SUBCOMMAND"
    )
    _bench_proxies_parser(bench)
    _bench_search_parser(bench)


def _truth_parser(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "truth",
        help="train uniformly sampled cells fully on real data (Tune trials, resumable) and write a truth Parquet",
    )
    t.add_argument(
        "--config", default="configs/default.yaml", help="net, training and data settings (default: %(default)s)"
    )
    t.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.lr=0.05")
    t.add_argument(
        "--dataset",
        default=None,
        choices=["mnist", "fashion_mnist", "cifar10"],
        help="data set (default: the config's)",
    )
    t.add_argument("--archs", type=int, required=True, help="how many distinct cells to sample uniformly")
    t.add_argument(
        "--seeds",
        type=int,
        default=2,
        help="training seeds per cell; 2k seeds also measure how k-seed means agree (default: %(default)s)",
    )
    t.add_argument("--budget", type=float, required=True, help="training epochs over the training split")
    t.add_argument("--sample-seed", type=int, default=0, help="seed of the cell sample (default: %(default)s)")
    t.add_argument("--out", required=True, help="truth Parquet (local path or URI); parts go to OUT.parts/")
    add_ray_args(t)
    t.add_argument(
        "--cpus-per-trial", type=int, default=1, help="CPUs (torch threads) per trial (default: %(default)s)"
    )
    t.set_defaults(func=cmd_truth)


def _bench_proxies_parser(bench: argparse._SubParsersAction) -> None:
    p = bench.add_parser(
        "proxies", help="Spearman/Kendall of proxies against a truth table, cost per arch, scatter PNGs"
    )
    p.add_argument("--truth", required=True, help="truth Parquet written by `gtnnas truth`")
    p.add_argument(
        "--proxies",
        default="params,flops,synflow,naswot,jacob_cov,snip,grad_norm",
        help=f"comma-separated: {', '.join(NAMES)} (the score components), snip, grad_norm, real:K, "
        "gtn[:K][:sS][:vN][:cC][:loss] (K steps, mean of S learner seeds, N validation images, "
        "learners C channels wide, minus the loss instead of accuracy), ensemble:A+B (mean rank), "
        "calibrated:A+B or search (a search's rung-1 score with --config's search.score_* "
        "settings, equal weights on ranks) (default: %(default)s)",
    )
    p.add_argument("--out", required=True, help="folder for proxies.json and scatter_<proxy>.png")
    p.add_argument("--json", default=None, help="write the JSON here instead of OUT/proxies.json")
    p.add_argument("--config", default=None, help="net/data settings (default: the ones the truth was built with)")
    p.add_argument("--teacher", default=None, help="teacher.pt for gtn:K proxies")
    p.add_argument(
        "--val-subset", type=int, default=None, help="validation images for real:K / gtn:K (default: config's)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="network init / batch seed (default: %(default)s)")
    p.set_defaults(func=cmd_bench_proxies)


def _bench_search_parser(bench: argparse._SubParsersAction) -> None:
    bs = bench.add_parser(
        "search",
        help="search strategies compared in benchmark mode (NAS-Bench-201 table), "
        "many repeats each: JSON and a regret plot",
    )
    bs.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated (default: %(default)s)")
    bs.add_argument("--repeats", type=int, default=50, help="seeds per strategy (default: %(default)s)")
    bs.add_argument(
        "--evaluations", type=int, default=max(CHECKPOINTS), help="table lookups per repeat (default: %(default)s)"
    )
    bs.add_argument("--out", required=True, help="JSON to write; the regret plot goes beside it (.png)")
    bs.set_defaults(func=cmd_bench_search)


def cmd_truth(args: argparse.Namespace) -> int:
    from cluster.truth import build_truth, plan_jobs, truth_config

    cfg = load_config(args.config, list(args.overrides))
    if args.dataset:
        cfg = replace(cfg, data=replace(cfg.data, dataset=args.dataset))
    if args.budget <= 0:
        raise InputError(f"--budget must be > 0 epochs, got {args.budget}")
    if args.cpus_per_trial < 1:
        raise InputError(f"--cpus-per-trial must be >= 1, got {args.cpus_per_trial}")
    cfg = truth_config(cfg, args.budget)
    ensure_data(cfg)
    jobs = plan_jobs(args.archs, args.seeds, args.sample_seed)  # validates the counts before Ray starts
    start = time.perf_counter()
    with ray_session(args.address, num_cpus=args.num_cpus):
        rows, ran = build_truth(
            cfg,
            args.out,
            n_archs=args.archs,
            n_seeds=args.seeds,
            sample_seed=args.sample_seed,
            cpus_per_trial=args.cpus_per_trial,
        )
    took = time.perf_counter() - start
    rho = seed_rho(rows)
    print(
        f"truth: {len(rows)} rows ({args.archs} cells x {args.seeds} seeds, {len(jobs) - ran} already done, "
        f"{ran} trained now in {took:.0f}s) -> {args.out}"
    )
    print(
        f"budget {args.budget:g} epochs; mean {sum(r['seconds'] for r in rows) / len(rows):.1f}s per run; "
        f"seed-to-seed Spearman rho of val_acc = {rho:.3f}"
    )
    replicate, k = replicate_rho(rows)
    if k:
        print(f"Spearman rho between {k}-seed means of val_acc (every split of the seeds in two) = {replicate:.3f}")
    return 0


def _config(args: argparse.Namespace, meta: dict) -> ExperimentConfig:
    """The settings proxies run with: --config, else the ones the truth table was built with."""
    if args.config:
        cfg = load_config(args.config, [])
    elif "config" in meta:  # the data directory of the machine that built the table need not exist here
        cfg = config_from_dict(meta["config"], args.truth)
        cfg = replace(cfg, data=replace(cfg.data, root=None))
    else:
        raise InputError(f"{args.truth} carries no config; pass --config")
    return cfg


def _context(args: argparse.Namespace, cfg: ExperimentConfig) -> ProxyContext:
    from search.proxies import ProxyContext

    d = cfg.data
    if args.val_subset is not None:
        if args.val_subset < 1:
            raise InputError(f"--val-subset must be >= 1, got {args.val_subset}")
        d = replace(d, val_subset=args.val_subset)
    data = load_configured(d)
    curriculum = None
    if args.teacher:
        from search.teacher_files import load_teacher

        curriculum = load_teacher(args.teacher, expect_dataset=data.identity).curriculum(real=data.train)
    return ProxyContext(
        net=cfg.net,
        shape=data.shape,
        num_classes=data.num_classes,
        data=data,
        curriculum=curriculum,
        train=cfg.train,
        seed=args.seed,
    )


def cmd_bench_proxies(args: argparse.Namespace) -> int:
    import torch

    from cluster.proxy_bench import bench, table
    from search.proxy_specs import needs_curriculum, parse_proxies

    if any(needs_curriculum(p) for p in parse_proxies(args.proxies)) and not args.teacher:  # before reading files
        raise InputError("gtn proxies need --teacher PATH")
    _, meta = load_truth(args.truth)
    cfg = _config(args, meta)
    proxies = parse_proxies(args.proxies, cfg.search)
    if args.threads:
        torch.set_num_threads(args.threads)
    ctx = _context(args, cfg)

    def progress(name: str, result: tuple) -> None:
        print(f"  {name}: {sum(result[1]) / max(len(result[1]), 1):.4f}s per arch", file=sys.stderr, flush=True)

    result = bench(args.truth, proxies, ctx, args.out, args.json, progress)
    print(f"{result['n_archs']} architectures x {result['seeds']} seeds from {args.truth}")
    print(
        table(result["proxies"], result["ceiling_spearman"], (result["replicate_spearman"], result["replicate_seeds"]))
    )
    for name, e in result["gtn_step_efficiency"].items():
        print(
            f"{name} ranks like real:{e['real_steps_same_rho']:.0f} ({e['step_ratio']:.1f}x fewer steps)"
            if e["real_steps_same_rho"]
            else f"{name}: rho {e['bound']} of the real:k ladder"
        )
    print(f"JSON: {args.json or args.out + '/proxies.json'}; scatter plots under {args.out}/")
    return 0


def write_bench_json(path: str, results: dict) -> None:
    payload = {
        "benchmark": "search_nb201",
        "table": "NAS-Bench-201 12-epoch (vendored)",
        "best_test": nb201.best_test(),
        "protocol": PROTOCOL,
        "strategies": results,
    }
    write_json(path, payload)


def cmd_bench_search(args: argparse.Namespace) -> int:
    if args.repeats < 1 or args.evaluations < 1:
        raise InputError("--repeats and --evaluations must be >= 1")
    logging.getLogger("optuna").setLevel(logging.WARNING)  # one "study created" line per repeat otherwise
    from cluster.searchers import make_searcher

    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    configs = {n: strategy_config(n, args.evaluations) for n in names}  # unknown names fail before any work
    for s in configs.values():  # a searcher whose package is missing fails now, not after hours
        make_searcher(s, seed=0, proxy=lambda archs: [0.0] * len(archs))
    results: dict[str, dict] = {}
    for name, s in configs.items():
        start = time.perf_counter()
        reps = [run_repeat(s, seed, args.evaluations) for seed in range(args.repeats)]
        results[name] = {
            **summarise(reps, args.evaluations),
            "settings": STRATEGY_NOTE.get(name, ""),
            "seconds": time.perf_counter() - start,
        }
        r = results[name]
        at = r["at"].get("100", {})
        print(
            f"{name:<20} @100: test {at.get('test_mean', float('nan')):.4f} +- {at.get('test_std', float('nan')):.4f}, "
            f"percentile {at.get('percentile_mean', float('nan')):.2f}; top 1% within {args.evaluations}: "
            f"{r['evals_to_top1pct']['share_within']:.0%} (median {r['evals_to_top1pct']['median']:.0f} evals); "
            f"{r['seconds']:.0f}s",
            flush=True,
        )
        write_bench_json(args.out, results)  # after every strategy: an interruption keeps what is done
    png = args.out.rsplit(".", 1)[0] + ".png"
    plot(results, png)
    print(f"wrote {args.out} and {png}")
    return 0
