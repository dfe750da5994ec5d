"""Truth tables: cells trained fully on real data, the ground truth proxies are judged against.

Reading and writing the table and its resumable parts, plus the table's own noise statistics; no
torch, no Ray (``gtnnas report --truth`` and the proxy benchmark read tables through here). The
builder that trains the cells is :mod:`cluster.truth`.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from results.storage import check_rows, exists, join, part_name, read_metadata, resolve, write_parquet
from search.errors import InputError, TruthError, first_line
from search.space import all_archs
from search.stats import spearman

SCHEMA = pa.schema(
    [
        ("arch", pa.string()),
        ("arch_hash", pa.string()),
        ("seed", pa.int64()),
        ("val_acc", pa.float64()),
        ("test_acc", pa.float64()),
        ("val_loss", pa.float64()),
        ("train_loss", pa.float64()),
        ("budget_epochs", pa.float64()),
        ("steps", pa.int64()),
        ("params", pa.int64()),
        ("flops", pa.int64()),
        ("seconds", pa.float64()),
        ("dataset", pa.string()),
        ("config_hash", pa.string()),
        ("versions", pa.string()),
        ("timestamp", pa.float64()),
    ]
)
REQUIRED = ("arch", "seed", "val_acc", "test_acc")
TUNING = 100  # cells 1-100 of the plan: every choice is made there; the rest is the evaluation split


def planned_cells(n: int, sample_seed: int = 0) -> list[str]:
    """The first ``n`` cells of the truth plan: uniform without replacement (seeded), so prefixes agree."""
    everything = all_archs()
    if not 1 <= n <= len(everything):
        raise InputError(f"--archs must be in 1..{len(everything)}, got {n}")
    return [str(everything[i]) for i in np.random.default_rng(sample_seed).permutation(len(everything))[:n]]


def split_of(archs: list[str], sample_seed: int = 0, tuning: int = TUNING) -> dict[str, str]:
    """cell -> ``"tuning"`` (plan positions 1..``tuning``) or ``"evaluation"`` (later positions)."""
    first = set(planned_cells(tuning, sample_seed))
    return {a: ("tuning" if a in first else "evaluation") for a in archs}


def parts_dir(out: str) -> str:
    return out + ".parts"


def read_rows(out: str) -> list[dict[str, Any]]:
    """All finished rows: the table ``out`` itself (a fresh clone has no parts) and ``<out>.parts/``.

    Deduplicated on (arch, seed), a part winning over the table.
    """
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    if exists(out):
        fs, path = resolve(out)
        for r in pq.read_table(path, filesystem=fs).to_pylist():
            rows[(r["arch"], r["seed"])] = r
    if exists(parts_dir(out)):
        fs, base = resolve(parts_dir(out))
        for info in fs.get_file_info(pafs.FileSelector(base)):
            if info.base_name.startswith("part-") and info.base_name.endswith(".parquet"):
                for r in pq.read_table(info.path, filesystem=fs).to_pylist():
                    rows[(r["arch"], r["seed"])] = r
    return list(rows.values())


def write_row(out: str, row: dict[str, Any]) -> None:
    write_parquet(pa.Table.from_pylist([row], schema=SCHEMA), join(parts_dir(out), part_name()))


def write_truth(out: str, rows: list[dict[str, Any]], metadata: dict[str, Any]) -> None:
    rows = sorted(rows, key=lambda r: (r["arch"], r["seed"]))
    write_parquet(pa.Table.from_pylist(rows, schema=SCHEMA), out, metadata)


def load_truth(path: str) -> tuple[Any, dict[str, Any]]:
    """(rows as pandas, the writer's metadata) of a truth Parquet, validated at the door."""
    if not exists(path):
        raise TruthError(f"{path}: no such truth table")
    fs, p = resolve(path)
    try:
        with fs.open_input_file(p) as f:  # the footer only: columns and rows are checked before the data is read
            meta = pq.ParquetFile(f).metadata
        missing = [c for c in REQUIRED if c not in meta.schema.names]
        if missing:
            raise TruthError(f"{path}: not a truth table (missing columns: {', '.join(missing)})")
        check_rows(meta.num_rows, path, TruthError)
        table = pq.read_table(p, filesystem=fs)
    except (OSError, pa.ArrowException) as e:  # pyarrow raises several types for a bad file
        raise TruthError(f"{path}: not a readable Parquet file ({first_line(e, 120)})") from None
    if table.num_rows == 0:
        raise TruthError(f"{path}: the truth table is empty")
    return table.to_pandas(), read_metadata(table.schema.metadata)


def truth_targets(df: Any, seeds: list[int] | None = None) -> tuple[list[str], np.ndarray, float]:
    """(cell strings, mean val_acc over ``seeds`` (default all), seed-to-seed rho ceiling)."""
    if seeds is not None:
        df = df[df["seed"].isin(seeds)]
    mean = df.groupby("arch", sort=True)["val_acc"].mean()
    return list(mean.index), mean.to_numpy(float), seed_rho(df.to_dict("records"))


def seed_rho(rows: list[dict[str, Any]]) -> float:
    """The truth's own ceiling: mean Spearman rho of val_acc between every pair of seeds."""
    by_seed: dict[int, dict[str, float]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[r["arch"]] = r["val_acc"]
    rhos = []
    for a, b in combinations(sorted(by_seed), 2):
        common = sorted(set(by_seed[a]) & set(by_seed[b]))
        rhos.append(spearman([by_seed[a][k] for k in common], [by_seed[b][k] for k in common]))
    rhos = [r for r in rhos if r == r]
    return float(np.mean(rhos)) if rhos else float("nan")


def replicate_rho(rows: list[dict[str, Any]]) -> tuple[float, int]:
    """(rho, k): Spearman rho between the mean val_acc over k seeds and over k other seeds.

    With 2k seeds per cell this measures directly how reliably a k-seed mean ranks cells (the truth
    value when one run is too noisy), averaged over every split of the seeds into two halves; cells
    missing a seed are left out. NaN and k = 0 with fewer than 4 seeds.
    """
    by_arch: dict[str, dict[int, float]] = {}
    for r in rows:
        by_arch.setdefault(r["arch"], {})[r["seed"]] = r["val_acc"]
    seeds = sorted({r["seed"] for r in rows})
    k = len(seeds) // 2
    if k < 2:
        return float("nan"), 0
    seeds = seeds[: 2 * k]
    full = sorted(a for a, v in by_arch.items() if all(s in v for s in seeds))
    rhos = []
    for half in combinations(seeds[1:], k - 1):  # each split once: the first half holds seeds[0]
        one = (seeds[0], *half)
        other = [s for s in seeds if s not in one]
        rhos.append(
            spearman(
                [float(np.mean([by_arch[a][s] for s in one])) for a in full],
                [float(np.mean([by_arch[a][s] for s in other])) for a in full],
            )
        )
    rhos = [r for r in rhos if r == r]
    return (float(np.mean(rhos)) if rhos else float("nan")), k
