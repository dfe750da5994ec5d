"""The latency table is shared by nodes (issue #28): cells measured on one node are not measured again when another
node asks. Own pytest process (`pytest -m multinode tests/test_latency_nodes.py`): a head with no CPUs and two
1-CPU worker nodes labelled node_a and node_b (ray.cluster_utils.Cluster, all on 127.0.0.1); the table lives in a
local folder standing in for s3://."""

from __future__ import annotations

import dataclasses

import pyarrow.parquet as pq
import pytest
import ray
from ray.cluster_utils import Cluster

from cluster.latency import latency_ms
from search.config import load_config
from search.shapes import InputSpec
from search.space import parse

pytestmark = pytest.mark.multinode
LOOPBACK = {"node_ip_address": "127.0.0.1"}
CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|skip_connect~2|",
]
MNIST = InputSpec((1, 28, 28), 10)


@pytest.fixture(scope="module")
def cluster():
    assert not ray.is_initialized()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **LOOPBACK})
    nodes = {name: c.add_node(num_cpus=1, resources={name: 1}, **LOOPBACK) for name in ("node_a", "node_b")}
    ray.init(address=c.address)
    c.wait_for_nodes()
    yield c, nodes
    ray.shutdown()
    c.shutdown()


@ray.remote(num_cpus=0, resources={"node_b": 0.5})
def ask_on_node_b(cells: list[str], cfg_dict: dict) -> tuple[str, list[float]]:
    """A search's driver on node B: its own process, its own cache; the measuring task is placed on node B too."""
    from search.config import config_from_dict  # noqa: PLC0415

    cfg = config_from_dict(cfg_dict)
    values = latency_ms([parse(c) for c in cells], cfg, MNIST, options={"resources": {"node_b": 0.5}})
    return ray.get_runtime_context().get_node_id(), values


def test_a_second_node_reuses_the_first_nodes_measurements(cluster, tmp_path):
    _, nodes = cluster
    cfg = load_config(None, [f"storage={tmp_path}"])  # the default network: C=8, N=1
    cfg = dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, latency="device=cpu,threads=1"))
    first = latency_ms([parse(c) for c in CELLS], cfg, MNIST, options={"resources": {"node_a": 0.5}})
    parts = sorted((tmp_path / "latency").glob("part-*.parquet"))
    assert len(parts) == 1 and all(v > 0 for v in first)
    rows = pq.read_table(parts[0]).to_pylist()
    assert len(rows) == len(CELLS)
    assert {r["node"].split("(")[1].rstrip(")") for r in rows} == {nodes["node_a"].node_id[:8]}  # measured on A

    where, again = ray.get(ask_on_node_b.remote(CELLS, cfg.to_dict()), timeout=120)
    assert where == nodes["node_b"].node_id
    assert again == first  # the same values: read from the table, not measured again
    assert sorted((tmp_path / "latency").glob("part-*.parquet")) == parts  # nothing measured on B
