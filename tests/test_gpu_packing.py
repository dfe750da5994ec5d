"""GPU rules on a CPU machine: Ray's declared (fake) GPUs, in their own pytest process (`pytest -m multinode`).

One node declares 2 GPUs and 8 CPUs (ray.cluster_utils.Cluster on 127.0.0.1). Trials pause 20 s as
they start (GTNNAS_TEST_PAUSE=trial:20, set before the cluster starts so its workers inherit it), so
trials that Ray packs side by side are seen running together.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from search.config import load_config

pytestmark = pytest.mark.multinode
ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"node_ip_address": "127.0.0.1"}
PAUSE = 20.0


@pytest.fixture(scope="module")
def gpu_cluster():
    import ray
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized()
    os.environ["GTNNAS_TEST_PAUSE"] = f"trial:{PAUSE:g}"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 8, "num_gpus": 2, **LOOPBACK})
    ray.init(address=c.address)
    yield ray
    ray.shutdown()
    c.shutdown()
    del os.environ["GTNNAS_TEST_PAUSE"]


def test_quarter_gpu_trials_run_four_at_a_time_per_gpu_and_the_actor_takes_none(gpu_cluster, tmp_path):
    from cluster.search_run import run_search
    from results.leaderboard import read_parts

    cfg = load_config(ROOT / "configs" / "nb201_bench.yaml",
                      [f"storage={tmp_path}", "name=pack", "search.num_samples=8", "search.gpus_per_trial=0.25",
                       "search.cpus_per_trial=1", "search.scheduler=fifo", "search.searcher=random", "search.score=none"])
    final, root, _ = run_search(cfg)
    rows = read_parts(root)
    assert len(rows) == 8 and len(final) == 8
    assert sorted(rows["gpus"].value_counts().tolist()) == [4, 4]  # two GPU ids, four trials each
    assert set(rows["device"]) == {"cpu"}  # granted a GPU, but torch sees none here: the rule says CPU
    # every trial paused PAUSE seconds after it started; all eight reported within less than that of each
    # other, so all eight ran at the same time: four on each GPU
    assert rows["timestamp"].max() - rows["timestamp"].min() < PAUSE


def test_the_actor_asks_for_no_gpu(gpu_cluster, tmp_path):
    ray = gpu_cluster
    from cluster.actor import start_teacher_actor

    cfg = load_config(ROOT / "configs" / "nb201_bench.yaml", [f"storage={tmp_path}", "name=a"])
    actor = start_teacher_actor(cfg.to_dict(), None, "gpu-test", None)
    assert ray.get(actor.info.remote())["cached_scores"] == 0
    assert ray.available_resources().get("GPU") == 2.0  # the live actor holds no GPU
    ray.kill(actor)


def test_device_rule_follows_what_ray_granted_not_what_torch_sees(gpu_cluster):
    ray = gpu_cluster

    def probe() -> str:
        import torch

        from cluster.device import granted_device

        torch.cuda.is_available = lambda: True  # pretend this worker's torch sees a GPU
        return granted_device()

    without = ray.get(ray.remote(num_gpus=0)(probe).remote())
    with_gpu = ray.get(ray.remote(num_gpus=1)(probe).remote())
    assert (without, with_gpu) == ("cpu", "cuda")
