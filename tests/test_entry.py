"""The one way in for Ray processes: data found or fetched on the node under a lock, the device Ray
granted, bad input leaving a Ray task as one line that names the node."""

from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path

import pytest
import torch

from cluster.entry import enter, naming_the_node, node_dataset, one_line
from search.config import DataConfig, NetConfig, load_config
from search.data import Dataset, Split
from search.errors import DataNotFoundError, InputError
from search.proxies import ProxyContext
from search.proxy_specs import components, make_proxy
from search.scoring import Scorer
from search.search_config import SearchConfig
from search.space import parse
from search.teacher_files import load_teacher

ROOT = Path(__file__).resolve().parents[1]
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture()
def mirror(data_dir, tmp_path):
    """A mirror folder laid out like a data directory (a local stand-in for s3://bucket/data)."""
    m = tmp_path / "mirror" / "FashionMNIST" / "raw"
    m.mkdir(parents=True)
    for f in (data_dir / "FashionMNIST" / "raw").iterdir():
        shutil.copy(f, m / f.name)
    return str(tmp_path / "mirror")


def _load(root: str, mirror: str, q) -> None:
    q.put(node_dataset(DataConfig(root=root, mirror=mirror, train_subset=100, val_subset=50), "cpu")[1])


def test_a_node_without_the_data_fetches_it_once_under_a_lock(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("GTNNAS_DATA_SOURCES", "data_dir,mirror")
    root = str(tmp_path / "node-data")
    ctx = mp.get_context("spawn")  # three processes of one node starting at once
    q = ctx.Queue()
    procs = [ctx.Process(target=_load, args=(root, mirror, q)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    origins = sorted(q.get(timeout=5) for _ in procs)
    assert [o.split()[0] for o in origins] == ["fetched", "found", "found"]  # one fetch, the others waited
    assert sorted(f.name for f in (Path(root) / "FashionMNIST" / "raw").iterdir()) == sorted(
        f.name for f in (Path(mirror) / "FashionMNIST" / "raw").iterdir()
    )


def test_no_data_anywhere_is_one_line_naming_what_was_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("GTNNAS_DATA_SOURCES", "data_dir,mirror")
    with pytest.raises(DataNotFoundError, match="mirror: no data.mirror set"):
        node_dataset(DataConfig(root=str(tmp_path / "empty")), "cpu")


def test_a_ray_task_brings_its_input_error_home_as_one_line_naming_the_node(ray_session, tmp_path):
    ray = ray_session
    cfg = load_config(ROOT / "configs" / "smoke.yaml", [f"data.root={tmp_path / 'nothing'}"])

    @ray.remote(num_cpus=1)
    def task(experiment):
        with naming_the_node("a test task"):
            me = enter(experiment, "test", threads=1)
            assert me.device == "cpu"  # no GPU granted: the CPU, whatever torch can see
            return me.data()

    with pytest.raises(ray.exceptions.RayTaskError) as info:
        ray.get(task.remote(cfg.to_dict()))
    line = one_line(info.value)
    assert isinstance(line, InputError) and "\n" not in str(line)
    node = ray.get_runtime_context().get_node_id()[:8]
    assert str(line).startswith(f"a test task on node 127.0.0.1 ({node}): ")
    assert "fashion_mnist" in str(line) and "Traceback" not in str(line)
    assert one_line(RuntimeError("a bug")) is None  # anything else keeps its traceback


def test_proxies_build_their_networks_on_the_datas_device(fashion):
    """Data on the meta device: a network built anywhere else would be a CPU network (today's bug)."""
    meta = Dataset(
        fashion.name,
        Split(fashion.train.x[:128].to("meta"), fashion.train.y[:128].to("meta")),
        fashion.val,
        fashion.test,
        fashion.mean,
        fashion.std,
    )
    cpu_ctx = ProxyContext(net=NetConfig(channels=4), data=fashion)
    ctx = ProxyContext(net=NetConfig(channels=4), data=meta)
    net = ctx.build(parse(CELL))
    assert {p.device.type for p in net.parameters()} == {"meta"}
    x, _ = ctx.real_batch("naswot")
    assert x.device.type == "meta" and net(x).device.type == "meta"  # no device mix in a forward
    for name in ("params", "flops"):  # what only shapes decide is the same as on the CPU
        assert (
            make_proxy(name).score_many([parse(CELL)], ctx)[0] == make_proxy(name).score_many([parse(CELL)], cpu_ctx)[0]
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (a fake GPU cannot show a device mix-up)")
def test_the_default_score_runs_on_cuda_when_the_data_is_there(fashion, tiny_teacher):
    path, _ = tiny_teacher
    cuda = Dataset(
        fashion.name,
        fashion.train.to("cuda"),
        fashion.val.to("cuda"),
        fashion.test.to("cuda"),
        fashion.mean,
        fashion.std,
    )
    cur = load_teacher(path).curriculum(real=fashion.train)
    scorer = Scorer.from_config(SearchConfig(score="gtn+params+naswot", score_seeds=2, score_val=200))
    parts = components(scorer, parse(CELL), net=NetConfig(channels=4), data=cuda, curriculum=cur, seed=0)
    assert set(parts) >= {"gtn_score", "params", "naswot"} and all(v == v for v in parts.values())
