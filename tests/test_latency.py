"""Latency per cell (issue #28 item 1): the measurement, its key, the table under the storage, and the Ray task
that measures what the table lacks. The second node's reuse is in tests/test_latency_nodes.py (-m multinode)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from cluster import latency as cl
from search.config import ExperimentConfig, NetConfig, load_config
from search.errors import InputError
from search.latency import (
    DeviceIdentity,
    LatencyKey,
    LatencySpec,
    key_fields,
    latency_key,
    measure,
    representative,
)
from search.shapes import InputSpec, NetSpec
from search.space import parse

CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SKIP = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
# Node 1 feeds nothing, so its conv is dead: DEAD is equivalent to LIVE (one class, measured once).
LIVE = "|none~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
MNIST = InputSpec((1, 28, 28), 10)
ME = DeviceIdentity("x86_64 test cpu", "2.0")


def _cfg(storage: Path, latency: str = "device=cpu,batch=1,threads=1") -> ExperimentConfig:
    cfg = load_config(None, [f"storage={storage}", "net.channels=4"])
    return dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, latency=latency))


def _parts(storage: Path) -> list[Path]:
    return sorted((storage / "latency").glob("part-*.parquet"))


def test_measure_gives_a_median_and_spread_and_restores_the_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        m = measure(parse(CONV), NetSpec(8, 1), MNIST, LatencySpec(threads=1), min_run_time=0.05, repeats=20)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert set(m) == {"latency_ms", "latency_iqr_ms", "runs"}
    assert m["latency_ms"] > 0 and m["latency_iqr_ms"] >= 0 and m["runs"] >= 20


def test_a_wider_network_and_a_conv_cell_are_slower():
    spec = LatencySpec(threads=1)

    def ms(cell: str, c: int) -> float:
        return float(measure(parse(cell), NetSpec(c, 1), MNIST, spec, min_run_time=0.1)["latency_ms"])

    # About 1 ms against 8 ms, and 1.3 ms against 8 ms, on one EPYC core: a wide margin for a busy machine.
    assert ms(CONV, 32) > 2 * ms(CONV, 4)
    assert ms(CONV, 32) > 2 * ms(SKIP, 32)


def test_the_key_names_class_shape_input_device_torch_threads_and_batch():
    a, spec = parse(LIVE), LatencySpec()
    k = latency_key(a, NetConfig(), MNIST, spec, ME)
    assert k == latency_key(parse(DEAD), NetConfig(), MNIST, spec, ME)  # one equivalence class
    assert representative(parse(DEAD)) == representative(a)
    for other in (
        latency_key(a, NetConfig(), MNIST, LatencySpec(threads=2), ME),
        latency_key(a, NetConfig(), MNIST, LatencySpec(batch=8), ME),
        latency_key(a, NetConfig(channels=16), MNIST, spec, ME),
        latency_key(a, NetConfig(norm="gtn"), MNIST, spec, ME),
        latency_key(a, NetConfig(), InputSpec((3, 32, 32), 10), spec, ME),
        latency_key(a, NetConfig(), MNIST, spec, DeviceIdentity("x86_64 other cpu", "2.0")),
        latency_key(a, NetConfig(), MNIST, spec, DeviceIdentity("x86_64 test cpu", "2.1")),
    ):
        assert other != k
    here = key_fields(a, NetConfig(), MNIST, spec)  # this machine's identity
    assert here["device_name"] and here["torch"] == torch.__version__


def _row(key: LatencyKey, ms: float, when: float) -> dict:
    return {**key._asdict(), "arch": LIVE, "latency_ms": ms, "latency_iqr_ms": 0.1, "runs": 10, "measured": when}


def test_the_table_keeps_the_newest_row_and_sees_other_writers_parts(tmp_path):
    k1 = latency_key(parse(LIVE), NetConfig(), MNIST, LatencySpec(), ME)
    k2 = latency_key(parse(CONV), NetConfig(), MNIST, LatencySpec(), ME)
    mine, theirs = cl.LatencyTable(str(tmp_path)), cl.LatencyTable(str(tmp_path))
    assert mine.lookup([k1]) == {}  # no folder yet
    mine.add([_row(k1, 2.0, 100.0)])
    mine.add([_row(k1, 1.5, 200.0)])
    mine.add([_row(k1, 9.0, 50.0)])  # an older measurement written later loses
    assert mine.lookup([k1, k2]) == {k1: 1.5}
    assert theirs.lookup([k1]) == {k1: 1.5}
    theirs.add([_row(k2, 3.0, 300.0)])
    assert mine.lookup([k1, k2]) == {k1: 1.5, k2: 3.0}  # a miss reads the parts written since
    assert len(_parts(tmp_path)) == 4


def test_latency_is_measured_once_per_class_and_key(ray_session, tmp_path):
    cells = [parse(LIVE), parse(CONV), parse(DEAD)]
    cfg = _cfg(tmp_path)
    first = cl.latency_ms(cells, cfg, MNIST)
    assert len(_parts(tmp_path)) == 1  # one task, one part file
    rows = cl.table(str(tmp_path)).rows
    assert len(rows) == 2 and first[0] == first[2] and all(v > 0 for v in first)
    assert cl.latency_ms(cells, cfg, MNIST) == first  # looked up here: no task, nothing measured
    cl._TABLES.clear()
    cl._IDENTITIES.clear()  # a new search's process: the task looks the table up and measures nothing
    assert cl.latency_ms(list(reversed(cells)), cfg, MNIST) == list(reversed(first))
    assert len(_parts(tmp_path)) == 1
    two = cl.latency_ms(cells[:1], _cfg(tmp_path, "device=cpu,threads=2"), MNIST)  # another key
    assert len(_parts(tmp_path)) == 2 and two[0] > 0
    table = cl.LatencyTable(str(tmp_path))
    table.refresh()
    assert {k.threads for k in table.rows} == {1, 2}


def test_a_device_no_node_has_is_one_line(ray_session, tmp_path):
    if ray_session.cluster_resources().get("GPU", 0) < 1:  # a Ray with a GPU can only be asked for the threads
        with pytest.raises(InputError, match="search.latency: device cuda, but no node of this Ray cluster has a GPU$"):
            cl.latency_ms([parse(CONV)], _cfg(tmp_path, "device=cuda"), MNIST)
    with pytest.raises(InputError, match="threads=8 needs a node with 8 CPU") as e:
        cl.latency_ms([parse(CONV)], _cfg(tmp_path, "device=cpu,threads=8"), MNIST)
    assert "\n" not in str(e.value) and not _parts(tmp_path)


def _exported(root: Path, cfg: ExperimentConfig) -> dict:
    """``gtnnas retrain``'s export of LIVE's network (untrained weights) under ``root``; best_model.json."""
    from cluster.retrain import deployed, export  # noqa: PLC0415  (lazy: Ray after conftest's environment)
    from search.nets import net_from  # noqa: PLC0415

    weights = root / "retrain" / "w-s0.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net_from(deployed(parse(LIVE)), cfg.net, MNIST).state_dict(), weights)
    (root / "retrain" / "w-s0.confusion.json").write_text("{}")
    best = {
        "arch": LIVE,
        "seed": 0,
        "input_shape": [1, 1, 28, 28],
        "class_names": [str(i) for i in range(10)],
        "weights": str(weights),
        "data_id": "test",
        "mean": [0.5],
        "std": [0.25],
        "val_acc": 0.5,
        "test_acc": 0.5,
    }
    export(cfg, str(root), best)
    return json.loads((root / "best_model.json").read_text())


def test_the_export_of_a_latency_bound_search_records_its_network_and_program_latency(ray_session, tmp_path):
    def bound(tmp: Path, text: str) -> ExperimentConfig:
        cfg = _cfg(tmp)
        return dataclasses.replace(cfg, search=dataclasses.replace(cfg.search, constraints=text))

    loose = _exported(tmp_path / "a", bound(tmp_path / "a", "latency_ms<=1000,params<=1e9"))
    lat = loose["latency"]
    assert lat["bounds"] == ["latency_ms<=1000"] and lat["program_meets_bounds"] is True
    assert (lat["device"], lat["threads"], lat["batch"]) == ("cpu", 1, 1) and lat["node"]
    searched = cl.latency_ms([parse(LIVE)], bound(tmp_path / "a", ""), MNIST)[0]  # the search's figure
    assert 0.33 < lat["network_ms"] / searched < 3  # the same network, timed the same way
    assert lat["program_ms"] > 0 and lat["program_iqr_ms"] >= 0
    tight = _exported(tmp_path / "b", bound(tmp_path / "b", "latency_ms<=0.0001"))["latency"]
    assert tight["bounds"] == ["latency_ms<=0.0001"] and tight["program_meets_bounds"] is False
    plain = _exported(tmp_path / "c", bound(tmp_path / "c", "params<=1e9"))  # not held to latency: not timed
    assert "latency" not in plain and plain["arch"] == parse(LIVE).canonical()
