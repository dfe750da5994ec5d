# Heavy imports stay inside the commands, so `gtnnas --help` and results commands load no torch or Ray.
"""``gtnnas search`` (the main job) and ``gtnnas baseline`` (real-data training of sampled cells)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from cluster.cli.common import (
    add_config_args,
    add_ray_args,
    check_rank_pool,
    check_teacher,
    config,
    ensure_data,
    on_cluster,
)
from cluster.raysetup import ray_session
from results.phases import split_line
from results.storage import exists, join, local_copy
from search.components import help_text
from search.config import ExperimentConfig
from search.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    srch = sub.add_parser(
        "search",
        help="the main job: GTN-scored architecture search on Ray Tune",
        epilog=f"rung-1 score components (search.score=A, or A+B: equal weights on their ranks): {help_text()}",
    )
    add_config_args(srch, "configs/default.yaml")
    add_ray_args(srch)
    srch.add_argument("--resume", action="store_true", help="continue the interrupted experiment <storage>/<name>")
    srch.add_argument("--dashboard", action="store_true", help="start the Ray dashboard (embedded Ray, loopback only)")
    srch.add_argument("--verbose", action="store_true", help="Tune's own trial tables instead of one status line")
    srch.set_defaults(func=cmd_search)

    rt = sub.add_parser(
        "retrain",
        help="train the top-k distinct cells (or the Pareto front) of a finished search with a full schedule; "
        "writes final.parquet, best_model.pt and a torch.export program",
    )
    rt.add_argument("experiment", metavar="EXPERIMENT", help="experiment folder (local or a pyarrow.fs URI)")
    rt.add_argument("--top", type=int, default=None, metavar="K", help="distinct cells to retrain (default: 3)")
    rt.add_argument(
        "--pareto",
        nargs="?",
        const="",
        default=None,
        metavar="OBJECTIVES",
        help="retrain the Pareto front instead of the top K: under the search's own objectives, or these "
        "(e.g. val_acc:max,params:min); exclusive with --top",
    )
    rt.add_argument("--epochs", type=float, default=1.0, help="epochs over the training split (default: %(default)s)")
    rt.add_argument("--seeds", type=int, default=2, help="training seeds per cell (default: %(default)s)")
    add_ray_args(rt)
    rt.set_defaults(func=cmd_retrain)

    base = sub.add_parser("baseline", help="train sampled cells on real data as Tune trials and rank them")
    add_config_args(base, "configs/default.yaml")
    add_ray_args(base)
    base.set_defaults(func=cmd_baseline)


def cmd_search(args: argparse.Namespace) -> int:
    cfg = config(args)
    if cfg.search.evaluation.trains and not on_cluster(args):  # on a cluster every node gets its own
        ensure_data(cfg)
    check_teacher(cfg)
    if cfg.search.uses_gtn and not cfg.search.teacher:
        check_rank_pool(cfg)
    check_searcher(cfg)
    check_experiment(cfg, args.resume)
    from cluster.search_run import run_search

    with ray_session(args.address, num_cpus=args.num_cpus, dashboard=args.dashboard, verbose=args.verbose):
        final, root, calib = run_search(cfg, resume=args.resume, verbose=args.verbose)
    print_top(cfg, final, calib)
    print(f"leaderboard: {root}/leaderboard.parquet (one row per result under {root}/leaderboard/)")
    if cfg.retrain.top:
        _retrained(root, cfg.retrain.top, cfg.retrain.epochs, cfg.retrain.seeds, args)
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    from cluster.retrain import check_budget, plan

    check_budget(args.epochs, args.seeds)  # bad input: one line before Ray starts
    plan(args.experiment, args.top, args.pareto)
    _retrained(args.experiment, args.top, args.epochs, args.seeds, args, args.pareto)
    return 0


def _retrained(
    root: str, top: int | None, epochs: float, seeds: int, args: argparse.Namespace, pareto: str | None = None
) -> None:
    from cluster.retrain import run_retrain

    with ray_session(args.address, num_cpus=args.num_cpus):
        final = run_retrain(root, top=top, epochs=epochs, seeds=seeds, pareto=pareto)
    cols = ["arch", "seeds", "val_acc", "val_acc_std", "test_acc", "test_acc_std", "params", "search_rank"]
    print(f"\nRetrained {len(final)} cells for {epochs:g} epochs x {seeds} seed(s), best first:")
    print(final[cols].to_string(index=True, float_format=lambda v: f"{v:.4f}"))
    print(
        f"final table: {root}/final.parquet; best model: {root}/best_model.pt, exported {root}/best_model.pt2 "
        f"(torch.export.load; input shape and normalisation in best_model.json)"
    )
    lat = final.attrs.get("latency")
    if lat:
        bounds = ", ".join(lat["bounds"])
        verdict = f"; {'meets' if lat['program_meets_bounds'] else 'BREAKS'} {bounds}" if bounds else ""
        print(
            f"latency on {lat['device']} ({lat['device_name']}, {lat['threads']} thread(s), batch {lat['batch']}): "
            f"network {lat['network_ms']:.3f} ms, exported program {lat['program_ms']:.3f} ms{verdict}"
        )


def print_top(cfg: ExperimentConfig, final, calib: dict) -> None:
    top = final.head(cfg.search.top_k)
    cols = [
        c
        for c in ("arch", "val_acc", "test_acc", "rung1_score", "params", "flops", "trials")
        if c in top and top[c].notna().any()
    ]
    what = (
        "NB201 CIFAR-10 (table lookups)"
        if cfg.search.evaluation.looks_up
        else f"{cfg.data.dataset}, C={cfg.net.channels}, N={cfg.net.cells}"
    )
    print(f"\nTop {len(top)} of {len(final)} architectures, one per equivalence class ({what}):")
    print(top[cols].to_string(index=True, float_format=lambda v: f"{v:.4f}"))
    rho = calib.get("proxy_rho")
    interval = f" [{calib['proxy_rho_lo']:.2f}, {calib['proxy_rho_hi']:.2f}]" if "proxy_rho_lo" in calib else ""
    print(
        f"\nrung-1 score vs real accuracy: Spearman rho = {rho:.3f}{interval} over {calib['calibration_n']} "
        f"architectures"
        if rho is not None
        else f"\nproxy calibration needs >= 10 architectures with real scores (have {calib.get('calibration_n', 0)})"
    )
    split = final.attrs.get("phases")
    if split and "share" in split:
        print(
            f"where the cores went ({split['cores']:g} CPUs x {split['wall_seconds']:.0f} s of searching): "
            f"{split_line(split)}; {split['cells_screened']} cells screened by rung 1, "
            f"{split['cells_promoted']} trained on real data"
        )


def check_experiment(cfg: ExperimentConfig, resume: bool) -> None:
    """--resume needs an experiment to continue; a new run must not mix rows into an old one."""
    root = join(cfg.storage, cfg.name)
    if resume and not exists(root):
        raise InputError(f"--resume: no experiment at {root}")
    if not resume and exists(root):
        raise InputError(f"experiment {root} exists; pass --resume to continue it or choose another name=")
    if resume and exists(join(root, "experiment.json")):
        with local_copy(join(root, "experiment.json")) as path, open(path) as f:
            stored = json.load(f).get("config_hash")
        if stored != cfg.hash():
            raise InputError(
                f"--resume: {root} was started with another configuration (hash {stored}, now "
                f"{cfg.hash()}); resume it with the same --config and overrides"
            )


def check_searcher(cfg: ExperimentConfig) -> Any:
    """Build the searcher once before Ray starts, so a missing optional package is an exit-2 line."""
    from cluster.searchers import make_searcher

    stub = (lambda archs: [0.0] * len(archs)) if cfg.search.seed_proxy else None  # the real one runs at search time
    return make_searcher(cfg.search, seed=cfg.seed, proxy=stub)


def cmd_baseline(args: argparse.Namespace) -> int:
    cfg = config(args)
    if not on_cluster(args):
        ensure_data(cfg)
    from cluster.baseline import run_baseline

    with ray_session(args.address, num_cpus=args.num_cpus):
        table = run_baseline(cfg)
    print(f"\nReal-data baseline on {cfg.data.dataset} (C={cfg.net.channels}, N={cfg.net.cells}), best first:")
    print(table.to_string(index=True, float_format=lambda v: f"{v:.4f}"))
    return 0
