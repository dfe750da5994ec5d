"""Parquet leaderboards: the schema, the part files, trial statuses and the final table.

Plain pyarrow and pandas (no torch, no Ray), so every command that reads results starts fast. Layout
under ``<storage>/<experiment>/``:

- ``leaderboard/part-*.parquet``: one row per reported result, keyed by (trial_id, iteration),
  append-only. A run without faults writes each key once; only a retried or restored trial may
  report an iteration again, and :func:`read_parts` keeps the newest.
- ``trials/part-*.parquet``: one row per trial status (TERMINATED, ERROR, or LOST for a trial a
  crashed driver started that the resumed experiment does not know; INFEASIBLE, with the cell and the
  reason, for a cell refused before it became a trial); the newest per trial wins.
- ``leaderboard.parquet``: the final table, one row per equivalence class (``arch_hash``), LOST
  trials left out, with each row's ``pareto_rank`` under the experiment's objectives.

Everything goes through pyarrow.fs (:mod:`results.storage`), so S3 and GCS work like a local disk;
versions, the config and the live rho ride in each file's metadata.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from results.phases import COLUMNS as PHASE_COLUMNS
from results.storage import check_rows, join, part_name, resolve, write_parquet
from search.components import SCORE_SECONDS, columns, integer_columns
from search.errors import LeaderboardError, first_line
from search.pareto import Objective, non_dominated_ranks, parse_objectives
from search.stats import rho_interval, spearman

COMPONENT_COLUMNS = (*columns(), SCORE_SECONDS)  # every score component's column (search.components), in order

SCHEMA = pa.schema(
    [
        # which result: experiment, trial, report number and rung
        ("experiment", pa.string()),
        ("trial_id", pa.string()),
        ("iteration", pa.int64()),
        ("rung", pa.int64()),
        # the cell and its equivalence class
        ("arch", pa.string()),
        ("arch_hash", pa.string()),
        # what the schedulers compare (rung-1 score at rung 1, real validation accuracy after) and its parts
        ("score", pa.float64()),
        ("rung1_score", pa.float64()),
        *((c, pa.int64() if c in integer_columns() else pa.float64()) for c in COMPONENT_COLUMNS),
        # real rungs (or NAS-Bench-201 lookups)
        ("val_acc", pa.float64()),
        ("val_loss", pa.float64()),
        ("test_acc", pa.float64()),
        ("seconds", pa.float64()),
        ("sim_epochs", pa.float64()),
        # the cell's latency on search.latency's device (when objectives or constraints name it)
        ("latency_ms", pa.float64()),
        # where and how it ran
        ("node_ip", pa.string()),
        ("node_id", pa.string()),
        ("device", pa.string()),
        ("gpus", pa.string()),
        ("seed", pa.int64()),
        ("config_hash", pa.string()),
        ("curriculum", pa.string()),
        ("cached", pa.bool_()),
        ("proxy_rho", pa.float64()),
        ("started", pa.float64()),
        ("timestamp", pa.float64()),
        # the trial's core-seconds so far by phase (results.phases)
        *((c, pa.float64()) for c in PHASE_COLUMNS),
    ]
)
STATUS_SCHEMA = pa.schema(
    [
        ("experiment", pa.string()),
        ("trial_id", pa.string()),
        ("status", pa.string()),  # TERMINATED, ERROR, LOST, or INFEASIBLE (a cell never scored: ``reason``)
        ("timestamp", pa.float64()),
        ("arch", pa.string()),
        ("reason", pa.string()),
    ]
)
KEY = ["trial_id", "iteration"]
FINAL = "leaderboard.parquet"
PARTS = "leaderboard"
STATUSES = "trials"
DONE = ("TERMINATED", "ERROR", "LOST")
INFEASIBLE = "INFEASIBLE"
DEFAULT_OBJECTIVES = "val_acc:max"  # search.objectives' default: a single-objective search


def row_from_result(experiment: str, trial_id: str, result: dict[str, Any]) -> dict[str, Any]:
    row = {name: result.get(name) for name in SCHEMA.names}
    row.update(
        experiment=experiment,
        trial_id=trial_id,
        iteration=int(result.get("training_iteration", 0)),
        timestamp=time.time(),
    )
    return row


def status_row(
    experiment: str, trial_id: str, status: str, arch: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    return {
        "experiment": experiment,
        "trial_id": trial_id,
        "status": status,
        "timestamp": time.time(),
        "arch": arch,
        "reason": reason,
    }


def write_part(root: str, rows: list[dict[str, Any]], metadata: dict[str, Any]) -> str:
    """One new result part under ``root/leaderboard/``; readers never see half of it."""
    return write_parquet(pa.Table.from_pylist(rows, schema=SCHEMA), join(root, PARTS, part_name()), metadata)


def write_statuses(root: str, rows: list[dict[str, Any]]) -> str:
    """One new status part under ``root/trials/``."""
    return write_parquet(pa.Table.from_pylist(rows, schema=STATUS_SCHEMA), join(root, STATUSES, part_name()))


def _read(folder: str, schema: pa.Schema) -> Any:
    fs, base = resolve(folder)
    ds = pads.dataset(
        base, format="parquet", filesystem=fs, schema=schema, exclude_invalid_files=False, ignore_prefixes=[".", "_"]
    )
    check_rows(ds.count_rows(), folder, LeaderboardError)
    return ds.to_table().to_pandas()


def read_parts(root: str, *, lost: bool = False) -> Any:
    """All result rows of one experiment (pandas), one per (trial_id, iteration), newest winning.

    Rows of LOST trials are left out unless ``lost``.
    """
    try:
        df = dedupe(_read(join(root, PARTS), SCHEMA))
    except (FileNotFoundError, pa.ArrowInvalid, OSError) as e:
        raise LeaderboardError(f"{root}: no readable leaderboard part files ({first_line(e)})") from None
    if lost:
        return df
    gone = {t for t, s in read_statuses(root).items() if s == "LOST"}
    return df[~df["trial_id"].isin(gone)].reset_index(drop=True) if gone else df


def read_statuses(root: str) -> dict[str, str]:
    """trial_id -> its newest status (TERMINATED, ERROR, LOST); trials without one are still running."""
    try:
        df = _read(join(root, STATUSES), STATUS_SCHEMA)
    except (FileNotFoundError, pa.ArrowInvalid, OSError):
        return {}
    df = df.sort_values("timestamp", kind="mergesort").drop_duplicates("trial_id", keep="last")
    return dict(zip(df["trial_id"], df["status"], strict=True))


def dedupe(df: Any) -> Any:
    return (
        df.sort_values("timestamp", kind="mergesort")
        .drop_duplicates(KEY, keep="last")
        .sort_values(KEY)
        .reset_index(drop=True)
    )


def best_per_class(
    df: Any, statuses: dict[str, str] | None = None, objectives: str | Sequence[Objective] = DEFAULT_OBJECTIVES
) -> Any:
    """One row per equivalence class (``arch_hash``): cells that compute the same function count once.

    The row is the class's best result (real validation accuracy first, then GTN score); ``arch`` is
    the cell string of that result, ``variants`` every cell string of the class that was evaluated,
    ``trials`` how many trials evaluated the class and ``status`` the best trial's status.
    ``pareto_rank`` is the row's non-dominated rank under ``objectives`` (0 on the front; null where
    the row lacks one of them, e.g. a cell with no real accuracy yet).
    """
    if df.empty:
        return df
    key = df["arch_hash"].fillna(df["arch"])
    ranked = df.assign(_k=key, _v=df["val_acc"].fillna(-1.0), _g=df["gtn_score"].fillna(-1.0))
    best = ranked.sort_values(["_v", "_g", "iteration"], ascending=False, kind="mergesort").drop_duplicates("_k")
    agg = ranked.groupby("_k").agg(
        rung1_score=("rung1_score", "max"),
        gtn_score=("gtn_score", "max"),
        trials=("trial_id", "nunique"),
        max_rung=("rung", "max"),
        variants=("arch", lambda a: sorted(set(a))),
    )
    kept = ["_k", "experiment", "arch", "arch_hash", "val_acc", "test_acc"]
    kept += [c for c in COMPONENT_COLUMNS if c not in agg.columns]  # the class's components (gtn_score: its best)
    kept += ["latency_ms", "seconds", "sim_epochs", "seed", "config_hash", "curriculum", "trial_id"]
    out = best.reindex(columns=kept).merge(agg, left_on="_k", right_index=True).drop(columns="_k")
    out["status"] = [(statuses or {}).get(t, "RUNNING") for t in out["trial_id"]]
    out = out.sort_values(["val_acc", "gtn_score"], ascending=False, na_position="last", kind="mergesort")
    out = pd.DataFrame(out.reset_index(drop=True))
    out["pareto_rank"] = pareto_ranks(out, objectives)
    return out


def pareto_ranks(df: Any, objectives: str | Sequence[Objective]) -> Any:
    """Each row's non-dominated rank under ``objectives`` (0 on the front) as a nullable integer column:
    ranked among the rows that have every objective's value; a row missing one (or a table without one of
    the columns) gets null. One objective: its distinct values in order, best first (ties share a rank)."""
    objs = parse_objectives(objectives) if isinstance(objectives, str) else tuple(objectives)
    names = [o.name for o in objs]
    out = pd.Series(pd.NA, index=df.index, dtype="Int64")
    if not set(names) <= set(df.columns) or df.empty:
        return out
    values = df[names].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    complete = np.isfinite(values).all(axis=1)
    if complete.any():
        ranks = non_dominated_ranks(values[complete], [o.mode for o in objs])
        out[complete] = ranks
    return out


def objectives_of(metadata: dict[str, Any]) -> str:
    """The experiment's ``search.objectives`` from a table's metadata (the config), or the default."""
    config = metadata.get("config") if isinstance(metadata, dict) else None
    search = config.get("search") if isinstance(config, dict) else None
    found = search.get("objectives") if isinstance(search, dict) else None
    return found if isinstance(found, str) and found.strip() else DEFAULT_OBJECTIVES


def write_final(root: str, metadata: dict[str, Any]) -> Any:
    """Rewrite ``root/leaderboard.parquet`` from the parts (LOST trials left out); returns it as pandas.

    ``pareto_rank`` is for the objectives of the config in ``metadata`` (``search.objectives``)."""
    df = best_per_class(read_parts(root), read_statuses(root), objectives_of(metadata))
    write_parquet(pa.Table.from_pandas(df, preserve_index=False), join(root, FINAL), metadata)
    return df


def reconcile(
    root: str, experiment: str, results: Iterable[tuple[str, list[dict[str, Any]], str]], metadata: dict[str, Any]
) -> tuple[int, int]:
    """Make the leaderboard agree with what Tune knows: returns (rows added, trials marked LOST).

    ``results`` holds (trial_id, reported results, final status) for every trial of the experiment.
    Rows Tune recorded that no part holds (a crash lost the callback's buffer) are written; every
    known trial gets its final status; a trial in the parts that Tune does not know (started by a
    driver that died before saving the experiment) is marked LOST.
    """
    results = list(results)
    try:
        parts = read_parts(root, lost=True)
        have = set(map(tuple, parts[KEY].itertuples(index=False)))
        seen = set(parts["trial_id"])
    except LeaderboardError:
        have, seen = set(), set()
    rows = [
        row_from_result(experiment, tid, r)
        for tid, history, _ in results
        for r in history
        if (tid, int(r.get("training_iteration", 0))) not in have
    ]
    known = {tid for tid, _, _ in results}
    old = read_statuses(root)
    statuses = [status_row(experiment, tid, s) for tid, _, s in results if s in DONE and old.get(tid) != s]
    lost = sorted(t for t in seen - known if old.get(t) != "LOST")
    statuses += [status_row(experiment, t, "LOST") for t in lost]
    if rows:
        write_part(root, rows, metadata)
    if statuses:
        write_statuses(root, statuses)
    return len(rows), len(lost)


def calibration_pairs(df: Any, score: str = "rung1_score") -> dict[str, tuple[float, float]]:
    """arch_hash -> (rung-1 score, newest real validation accuracy): what the live rho is computed on (the
    metadata keeps the historical key ``calibration``; nothing is fitted on these pairs)."""
    real = df.dropna(subset=["val_acc", score]).sort_values("timestamp", kind="mergesort")
    real = real.drop_duplicates("arch_hash", keep="last")
    return {h: (float(g), float(v)) for h, g, v in zip(real["arch_hash"], real[score], real["val_acc"], strict=True)}


def live_calibration(pairs: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """How well the rung-1 score ranks the cells that reached real data: Spearman rho with a 95% interval
    (from 10 cells; a figure over a few cells means little, and the interval says how little)."""
    out: dict[str, Any] = {"calibration_n": len(pairs)}
    if len(pairs) >= 10:
        g, v = zip(*pairs.values(), strict=True)
        rho = spearman(list(g), list(v))
        out["proxy_rho"] = rho
        lo_hi = rho_interval(rho, len(pairs))
        if lo_hi is not None:
            out["proxy_rho_lo"], out["proxy_rho_hi"] = lo_hi
    return out
