# Heavy imports stay inside the commands, so `gtnnas --help` and results commands load no torch or Ray.
"""``gtnnas leaderboard``, ``gtnnas report`` and ``gtnnas compare``: answers from finished searches.

Only :mod:`results` is imported here, never torch or Ray, so these commands start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pyarrow as pa

from results.storage import write_parquet, write_text
from search.errors import InputError

FORMATS = ("table", "csv", "json", "parquet")
SHOWN = ["experiment", "arch", "val_acc", "test_acc", "rung1_score", "params", "flops", "trials"]


def register(sub: argparse._SubParsersAction) -> None:
    lb = sub.add_parser("leaderboard", help="filter, sort and print leaderboards (one experiment or a folder of many)")
    lb.add_argument(
        "path",
        metavar="PATH_OR_URI",
        help="leaderboard.parquet, an experiment folder, or a folder of experiments (local or s3://, gs://, file://)",
    )
    lb.add_argument("--top", type=int, default=None, metavar="K", help="only the first K rows after sorting")
    lb.add_argument("--sort", default=None, metavar="METRIC", help="column to sort by, best first (default: val_acc)")
    lb.add_argument("--ascending", action="store_true", help="sort smallest first (e.g. --sort params)")
    lb.add_argument("--where", default=None, metavar="EXPR", help='row filter, e.g. "val_acc > 0.9 and params < 5e4"')
    lb.add_argument(
        "--pareto",
        default=None,
        metavar="OBJECTIVES",
        help="only the Pareto front for these objectives (two or more columns, e.g. val_acc:max,params:min; "
        "also test_acc, flops, latency_ms, rung1_score), best first by the first one",
    )
    lb.add_argument("--format", choices=FORMATS, default="table", help="output format (default: %(default)s)")
    lb.add_argument(
        "--columns",
        default=None,
        help="comma-separated columns (default: all for csv/json/parquet, a summary for table)",
    )
    lb.add_argument("--output", default=None, metavar="FILE", help="write here instead of stdout (needed for parquet)")
    lb.set_defaults(func=cmd_leaderboard)

    rp = sub.add_parser("report", help="self-contained HTML report with plots (DIR/index.html + PNGs)")
    rp.add_argument(
        "path", metavar="PATH_OR_URI", help="experiment folder, leaderboard.parquet or folder of experiments"
    )
    rp.add_argument("--out", required=True, metavar="DIR", help="folder for index.html and its PNGs")
    rp.add_argument(
        "--truth", default=None, help="truth Parquet (`gtnnas truth`) to judge the proxy and the fronts against"
    )
    rp.add_argument(
        "--top", type=int, default=10, metavar="K", help="top-k for tables and operation shares (default: %(default)s)"
    )
    rp.set_defaults(func=cmd_report)

    cp = sub.add_parser("compare", help="side-by-side summary of two experiments")
    cp.add_argument("a", metavar="EXP_A")
    cp.add_argument("b", metavar="EXP_B")
    cp.add_argument("--format", choices=("table", "json"), default="table")
    cp.set_defaults(func=cmd_compare)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from results.analysis import front, front_objectives, load, top

    if args.top is not None and args.top < 1:
        raise InputError(f"--top must be >= 1, got {args.top}")
    if args.format == "parquet" and not args.output:
        raise InputError("--format parquet needs --output FILE")
    if args.pareto is not None and (args.sort is not None or args.ascending):
        raise InputError("--pareto sorts the front by its first objective: leave out --sort and --ascending")
    df = load(args.path, args.where)
    shown = list(SHOWN)
    if args.pareto is not None:
        objectives = front_objectives(args.pareto, list(df.columns))
        df = front(df, objectives)
        df = df.head(args.top) if args.top else df
        shown += [o.name for o in objectives if o.name not in shown] + ["pareto_rank"]
    else:
        df = top(df, args.top, args.sort or "val_acc", args.ascending)
    if args.columns:
        cols = [c.strip() for c in args.columns.split(",") if c.strip()]
        unknown = [c for c in cols if c not in df.columns]
        if unknown:
            raise InputError(f"--columns: unknown column(s) {', '.join(unknown)} (columns: {', '.join(df.columns)})")
        df = df[cols]
    elif args.format == "table":
        df = df[[c for c in shown if c in df.columns]]
    _write(df, args)
    return 0


def _write(df: Any, args: argparse.Namespace) -> None:
    """``df`` in ``--format``, to ``--output`` or stdout."""
    if args.format == "parquet":
        write_parquet(pa.Table.from_pandas(df, preserve_index=False), args.output)
        print(f"wrote {len(df)} rows to {args.output}", file=sys.stderr)
        return
    if args.format == "csv":
        text = df.to_csv(index=False)
    elif args.format == "json":
        text = df.to_json(orient="records", indent=1) + "\n"
    else:
        text = (df.to_string(index=False, float_format=lambda v: f"{v:.4f}") if len(df) else "(no rows)") + "\n"
    if args.output:
        write_text(args.output, text)
    else:
        sys.stdout.write(text)


def cmd_report(args: argparse.Namespace) -> int:
    from results.report import build_report

    if args.top < 1:
        raise InputError(f"--top must be >= 1, got {args.top}")
    target = build_report(args.path, args.out, truth=args.truth, top_k=args.top)
    print(f"report: {target}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from results.compare import fronts, summary

    a, b = summary(args.a), summary(args.b)
    pareto = fronts(args.a, args.b)
    if args.format == "json":
        print(json.dumps({"a": a, "b": b, "pareto": pareto}, indent=1, default=str))
        return 0
    width = max(len(str(a["path"])), len(str(b["path"])), 12)
    print(f"{'':<16} {'A':<{width}}  {'B':<{width}}")
    for key in a:
        if key == "best_arch":
            continue
        print(f"{key:<16} {_fmt(a[key]):<{width}}  {_fmt(b[key]):<{width}}")
    print(f"{'best_arch A':<16} {a['best_arch']}\n{'best_arch B':<16} {b['best_arch']}")
    print(_fronts_text(pareto, width))
    return 0


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v is None else str(v)


def _fronts_text(p: dict[str, Any], width: int) -> str:
    """The fronts' lines of ``gtnnas compare``: sizes, hypervolumes (one reference), who dominates more."""
    head = f"Pareto fronts ({p['objectives']})"
    if p.get("a") is None:
        return f"{head}: {p.get('note') or 'no row has every objective'}"
    a, b = p["a"], p["b"]
    ref = ", ".join(f"{v:.6g}" for v in p["reference"])
    lines = [
        f"{head}, reference point ({ref}): the worst of each over both",
        f"{'front_size':<16} {a['front_size']:<{width}}  {b['front_size']:<{width}}",
        f"{'front_hv':<16} {a['front_hv']:<{width}.4f}  {b['front_hv']:<{width}.4f}",
        f"{'dominated':<16} {a['dominated']:<{width}}  {b['dominated']:<{width}}",
        f"{'dominates more':<16} {p['dominates_more']}",
    ]
    return "\n".join(lines)
