"""``gtnnas``: the command line. Thin: parse, validate at the door, call the library, print.

Any bad input (config, architecture, data, checkpoint) ends with one line on stderr and exit 2,
before anything is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from search.config import ConfigError, ExperimentConfig, load_config

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def _config(args: argparse.Namespace) -> ExperimentConfig:
    return load_config(args.config, list(args.overrides))


def _add_config_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--config", default=default, help="YAML experiment config (default: %(default)s)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.lr=0.1")


# --------------------------------------------------------------------------- commands


def cmd_arch_info(args: argparse.Namespace) -> int:
    from search.nets import arch_cost
    from search.space import parse

    arch = parse(args.arch)
    params, flops = arch_cost(arch, channels=args.channels, cells=args.cells, in_channels=args.in_channels,
                              image_size=args.image_size, num_classes=args.classes)
    info = {"arch": str(arch), "canonical": arch.canonical(), "equiv_hash": arch.equiv_hash(),
            "params": params, "flops": flops, "channels": args.channels, "cells": args.cells,
            "input": f"{args.in_channels}x{args.image_size}x{args.image_size}"}
    if args.json:
        print(json.dumps(info))
    else:
        width = max(map(len, info))
        for k, v in info.items():
            print(f"{k:<{width}}  {v:,}" if isinstance(v, int) else f"{k:<{width}}  {v}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from search.data import DataNotFoundError, check_available, fetch

    if args.if_missing:
        try:
            check_available(args.name, args.root)
            print(f"{args.name} is already on disk")
            return 0
        except DataNotFoundError:
            pass
    try:
        where = fetch(args.name, args.root)
    except OSError as e:  # no network, no disk
        raise UserError(str(e)) from None
    print(f"{args.name} is in {where}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _check_data(cfg)
    from cluster.baseline import run_baseline
    from cluster.raysetup import start_ray

    started = start_ray(args.address, num_cpus=args.num_cpus)
    try:
        table = run_baseline(cfg)
    finally:
        if started:
            import ray

            ray.shutdown()
    print(f"\nReal-data baseline on {cfg.data.dataset} (C={cfg.net.channels}, N={cfg.net.cells}), best first:")
    print(table.to_string(index=True, float_format=lambda v: f"{v:.4f}"))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    cfg = _config(args)
    _check_data(cfg)
    _check_teacher(cfg)
    _check_searcher(cfg)
    _check_experiment(cfg, args.resume)
    from cluster.raysetup import start_ray
    from cluster.search_run import run_search

    started = start_ray(args.address, num_cpus=args.num_cpus, dashboard=args.dashboard)
    try:
        final, root, calib = run_search(cfg, resume=args.resume)
    finally:
        if started:
            import ray

            ray.shutdown()
    top = final.head(cfg.search.top_k)
    cols = ["arch", "val_acc", "test_acc", "gtn_score", "params", "flops", "trials"]
    print(f"\nTop {len(top)} of {len(final)} architectures ({cfg.data.dataset}, C={cfg.net.channels}, N={cfg.net.cells}):")
    print(top[cols].to_string(index=True, float_format=lambda v: f"{v:.4f}"))
    rho = calib.get("proxy_rho")
    print(f"\nGTN proxy vs real accuracy: Spearman rho = {rho:.3f} over {calib['calibration_n']} architectures"
          if rho is not None else f"\nproxy calibration needs >= 10 architectures with real scores "
          f"(have {calib.get('calibration_n', 0)})")
    print(f"leaderboard: {root}/leaderboard.parquet (parts under {root}/leaderboard/)")
    return 0


def _check_experiment(cfg: ExperimentConfig, resume: bool) -> None:
    """--resume needs an experiment to restore; a new run must not mix rows into an old one."""
    from cluster.storage import exists, join

    root = join(cfg.storage, cfg.name)
    started = exists(join(root, "tuner.pkl")) or exists(join(root, "leaderboard"))
    if resume and not exists(join(root, "tuner.pkl")):
        raise UserError(f"--resume: no experiment to restore at {root}")
    if not resume and started:
        raise UserError(f"experiment {root} exists; pass --resume to continue it or choose another name=")


def _check_searcher(cfg: ExperimentConfig) -> None:
    """Build the searcher once before Ray starts, so a missing optional package is an exit-2 line."""
    from cluster.searchers import make_searcher

    s = cfg.search
    make_searcher(s.searcher, metric="gtn_score", mode="max", population=s.population, tournament=s.tournament,
                  seed=cfg.seed, max_concurrent=s.max_concurrent)


def _check_teacher(cfg: ExperimentConfig) -> None:
    """A configured teacher must exist and be a valid checkpoint for this data set (exit 2 otherwise)."""
    if not cfg.search.teacher:
        return
    from cluster.storage import exists, fetch_to_local
    from search.teach import CheckpointError, load_teacher

    try:
        present = exists(cfg.search.teacher)
    except OSError as e:
        raise UserError(f"search.teacher: cannot reach {cfg.search.teacher} ({str(e).splitlines()[0][:160]})") from None
    if not present:
        raise CheckpointError(f"search.teacher: {cfg.search.teacher}: no such teacher checkpoint")
    load_teacher(fetch_to_local(cfg.search.teacher), expect_dataset=cfg.data.dataset)


def _check_data(cfg: ExperimentConfig) -> None:
    """Fail at the door (exit 2) when the data set is missing, before Ray or any file."""
    from search.data import check_available

    check_available(cfg.data.dataset, cfg.data.root)


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gtnnas", description="Neural architecture search scored by a Generative Teaching Network, on Ray Tune."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    arch = sub.add_parser("arch", help="inspect NAS-Bench-201 architectures").add_subparsers(
        dest="arch_command", required=True, metavar="SUBCOMMAND")
    info = arch.add_parser("info", help="canonical string, equivalence hash, params and FLOPs of one cell")
    info.add_argument("arch", help="NAS-Bench-201 string, e.g. '|nor_conv_3x3~0|+|...|+|...|'")
    info.add_argument("--channels", type=int, default=16)
    info.add_argument("--cells", type=int, default=5)
    info.add_argument("--in-channels", type=int, default=3)
    info.add_argument("--image-size", type=int, default=32)
    info.add_argument("--classes", type=int, default=10)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_arch_info)

    data = sub.add_parser("data", help="data sets").add_subparsers(dest="data_command", required=True,
                                                                    metavar="SUBCOMMAND")
    fetch = data.add_parser("fetch", help="download a data set through torchvision (needs the internet)")
    fetch.add_argument("name", choices=["mnist", "fashion_mnist", "cifar10"])
    fetch.add_argument("--root", default=None, help="target folder (default: $GTNNAS_DATA_DIR or ~/.cache/gtnnas/data)")
    fetch.add_argument("--if-missing", action="store_true", help="do nothing when the data set is already found")
    fetch.set_defaults(func=cmd_data_fetch)

    base = sub.add_parser("baseline", help="train sampled cells on real data as Tune trials and rank them")
    _add_config_args(base, "configs/default.yaml")
    base.add_argument("--address", default=None, help="Ray address ('auto' for a running cluster); default: embedded local Ray")
    base.add_argument("--num-cpus", type=int, default=None, help="CPUs for the embedded Ray (default: all)")
    base.set_defaults(func=cmd_baseline)

    srch = sub.add_parser("search", help="the main job: GTN-scored architecture search on Ray Tune")
    _add_config_args(srch, "configs/default.yaml")
    srch.add_argument("--address", default=None, help="Ray address ('auto' for a running cluster); default: embedded local Ray")
    srch.add_argument("--num-cpus", type=int, default=None, help="CPUs for the embedded Ray (default: all)")
    srch.add_argument("--resume", action="store_true", help="restore the interrupted experiment <storage>/<name>")
    srch.add_argument("--dashboard", action="store_true", help="start the Ray dashboard (embedded Ray, loopback only)")
    srch.set_defaults(func=cmd_search)

    for register in _extra_commands():
        register(sub)
    return p


def _extra_commands() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands that live in their own modules (imported lazily: --help stays fast)."""
    from cluster import gtn_cli, proxy_cli, report_cli

    return [gtn_cli.register, proxy_cli.register, report_cli.register]


def main(argv: Sequence[str] | None = None) -> int:
    from search.errors import CheckpointError, DataNotFoundError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UserError, DataNotFoundError, ConnectionError, CheckpointError) as e:
        print(f"gtnnas: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ValueError as e:  # bad architectures, leaderboards, truth tables, proxy names: all ValueErrors
        print(f"gtnnas: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
