"""Parquet leaderboards: the schema, the driver-side Tune callback that writes them, and the reader.

Plain pyarrow, no Ray (the analysis commands import this and start fast); the driver-side Tune
callback that writes the parts is :class:`cluster.callbacks.LeaderboardCallback`. Layout under ``<storage>/<experiment>/``: ``leaderboard/part-*.parquet`` (append-only, one row per
reported result, written under a temporary name and then renamed) and ``leaderboard.parquet`` (one
row per architecture with its best figures). Everything goes through pyarrow.fs, so S3 and GCS work
like a local disk. Rows are never updated in place: readers deduplicate on (trial_id, iteration),
keeping the newest, so retried, moved and restored trials never lose or double a row. Versions,
the full config and the live proxy calibration ride in the files' metadata.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from cluster.storage import join, resolve

SCHEMA = pa.schema([
    ("experiment", pa.string()), ("trial_id", pa.string()), ("iteration", pa.int64()), ("rung", pa.int64()),
    ("arch", pa.string()), ("arch_hash", pa.string()), ("score", pa.float64()), ("gtn_score", pa.float64()),
    ("val_acc", pa.float64()), ("test_acc", pa.float64()), ("params", pa.int64()), ("flops", pa.int64()),
    ("seconds", pa.float64()), ("node_ip", pa.string()), ("seed", pa.int64()), ("config_hash", pa.string()),
    ("curriculum", pa.string()), ("cached", pa.bool_()), ("proxy_rho", pa.float64()), ("status", pa.string()),
    ("timestamp", pa.float64()),
])
KEY = ["trial_id", "iteration"]
FINAL = "leaderboard.parquet"
PARTS = "leaderboard"


class LeaderboardError(ValueError):
    """A leaderboard that is missing, empty or not ours; one line."""


def row_from_result(experiment: str, trial_id: str, result: dict[str, Any], status: str) -> dict[str, Any]:
    row = {name: result.get(name) for name in SCHEMA.names}
    row.update(experiment=experiment, trial_id=trial_id, iteration=int(result.get("training_iteration", 0)),
               status=status, timestamp=time.time())
    return row


def _table(rows: list[dict[str, Any]], metadata: dict[str, Any]) -> pa.Table:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return table.replace_schema_metadata({f"gtnnas.{k}": json.dumps(v, default=str) for k, v in metadata.items()})


def write_part(root: str, rows: list[dict[str, Any]], metadata: dict[str, Any]) -> str:
    """One new part file under ``root/leaderboard/``; readers never see half of it."""
    fs, base = resolve(join(root, PARTS))
    fs.create_dir(base, recursive=True)
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
    tmp, final = f"{base}/.{name}.tmp", f"{base}/{name}"
    pq.write_table(_table(rows, metadata), tmp, filesystem=fs)
    fs.move(tmp, final)
    return final


def read_parts(root: str) -> "Any":
    """All part files of one experiment as a deduplicated pandas DataFrame (newest row wins)."""
    fs, base = resolve(join(root, PARTS))
    try:
        ds = pads.dataset(base, format="parquet", filesystem=fs, schema=SCHEMA,
                          exclude_invalid_files=False, ignore_prefixes=[".", "_"])
        df = ds.to_table().to_pandas()
    except (FileNotFoundError, pa.ArrowInvalid, OSError) as e:
        raise LeaderboardError(f"{root}: no readable leaderboard part files ({str(e).splitlines()[0][:160]})") from None
    return dedupe(df)


def dedupe(df: "Any") -> "Any":
    return df.sort_values("timestamp").drop_duplicates(KEY, keep="last").sort_values(KEY).reset_index(drop=True)


def best_per_arch(df: "Any") -> "Any":
    """One row per architecture: best GTN score and real accuracy, test accuracy of the best real run."""
    import pandas as pd

    if df.empty:
        return df
    ranked = df.assign(_v=df["val_acc"].fillna(-1.0), _g=df["gtn_score"].fillna(-1.0))
    best = ranked.sort_values(["_v", "_g", "iteration"], ascending=False).drop_duplicates("arch")
    agg = df.groupby("arch").agg(gtn_score=("gtn_score", "max"), trials=("trial_id", "nunique"),
                                 max_rung=("rung", "max"))
    cols = ["experiment", "arch", "arch_hash", "val_acc", "test_acc", "params", "flops", "seconds", "seed",
            "config_hash", "curriculum", "trial_id"]
    out = best[cols].merge(agg, left_on="arch", right_index=True)
    out = out.sort_values(["val_acc", "gtn_score"], ascending=False, na_position="last")
    return pd.DataFrame(out.reset_index(drop=True))


def write_final(root: str, metadata: dict[str, Any]) -> "Any":
    """Rewrite ``root/leaderboard.parquet`` from the part files; returns the table as pandas."""
    df = best_per_arch(read_parts(root))
    fs, path = resolve(join(root, FINAL))
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{f"gtnnas.{k}".encode(): json.dumps(v, default=str).encode()
                                              for k, v in metadata.items()}})
    pq.write_table(table, path + ".tmp", filesystem=fs)
    fs.move(path + ".tmp", path)
    return df


def reconcile(root: str, experiment: str, results: list[tuple[str, list[dict[str, Any]], str]],
              metadata: dict[str, Any]) -> int:
    """Write a part with every (trial, iteration) that Tune recorded but no part file holds.

    After a driver crash the callback's unflushed rows are gone, but Tune keeps every reported
    result with the trial; this makes the leaderboard exact again. Returns the rows added.
    """
    try:
        have = set(map(tuple, read_parts(root)[KEY].itertuples(index=False)))
    except LeaderboardError:
        have = set()
    rows = []
    for trial_id, history, status in results:
        for i, r in enumerate(history):
            if (trial_id, int(r.get("training_iteration", 0))) not in have:
                rows.append(row_from_result(experiment, trial_id, r, status if i == len(history) - 1 else "RUNNING"))
    if rows:
        write_part(root, rows, metadata)
    return len(rows)
