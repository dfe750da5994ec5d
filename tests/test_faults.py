"""Fault tolerance. Multi-node tests: run in their own pytest process (`pytest -m multinode`).

A head with no CPUs plus two 1-CPU worker nodes (ray.cluster_utils.Cluster, all on 127.0.0.1):
(a) a worker node is removed mid-search, (b) the GTN actor is killed mid-search, and (c) the chaos test:
the driver (a subprocess with its own embedded Ray) is SIGKILLed at four moments of one run, resumed
after each, and the result compared with an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
import ray
from ray.cluster_utils import Cluster

from cluster.actor import get_teacher_actor
from cluster.search_run import namespace_for, run_search
from results.leaderboard import read_parts, read_statuses
from search.config import load_config

pytestmark = pytest.mark.multinode
ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
LOOPBACK = {"node_ip_address": "127.0.0.1"}


@pytest.fixture(scope="module")
def cluster():
    assert not ray.is_initialized()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **LOOPBACK})
    workers = [c.add_node(num_cpus=1, **LOOPBACK) for _ in range(2)]
    ray.init(address=c.address)
    c.wait_for_nodes()
    yield c, workers
    ray.shutdown()
    c.shutdown()


def _cfg(tmp_path, teacher, name, *extra):
    return load_config(
        SMOKE,
        [
            f"storage={tmp_path}",
            f"name={name}",
            f"search.teacher={teacher}",
            "search.num_samples=8",
            "search.real_steps=40",
            "search.flush_seconds=1",
            *extra,
        ],
    )


def _run_in_thread(cfg):
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
    rows = read_parts(str(root))
    raw = pd.read_parquet(root / "leaderboard")  # the parts as any reader sees them
    lost = {t for t, s in read_statuses(str(root)).items() if s == "LOST"}
    raw = raw[~raw["trial_id"].isin(lost)]
    # a key may repeat only for a trial that was restored, and then with the same numbers (seeded re-run)
    again = raw[raw.duplicated(["trial_id", "iteration"], keep=False)]
    for _, g in again.groupby(["trial_id", "iteration"]):
        assert g[["arch", "rung1_score", "val_acc"]].fillna(-1).round(6).nunique().max() == 1, g
    assert rows["trial_id"].nunique() == num_samples
    for _, g in rows.groupby("trial_id"):
        assert sorted(g["iteration"]) == list(range(1, len(g) + 1))
    assert (rows.groupby("trial_id")["iteration"].max() <= 1 + real_rungs).all()
    statuses = read_statuses(str(root))
    assert {statuses.get(t) for t in rows["trial_id"]} == {"TERMINATED"}  # nothing RUNNING or ERROR at the end
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


def _descendants(pid: int) -> dict[int, float]:
    """pid -> start time of every process under ``pid`` (the embedded Ray a driver started)."""
    try:
        return {p.pid: p.create_time() for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return {}


def _alive(procs: dict[int, float]) -> list[int]:
    out = []
    for pid, started in procs.items():
        try:
            p = psutil.Process(pid)
            if abs(p.create_time() - started) < 1e-3 and p.status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _search_cmd(tmp_path, name, *extra):
    return [
        sys.executable,
        "-m",
        "cluster.cli",
        "search",
        "--config",
        str(SMOKE),
        "--num-cpus",
        "2",
        f"storage={tmp_path}",
        f"name={name}",
        "search.searcher=random",
        "search.scheduler=fifo",
        "search.num_samples=8",
        "search.real_steps=20",
        "gtn.outer_steps=12",
        "gtn.checkpoint_every=3",
        *extra,
    ]


def _statuses(root: Path) -> int:
    return sum(s == "TERMINATED" for s in read_statuses(str(root)).values())


KILL_POINTS = [  # (what the test waits for before SIGKILL, extra environment)
    ("early: the experiment folder exists", lambda r: (r / "experiment.json").exists(), {}),
    ("teacher stage: a meta-training checkpoint exists", lambda r: (r / "teacher.pt.state").exists(), {}),
    ("mid-search: rows on disk, trials still to run", lambda r: _parts(r) >= 2 and _statuses(r) < 6, {}),
    (
        "final write: every trial done, final table not written",
        lambda r: _statuses(r) == 8 and not (r / "leaderboard.parquet").exists(),
        {"GTNNAS_TEST_PAUSE": "final:60"},
    ),
]


@pytest.mark.timeout(900)
def test_chaos_sigkill_at_four_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    """One run killed with SIGKILL at four moments and resumed after each; then compared with a run never killed.

    Needs no Cluster: each driver subprocess starts its own embedded Ray (run after the others).
    """
    if ray.is_initialized():
        ray.shutdown()
    env = {**os.environ}
    root = tmp_path / "chaos"
    leftovers: dict[int, float] = {}
    try:
        for i, (what, ready, extra) in enumerate(KILL_POINTS):
            cmd = _search_cmd(tmp_path, "chaos") + (["--resume"] if i else [])
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            deadline, children = time.time() + 240, {}
            while not ready(root):
                assert proc.poll() is None, f"finished before the kill point '{what}': {proc.stderr.read()[-1500:]}"
                assert time.time() < deadline, f"kill point '{what}' never came"
                children.update(_descendants(proc.pid))
                time.sleep(0.05)
            children.update(_descendants(proc.pid))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            print(f"killed at '{what}' after {time.time() - deadline + 240:.1f}s", file=sys.stderr, flush=True)
            assert not _alive(leftovers), "the resumed command did not end what the killed driver's Ray left"
            leftovers = children
        resumed = subprocess.run(
            _search_cmd(tmp_path, "chaos") + ["--resume"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert not _alive(leftovers), "the resumed command did not end what the killed driver's Ray left"
        assert "Traceback" not in resumed.stderr
        straight = subprocess.run(
            _search_cmd(tmp_path, "straight"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert straight.returncode == 0, straight.stderr[-2000:]
        # a quiet, clean console: a status line instead of Tune's tables, the top table, no traceback
        assert "Traceback" not in straight.stderr + straight.stdout
        assert "search [" in straight.stderr and "Trial status" not in straight.stdout + straight.stderr
        assert "Top 8 of 8 architectures, one per equivalence class" in straight.stdout
    finally:
        for pid in _alive(leftovers):  # only what our own killed drivers started
            os.kill(pid, signal.SIGKILL)
    a = _check_complete(root, 8, 2)
    b = _check_complete(tmp_path / "straight", 8, 2)
    key = ["arch", "iteration", "rung1_score", "val_acc"]  # random search: the same cells, scores and accuracies
    assert sorted(map(tuple, a[key].fillna(-1).round(6).itertuples(index=False))) == sorted(
        map(tuple, b[key].fillna(-1).round(6).itertuples(index=False))
    )
    raw = read_parts(str(root), lost=True)
    lost = {t for t, s in read_statuses(str(root)).items() if s == "LOST"}
    assert set(raw["trial_id"]) - lost == set(a["trial_id"])  # every other row belongs to the budget's 8 trials
    final = pd.read_parquet(root / "leaderboard.parquet")
    assert set(final["status"]) == {"TERMINATED"} and final["arch_hash"].is_unique
    calib = json.loads(pq.read_schema(root / "leaderboard.parquet").metadata[b"gtnnas.calibration"])
    assert calib["actor_agrees"] and calib["calibration_n"] == len(a.dropna(subset=["val_acc"])["arch_hash"].unique())
