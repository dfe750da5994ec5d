"""GPU rules on a CPU machine: Ray's declared (fake) GPUs, in their own pytest process (`pytest -m multinode`).

One node declares 2 GPUs and 8 CPUs (ray.cluster_utils.Cluster on 127.0.0.1). Trials pause 45 s as
they start (GTNNAS_TEST_PAUSE=trial:45, set before the cluster starts so its workers inherit it), so
trials that Ray packs side by side are seen running together.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from cluster.actor import start_teacher_actor
from cluster.search_run import run_search
from results.leaderboard import read_parts
from search.config import load_config

pytestmark = pytest.mark.multinode
ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = {"node_ip_address": "127.0.0.1"}
PAUSE = 45.0  # longer than it takes a loaded 2-core machine to start eight trial workers


@pytest.fixture(scope="module")
def gpu_cluster():
    assert not ray.is_initialized()
    os.environ["GTNNAS_TEST_PAUSE"] = f"trial:{PAUSE:g}"
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 8, "num_gpus": 2, **LOOPBACK})
    ray.init(address=c.address)
    yield ray
    ray.shutdown()
    c.shutdown()
    del os.environ["GTNNAS_TEST_PAUSE"]


def test_quarter_gpu_trials_run_four_at_a_time_per_gpu_and_the_actor_takes_none(gpu_cluster, tmp_path):
    cfg = load_config(
        ROOT / "configs" / "nb201_bench.yaml",
        [
            f"storage={tmp_path}",
            "name=pack",
            "search.num_samples=8",
            "search.gpus_per_trial=0.25",
            "search.cpus_per_trial=1",
            "search.scheduler=fifo",
            "search.searcher=random",
            "search.score=none",
            "search.seed_proxy=null",
        ],
    )
    final, root, _ = run_search(cfg)
    rows = read_parts(root)
    assert len(rows) == 8 and len(final) == 8
    assert set(rows["device"]) == {"cpu"}  # granted a GPU, but torch sees none here: the rule says CPU
    assert set(rows["gpus"]) == {"0", "1"}  # each trial got one GPU id (a quarter of it)
    # trials run from `started` to their report; count how many ran at once, per GPU and in all
    events = sorted(
        [(t, 1, g) for t, g in zip(rows["started"], rows["gpus"], strict=True)]
        + [(t, -1, g) for t, g in zip(rows["timestamp"], rows["gpus"], strict=True)]
    )
    running, peak = {"0": 0, "1": 0}, {"0": 0, "1": 0}
    total_peak = 0
    for _, step, gpu in events:
        running[gpu] += step
        peak[gpu] = max(peak[gpu], running[gpu])
        total_peak = max(total_peak, sum(running.values()))
    assert peak == {"0": 4, "1": 4} and total_peak == 8


def test_the_actor_asks_for_no_gpu(gpu_cluster, tmp_path):
    ray = gpu_cluster

    cfg = load_config(ROOT / "configs" / "nb201_bench.yaml", [f"storage={tmp_path}", "name=a"])
    actor = start_teacher_actor(cfg.to_dict(), None, "gpu-test", None)
    assert ray.get(actor.info.remote())["cached_scores"] == 0
    assert ray.available_resources().get("GPU") == 2.0  # the live actor holds no GPU
    ray.kill(actor)


def test_device_rule_follows_what_ray_granted_not_what_torch_sees(gpu_cluster):
    ray = gpu_cluster

    def probe() -> str:
        import torch  # noqa: PLC0415  (lazy: imported in the Ray worker that runs probe)

        from cluster.device import granted_device  # noqa: PLC0415  (lazy: in the Ray worker, as torch)

        torch.cuda.is_available = lambda: True  # pretend this worker's torch sees a GPU
        return granted_device()

    without = ray.get(ray.remote(num_gpus=0)(probe).remote())
    with_gpu = ray.get(ray.remote(num_gpus=1)(probe).remote())
    assert (without, with_gpu) == ("cpu", "cuda")
