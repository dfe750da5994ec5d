"""Reading and slicing leaderboards: one experiment or a folder of many, local or any pyarrow.fs URI.

``load`` accepts a ``leaderboard.parquet`` file, an experiment folder (its final table, or its part
files while the search still runs) or a folder whose sub-folders are experiments. ``--where`` is
parsed with :mod:`ast` into a pyarrow expression (columns, numbers, strings, comparisons, and/or/not,
``in``), so it is pushed into the Parquet scan and never ``eval``-ed.
"""

from __future__ import annotations

import ast
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from results.leaderboard import FINAL, PARTS, best_per_class, objectives_of, pareto_ranks, read_parts, read_statuses
from results.storage import check_rows, join, read_metadata, resolve
from search.errors import InputError, LeaderboardError, first_line
from search.pareto import METRICS, MODES, Objective, non_dominated_ranks, parse_objectives
from search.space import EDGE_KEYS, OPS, parse

REQUIRED = ("arch", "val_acc")
RANKABLE = {**METRICS, "rung1_score": "max"}  # what a front can be drawn over (a table's numeric columns)


def _kind(fs: pafs.FileSystem, path: str) -> pafs.FileType:
    return fs.get_file_info(path).type


def locate(path: str) -> tuple[list[str], list[str]]:
    """(final leaderboard files, experiment folders that only have part files) under ``path``."""
    fs, p = resolve(path)
    kind = _kind(fs, p)
    if kind == pafs.FileType.NotFound:
        raise LeaderboardError(f"{path}: no such file or folder")
    if kind == pafs.FileType.File:
        return [path], []
    if _kind(fs, f"{p}/{FINAL}") == pafs.FileType.File:
        return [join(path, FINAL)], []
    if _kind(fs, f"{p}/{PARTS}") == pafs.FileType.Directory:
        return [], [path]
    finals, running = [], []
    for info in sorted(fs.get_file_info(pafs.FileSelector(p)), key=lambda i: i.path):
        if info.type == pafs.FileType.Directory and not info.base_name.startswith("."):
            f, r = locate(join(path, info.base_name)) if _is_experiment(fs, info.path) else ([], [])
            finals += f
            running += r
    if not finals and not running:
        raise LeaderboardError(f"{path}: no leaderboard.parquet here or in its sub-folders")
    return finals, running


def _is_experiment(fs: pafs.FileSystem, p: str) -> bool:
    return _kind(fs, f"{p}/{FINAL}") == pafs.FileType.File or _kind(fs, f"{p}/{PARTS}") == pafs.FileType.Directory


def load(path: str, where: str | None = None) -> Any:
    """All leaderboard rows under ``path`` (pandas), filtered by ``where``; one clear error if unusable."""
    finals, running = locate(path)
    frames = []
    if finals:
        fs, _ = resolve(finals[0])
        try:
            ds = pads.dataset([resolve(f)[1] for f in finals], format="parquet", filesystem=fs)
            expr = parse_where(where, ds.schema) if where else None
            _check_columns(ds.schema.names, path)
            check_rows(ds.count_rows(), path, LeaderboardError)
            frames.append(ds.to_table(filter=expr).to_pandas())
        except (pa.ArrowException, OSError) as e:
            what = f"cannot read the leaderboard with --where {where!r}" if where else "not a readable leaderboard"
            raise LeaderboardError(f"{path}: {what} ({first_line(e)})") from None
    for root in running:
        df = best_per_class(read_parts(root), read_statuses(root), objectives_of(metadata(root)))
        if where and not df.empty:
            table = pa.Table.from_pandas(df, preserve_index=False)
            try:
                df = table.filter(parse_where(where, table.schema)).to_pandas()
            except (pa.ArrowException, TypeError) as e:
                raise LeaderboardError(f"{root}: cannot apply --where ({first_line(e)})") from None
        frames.append(df)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if df.empty and not where:
        raise LeaderboardError(f"{path}: the leaderboard has no rows")
    return df


def _check_columns(names: list[str], path: str) -> None:
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise LeaderboardError(f"{path}: not a gtnnas leaderboard (missing columns: {', '.join(missing)})")


def metadata(path: str) -> dict[str, Any]:
    """The gtnnas.* metadata of the first leaderboard under ``path`` (config, versions, teacher, ...)."""
    finals, running = locate(path)
    if finals:
        fs, p = resolve(finals[0])
        raw = pq.read_schema(p, filesystem=fs).metadata or {}
    else:
        fs, base = resolve(join(running[0], PARTS))
        parts = [i.path for i in fs.get_file_info(pafs.FileSelector(base)) if i.base_name.startswith("part-")]
        raw = (pq.read_schema(parts[0], filesystem=fs).metadata or {}) if parts else {}
    return read_metadata(raw)


_OPS: dict[type, str] = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def parse_where(text: str, schema: pa.Schema) -> pc.Expression:
    """``"val_acc > 0.9 and params < 1e5"`` -> a pyarrow expression; ValueError naming what is wrong."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise LeaderboardError(f"--where: cannot parse {text!r}") from None
    try:
        expr = _expr(tree, schema, text)
    except (TypeError, pa.ArrowException) as e:
        raise LeaderboardError(f"--where: {text!r}: {first_line(e)}") from None
    if not isinstance(expr, pc.Expression):
        raise LeaderboardError(f"--where: {text!r} does not test any column")
    return expr


def _expr(node: ast.AST, schema: pa.Schema, text: str) -> Any:
    if isinstance(node, ast.BoolOp):
        parts = [_expr(v, schema, text) for v in node.values]
        out = parts[0]
        for p in parts[1:]:
            out = (out & p) if isinstance(node.op, ast.And) else (out | p)
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
        a, b = _expr(node.left, schema, text), _expr(node.right, schema, text)
        return (a & b) if isinstance(node.op, ast.BitAnd) else (a | b)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.Invert)):
        return ~_expr(node.operand, schema, text)
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, (int, float))
    ):
        return -node.operand.value
    if isinstance(node, ast.Compare):
        left, out = _expr(node.left, schema, text), None
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _expr(right_node, schema, text)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, list):
                    raise LeaderboardError(f"--where: 'in' needs a list, e.g. arch in ['...'], in {text!r}")
                term = pc.is_in(left, pa.array(right))
                term = ~term if isinstance(op, ast.NotIn) else term
            elif type(op) in _OPS:
                term = {
                    "==": left == right,
                    "!=": left != right,
                    "<": left < right,
                    "<=": left <= right,
                    ">": left > right,
                    ">=": left >= right,
                }[_OPS[type(op)]]
            else:
                raise LeaderboardError(f"--where: unsupported comparison in {text!r}")
            out = term if out is None else out & term
            left = right
        return out
    if isinstance(node, ast.Name):
        if node.id not in schema.names:
            raise LeaderboardError(f"--where: unknown column {node.id!r} (columns: {', '.join(schema.names)})")
        return pc.field(node.id)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_expr(e, schema, text) for e in node.elts]
    raise LeaderboardError(f"--where: only columns, constants, comparisons and and/or/not are allowed: {text!r}")


def top(df: Any, k: int | None = None, sort: str = "val_acc", ascending: bool = False) -> Any:
    if sort not in df.columns:
        raise LeaderboardError(f"--sort: unknown column {sort!r} (columns: {', '.join(df.columns)})")
    out = df.sort_values(sort, ascending=ascending, na_position="last", kind="mergesort")
    return (out.head(k) if k else out).reset_index(drop=True)


def pareto_front(df: Any, cost: str = "params", value: str = "val_acc") -> Any:
    """Rows no other row dominates (lower ``cost``, higher ``value``; the same rule as ``pareto_rank``: equal
    rows both stay), cheapest first."""
    d = df.dropna(subset=[cost, value])
    ranks = non_dominated_ranks(d[[value, cost]].to_numpy(float), ["max", "min"])
    front = d[ranks == 0].sort_values([cost, value], ascending=[True, False], kind="mergesort")
    return front.reset_index(drop=True)


def front_objectives(text: str, columns: Any, flag: str = "--pareto") -> tuple[Objective, ...]:
    """``"val_acc:max,params:min"`` for a front over a table's columns: at least two objectives, each a
    column the table has (val_acc, test_acc, score, params, flops, latency_ms, rung1_score); one line if not."""
    out: list[Objective] = []
    for item in (s.strip() for s in text.split(",")):
        name, colon, mode = (s.strip() for s in item.partition(":"))
        if name not in RANKABLE:
            raise InputError(f"{flag}: unknown objective {name!r} in {text!r}: expected one of {', '.join(RANKABLE)}")
        if colon and mode not in MODES:
            raise InputError(f"{flag}: objective {item!r}: mode {mode!r} is not min or max")
        if name == "rung1_score":  # not a search objective (search.pareto), but a column a front can use
            if any(o.name == name for o in out):
                raise InputError(f"{flag}: objective {name!r} given twice in {text!r}")
            out.append(Objective(name, "min" if mode == "min" else "max"))
            continue
        try:
            (obj,) = parse_objectives(item)
        except InputError as e:
            raise InputError(f"{flag}: {e}") from None
        if any(o.name == obj.name for o in out):
            raise InputError(f"{flag}: objective {obj.name!r} given twice in {text!r}")
        out.append(obj)
    if len(out) < 2:
        raise InputError(f"{flag}: a front needs at least two objectives, e.g. val_acc:max,params:min (got {text!r})")
    missing = [o.name for o in out if o.name not in columns]
    if missing:
        raise InputError(f"{flag}: the table has no {', '.join(missing)} column (columns: {', '.join(columns)})")
    return tuple(out)


def front(df: Any, objectives: tuple[Objective, ...]) -> Any:
    """The rows with ``pareto_rank`` 0 under ``objectives`` (computed here, over the rows that have every
    objective's value), best first by the first objective; the column is set to these objectives' rank."""
    ranks = pareto_ranks(df, objectives)
    out = df.assign(pareto_rank=ranks)[ranks.eq(0).fillna(False).to_numpy(bool)]
    first = objectives[0]
    out = out.sort_values(first.name, ascending=first.mode == "min", kind="mergesort")
    return out.reset_index(drop=True)


def op_frequency(df: Any, k: int = 10) -> Any:
    """Share of each operation on each edge among the top ``k`` architectures by val_acc."""
    best = top(df.dropna(subset=["val_acc"]), k)
    counts = pd.DataFrame(0.0, index=list(EDGE_KEYS), columns=list(OPS))
    for a in best["arch"]:
        for key, op in parse(a).to_dict().items():
            counts.loc[key, op] += 1
    return counts / max(len(best), 1)


def history(path: str) -> Any:
    """Every reported result in time order, with the running best real and GTN score.

    ``trial`` counts the trials started up to that result and ``evaluation`` the results so far, so
    "best so far against trials / evaluations / wall time" credits each score to when it arrived.
    """
    finals, running = locate(path)
    roots = running + [f.rsplit("/", 1)[0] for f in finals]
    frames = []
    for root in roots:
        try:
            frames.append(read_parts(root))
        except LeaderboardError:
            continue
    if not frames:
        return pd.DataFrame()
    r = pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="mergesort").reset_index(drop=True)
    r = r[["experiment", "trial_id", "iteration", "timestamp", "val_acc", "rung1_score", "arch"]].copy()
    by = r.groupby("experiment")
    r["evaluation"] = by.cumcount() + 1
    first = ~r.duplicated(["experiment", "trial_id"])
    r["trial"] = first.astype(int).groupby(r["experiment"]).cumsum()
    r["wall_s"] = r["timestamp"] - by["timestamp"].transform("min")
    for col in ("val_acc", "rung1_score"):  # running best; results without that score carry it forward
        r[f"best_{col}"] = r.groupby("experiment")[col].cummax()
        r[f"best_{col}"] = r.groupby("experiment")[f"best_{col}"].ffill()
    return r
