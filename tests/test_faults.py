"""Fault tolerance. Multi-node tests: run in their own pytest process (`pytest -m multinode`).

A head with no CPUs plus two 1-CPU worker nodes (ray.cluster_utils.Cluster, all on 127.0.0.1):
(a) a worker node is removed mid-search, (b) the GTN actor is killed mid-search, (c) the driver
(a subprocess with its own embedded Ray) is SIGKILLed mid-search and the experiment resumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from search.config import load_config

pytestmark = pytest.mark.multinode
ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
LOOPBACK = {"node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **LOOPBACK})
    workers = [c.add_node(num_cpus=1, **LOOPBACK) for _ in range(2)]
    ray.init(address=c.address)
    c.wait_for_nodes()
    yield c, workers
    ray.shutdown()
    c.shutdown()


def _cfg(tmp_path, teacher, name, *extra):
    return load_config(SMOKE, [f"storage={tmp_path}", f"name={name}", f"search.teacher={teacher}",
                               "search.num_samples=8", "search.real_steps=40", "search.flush_seconds=1", *extra])


def _run_in_thread(cfg):
    from cluster.search_run import run_search

    box: dict = {}

    def target():
        try:
            box["result"] = run_search(cfg)
        except BaseException as e:  # surfaced by the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


def _wait_for(pred, timeout=120.0, what="condition"):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _parts(root: Path) -> int:
    return len(list((root / "leaderboard").glob("part-*.parquet"))) if (root / "leaderboard").is_dir() else 0


def _check_complete(root: Path, num_samples: int, real_rungs: int) -> pd.DataFrame:
    from cluster.leaderboard import read_parts

    rows = read_parts(str(root))
    assert not rows.duplicated(["trial_id", "iteration"]).any()
    assert rows["trial_id"].nunique() == num_samples
    for _, g in rows.groupby("trial_id"):
        assert sorted(g["iteration"]) == list(range(1, len(g) + 1))
    assert (rows.groupby("trial_id")["iteration"].max() <= 1 + real_rungs).all()
    assert not (rows["status"] == "ERROR").any()
    return rows


def test_worker_node_removed_mid_search(cluster, tiny_teacher, tmp_path):
    c, workers = cluster
    cfg = _cfg(tmp_path, tiny_teacher[0], "node_loss", "search.scheduler=fifo")
    t, box = _run_in_thread(cfg)
    _wait_for(lambda: _parts(tmp_path / "node_loss") >= 1 or not t.is_alive(), what="first leaderboard part")
    victim = workers.pop()
    c.remove_node(victim, allow_graceful=False)
    t.join(timeout=300)
    assert not t.is_alive() and "error" not in box, box.get("error")
    _check_complete(tmp_path / "node_loss", cfg.search.num_samples, cfg.search.real_rungs)
    workers.append(c.add_node(num_cpus=1, **LOOPBACK))  # restore the cluster for the next test
    c.wait_for_nodes()


def test_gtn_actor_killed_mid_search(cluster, tiny_teacher, tmp_path):
    import ray

    from cluster.actor import get_teacher_actor
    from cluster.search_run import namespace_for

    cfg = _cfg(tmp_path, tiny_teacher[0], "actor_kill")
    t, box = _run_in_thread(cfg)
    _wait_for(lambda: _parts(tmp_path / "actor_kill") >= 1 or not t.is_alive(), what="first leaderboard part")
    actor = get_teacher_actor(namespace_for(cfg))
    before = ray.get(actor.info.remote())["content_hash"]
    ray.kill(actor, no_restart=False)
    after = ray.get(actor.info.remote(), timeout=120)["content_hash"]  # retried until the restart is up
    t.join(timeout=300)
    assert not t.is_alive() and "error" not in box, box.get("error")
    assert after == before
    _check_complete(tmp_path / "actor_kill", cfg.search.num_samples, cfg.search.real_rungs)
    final, _, _ = box["result"]
    assert set(final["curriculum"]) == {before}  # every trial scored on the same curriculum


def _descendants(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _search_cmd(tmp_path, teacher, name, *extra):
    return [sys.executable, "-m", "cluster.cli", "search", "--config", str(SMOKE), "--num-cpus", "2",
            f"storage={tmp_path}", f"name={name}", f"search.teacher={teacher}", "search.searcher=random",
            "search.scheduler=fifo", "search.num_samples=8", "search.real_steps=40", "search.flush_seconds=1",
            *extra]


def test_driver_sigkill_then_resume(tiny_teacher, tmp_path):
    """Needs no Cluster: each driver subprocess starts its own embedded Ray (run after the others)."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    teacher = tiny_teacher[0]
    env = {**os.environ, "GTNNAS_TUNE_VERBOSE": "0"}
    proc = subprocess.Popen(_search_cmd(tmp_path, teacher, "crash"), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: set[int] = set()
    try:
        deadline = time.time() + 180
        while _parts(tmp_path / "crash") < 1:
            assert proc.poll() is None, "search finished before it could be interrupted"
            assert time.time() < deadline, "no leaderboard part appeared"
            children.update(_descendants(proc.pid))
            time.sleep(0.2)
        children.update(_descendants(proc.pid))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        for pid in children:  # the embedded Ray that driver started; nothing else
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert not (tmp_path / "crash" / "leaderboard.parquet").exists()
    resumed = subprocess.run(_search_cmd(tmp_path, teacher, "crash") + ["--resume"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = subprocess.run(_search_cmd(tmp_path, teacher, "straight"), cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-2000:]
    a = _check_complete(tmp_path / "crash", 8, 2)
    b = _check_complete(tmp_path / "straight", 8, 2)
    key = ["arch", "iteration", "gtn_score", "val_acc"]
    assert sorted(map(tuple, a[key].fillna(-1).round(6).itertuples(index=False))) == \
        sorted(map(tuple, b[key].fillna(-1).round(6).itertuples(index=False)))
