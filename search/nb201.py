"""NAS-Bench-201 as a benchmark: the vendored 12-epoch table, and data-free proxies on its own network.

Benchmark mode (``search.evaluator: nb201``) runs the real search machinery but replaces each real-data
rung by a lookup: ``cifar10_val`` (what searchers and schedulers see) and ``cifar10_test`` (what is
reported), charged a simulated cost of 12 epochs. Rung 1 is a data-free proxy on NB201's own network
(C=16, N=5, 3x32x32), read from ``tables/nb201_proxies.parquet`` when it holds the cell and computed
otherwise. Accuracies here are fractions in [0, 1], like the rest of the project (the table stores %).
Imports no torch unless a proxy has to be computed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .config import NetConfig
from .scoring import COMPONENTS, Scorer, as_columns
from .space import Arch, parse

TABLES = Path(__file__).resolve().parent / "tables"
TABLE = TABLES / "nb201_12epoch.parquet"
PROXY_TABLE = TABLES / "nb201_proxies.parquet"
EPOCHS = 12  # the schedule behind the table: what one lookup stands for
CHANNELS, CELLS, SHAPE, CLASSES = 16, 5, (3, 32, 32), 10
N_CELLS = 15_625


@lru_cache(maxsize=1)
def table() -> dict[str, tuple[float, float]]:
    """cell string -> (cifar10_val, cifar10_test) as fractions."""
    t = pq.read_table(TABLE, columns=["arch", "cifar10_val", "cifar10_test"]).to_pydict()
    return {a: (v / 100.0, s / 100.0) for a, v, s in zip(t["arch"], t["cifar10_val"], t["cifar10_test"], strict=True)}


def lookup(arch: Arch | str) -> dict[str, float]:
    """The table's 12-epoch ``val_acc`` and ``test_acc`` of one cell (its own string, not its class)."""
    val, test = table()[str(arch)]
    return {"val_acc": val, "test_acc": test}


@lru_cache(maxsize=1)
def _sorted_test() -> np.ndarray:
    return np.sort(np.fromiter((t for _, t in table().values()), float))


def best_test() -> float:
    return float(_sorted_test()[-1])


def percentile(test_acc: float) -> float:
    """Share of all 15,625 cells (in %) whose test accuracy is at or below ``test_acc``; 100 is the best."""
    return 100.0 * float(np.searchsorted(_sorted_test(), test_acc, side="right")) / N_CELLS


@lru_cache(maxsize=1)
def proxy_table() -> dict[str, dict[str, float]]:
    """cell string -> {params, flops, synflow}, or {} when the table has not been built."""
    if not PROXY_TABLE.is_file():
        return {}
    t = pq.read_table(PROXY_TABLE).to_pylist()
    return {r["arch"]: {k: float(v) for k, v in r.items() if k != "arch"} for r in t}


def proxy(arch: Arch | str, name: str) -> float:
    """A data-free proxy of ``arch`` on NB201's network: from the vendored table, else computed now."""
    row = proxy_table().get(str(arch))
    if row is not None and name in row:
        return row[name]
    return compute_proxy(arch if isinstance(arch, Arch) else _parse(arch), name)


def components(scorer: Scorer, arch: Arch) -> dict[str, float]:
    """Benchmark mode's rung-1 components of ``arch``: data-free proxies of NB201's own network."""
    return as_columns({COMPONENTS[part]: proxy(arch, part) for part in scorer.parts})


def compute_proxy(arch: Arch, name: str) -> float:
    from .proxies import ProxyContext  # noqa: PLC0415  (lazy: torch only when a proxy is computed)
    from .proxy_specs import make_proxy  # noqa: PLC0415  (lazy: torch only when a proxy is computed)

    ctx = ProxyContext(net=NetConfig(channels=CHANNELS, cells=CELLS), shape=SHAPE, num_classes=CLASSES)
    scores, _ = make_proxy(name).score_many([arch], ctx)
    return scores[0]


def _parse(text: str) -> Arch:
    return parse(text)
