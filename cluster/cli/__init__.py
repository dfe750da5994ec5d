"""``gtnnas``: the command line. Thin: parse, validate at the door, call the library, print.

Each subcommand lives in its own module with a ``register(subparsers)``; they are imported here, and
none imports torch or Ray at module level, so ``--help`` and the result-reading commands start fast.
Input errors (:class:`search.errors.InputError`: a config, a cell, data, a checkpoint, a leaderboard)
end with one line on stderr and exit code 2, before anything is written; any other exception is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cluster.cli import basics, bench, gtn, results, search
from search.errors import InputError

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gtnnas", description="Neural architecture search scored by a Generative Teaching Network, on Ray Tune."
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (search, gtn, basics, bench, results):
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as e:
        print(f"gtnnas: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
