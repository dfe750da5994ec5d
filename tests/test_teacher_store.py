"""Teachers trained once and reused: the key, the store, the shipped teachers, refusals at the door."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cluster.teacher_stage import SHIPPED, ensure_teacher, file_teacher, find_teacher, store_uri, task_cpus, wait_for
from search.config import load_config
from search.data import load_dataset
from search.errors import CheckpointError
from search.outer_loop import train_teacher
from search.teacher_files import load_teacher, save_teacher
from search.teacher_key import teacher_key
from search.time_plan import fit_plan

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"


def test_a_teacher_is_keyed_by_its_data_and_settings_not_by_the_search():
    base = load_config(SMOKE)
    key = teacher_key(base)
    same = [
        ["seed=7"],
        ["name=other", "storage=s3://b/x"],
        ["search.num_samples=3", "net.channels=16"],
        ["data.val_subset=100", "data.root=/elsewhere"],
        ["gtn.validate_every=1", "gtn.checkpoint_every=1"],
    ]
    for o in same:
        assert teacher_key(load_config(SMOKE, o)) == key, o
    for o in (
        ["gtn.seed=1"],
        ["data.dataset=mnist"],
        ["data.train_subset=500"],
        ["gtn.inner_steps=8"],
        ["data.split_seed=1"],
    ):
        assert teacher_key(load_config(SMOKE, o)) != key, o


def test_the_store_is_beside_remote_storage_else_in_the_users_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert store_uri(load_config(SMOKE)) == str(tmp_path / "gtnnas" / "teachers")
    assert store_uri(load_config(SMOKE, ["storage=s3://bucket/runs"])) == "s3://bucket/runs/teachers"
    assert store_uri(load_config(SMOKE, ["search.teacher_store=gs://t"])) == "gs://t"


def test_a_filed_teacher_is_found_by_the_next_search_and_a_bad_one_is_refused(tiny_teacher, tmp_path, monkeypatch):
    path, cfg = tiny_teacher  # configs/gtn_smoke.yaml with gtn.outer_steps=2
    store = tmp_path / "store"
    cfg = load_config(ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=2", f"search.teacher_store={store}"])
    assert find_teacher(cfg) is None
    filed = file_teacher(cfg, str(path))
    assert filed == str(store / f"{teacher_key(cfg)}.pt")
    later = load_config(
        ROOT / "configs" / "gtn_smoke.yaml",
        ["gtn.outer_steps=2", f"search.teacher_store={store}", "seed=5", "name=later"],
    )
    assert find_teacher(later) == filed
    root = tmp_path / "exp"
    assert ensure_teacher(later, str(root)) == str(root / "teacher.pt")  # copied into the experiment, no Ray
    assert (root / "teacher.pt").read_bytes() == Path(filed).read_bytes()
    # another setting's teacher filed under this key, and a torn file: one line each, never used
    other = load_config(ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=3"])
    loaded = load_teacher(path)

    data = load_dataset("fashion_mnist", train_subset=100, val_subset=50)
    save_teacher(Path(filed), loaded.teacher, other, data, 3)
    with pytest.raises(CheckpointError, match="filed as teacher .* other settings"):
        find_teacher(later)
    Path(filed).write_bytes(Path(path).read_bytes()[:500])
    with pytest.raises(CheckpointError, match="not a readable teacher checkpoint") as info:
        find_teacher(later)
    assert "\n" not in str(info.value)


def test_the_cli_refuses_a_corrupt_stored_teacher_before_ray_starts(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    cfg = load_config(SMOKE, [f"search.teacher_store={store}"])
    (store / f"{teacher_key(cfg)}.pt").write_bytes(b"not a checkpoint")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster.cli",
            "search",
            "--config",
            str(SMOKE),
            f"search.teacher_store={store}",
            f"storage={tmp_path}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not a readable teacher checkpoint" in out.stderr
    assert not (tmp_path / "smoke").exists()  # nothing half-written


def test_gtn_train_files_its_teacher_where_searches_look(tmp_path, data_dir):
    store = tmp_path / "store"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster.cli",
            "gtn",
            "train",
            "--config",
            "configs/gtn_smoke.yaml",
            f"out={tmp_path / 't'}",
            "gtn.outer_steps=2",
            f"search.teacher_store={store}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    cfg = load_config(ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=2", f"search.teacher_store={store}"])
    assert find_teacher(cfg) == str(store / f"{teacher_key(cfg)}.pt") and "filed as" in out.stdout


def test_shipped_teachers_are_the_default_jobs_and_load(data_dir):
    """A change to the gtn settings' fields or defaults changes the key: the shipped teachers must follow."""
    shipped = sorted(p.name for p in SHIPPED.glob("*.pt"))
    keys = [
        f"{teacher_key(load_config(ROOT / 'configs' / 'default.yaml', [f'data.dataset={d}']))}.pt"
        for d in ("fashion_mnist", "mnist")
    ]
    assert shipped == sorted(keys)
    for name in shipped:
        t = load_teacher(SHIPPED / name)
        assert t.key == name[:-3] and t.provenance["commit"] and 0.3 < t.provenance["held_out_acc"] <= 1.0
        assert (SHIPPED / name).stat().st_size < 2_500_000  # small enough for git
    assert find_teacher(load_config(ROOT / "configs" / "default.yaml", ["seed=3"])) == str(SHIPPED / keys[0])


def test_a_compact_teacher_gives_the_same_curriculum(tiny_teacher, tmp_path, fashion):
    path, cfg = tiny_teacher
    pix = load_config(
        ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=1", "gtn.curriculum=pixels", "gtn.pixels_init=real"]
    )

    teacher = train_teacher(pix, fashion)
    save_teacher(tmp_path / "full.pt", teacher, pix, fashion, 1)
    save_teacher(tmp_path / "compact.pt", teacher, pix, fashion, 1, compact=True)
    a, b = (load_teacher(tmp_path / f).curriculum(real=fashion.train) for f in ("full.pt", "compact.pt"))
    assert a.content_hash == b.content_hash
    assert (tmp_path / "compact.pt").stat().st_size < 0.7 * (tmp_path / "full.pt").stat().st_size
    shutil.rmtree(tmp_path)


def test_fit_plan_follows_the_steady_pace_and_stops_a_step_that_would_overrun():
    # 4 steps in 50 s, the first (warm-up) 20 s: 10 s a step; 0.95 * 100 - 50 = 45 s left -> 4 more
    assert fit_plan(200, 200, step=4, done=4, elapsed=50.0, warm=20.0, seconds=100.0) == 8
    assert fit_plan(6, 6, step=4, done=4, elapsed=50.0, warm=20.0, seconds=100.0) == 6  # never past outer_steps
    assert fit_plan(200, 7, step=4, done=4, elapsed=50.0, warm=20.0, seconds=100.0) == 8  # a faster pace: longer
    assert fit_plan(200, 200, step=3, done=3, elapsed=40.0, warm=20.0, seconds=100.0) == 200  # not yet timed
    assert fit_plan(200, 200, step=2, done=2, elapsed=95.0, warm=20.0, seconds=100.0) == 2  # would overrun: stop
    assert fit_plan(200, 200, step=1, done=1, elapsed=5.0, warm=5.0, seconds=0.0) == 1  # past the limit already
    assert fit_plan(200, 200, step=9, done=4, elapsed=88.0, warm=10.0, seconds=100.0) == 9  # resumed at step 6


def test_a_time_limit_that_does_not_bind_changes_nothing_and_one_already_spent_stops_after_a_step():
    cfg = load_config(ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=4"])
    data = load_dataset("fashion_mnist", train_subset=200, val_subset=50)
    free = train_teacher(cfg, data).state_dict()
    steps: list[int] = []
    timed = train_teacher(cfg, data, seconds=1e9, callback=lambda s: steps.append(s.step)).state_dict()
    assert steps == [1, 2, 3, 4] and all(torch.equal(free[k], timed[k]) for k in free)
    steps.clear()
    train_teacher(cfg, data, seconds=0.0, callback=lambda s: steps.append(s.step))
    assert steps == [1]


def test_a_limit_that_binds_midway_ends_the_schedule_with_training_and_a_resume_keeps_the_plan(monkeypatch, tmp_path):
    from search import outer_loop  # noqa: PLC0415  (the module whose clock is replaced)

    ticks = iter(range(10**6))  # a clock that advances one second per reading: a steady, known pace
    monkeypatch.setattr(outer_loop, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    cfg = load_config(ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=50", "gtn.checkpoint_every=5"])
    data = load_dataset("fashion_mnist", train_subset=200, val_subset=50)
    steps: list = []
    state = tmp_path / "state.pt"
    cut = train_teacher(cfg, data, seconds=40.0, checkpoint=state, callback=steps.append).state_dict()
    last = steps[-1]
    assert 5 < last.step < 50 and last.least_plan == last.step  # cut, and it says so
    assert last.meta_lr < 0.3 * cfg.gtn.meta_lr  # the cosine schedule ended where training did
    assert last.val_acc is not None  # the cut teacher's held-out accuracy, as a finished one's
    # continuing from the last checkpoint (no limit now) runs to the same planned step, bit for bit
    again: list = []
    resumed = train_teacher(cfg, data, checkpoint=state, callback=again.append).state_dict()
    assert again[-1].step == last.step and again[-1].least_plan == last.step
    assert all(torch.equal(cut[k], resumed[k]) for k in cut)


def test_a_teacher_cut_by_the_time_budget_is_kept_by_the_experiment_not_filed(ray_session, tmp_path, capsys):
    store = tmp_path / "store"
    cfg = load_config(
        ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=50", f"search.teacher_store={store}", "gtn.seed=3"]
    )
    root = tmp_path / "exp"
    assert ensure_teacher(cfg, str(root), seconds=0.0) == str(root / "teacher.pt")
    cut = load_teacher(root / "teacher.pt")
    assert cut.outer_steps == 1 and cut.config.gtn.outer_steps == 1 and cut.key != teacher_key(cfg)
    assert cut.provenance["time_limited"] == {"outer_steps_configured": 50, "ran": 1}
    assert find_teacher(cfg) is None and not store.exists()  # not the configured teacher: never filed
    assert "cut to 1 of 50 outer steps" in capsys.readouterr().out


def test_the_teacher_task_asks_for_the_cpus_a_node_has_free_not_its_total():
    assert task_cpus([(2.0, 1.5)]) == 1  # half a CPU lost to Ray (ray-project/ray#64693): 2 would never come
    assert task_cpus([(2.0, 2.0)]) == 2 and task_cpus([(16.0, 16.0)]) == 8 and task_cpus([(4.0, 0.0)]) == 1
    assert task_cpus([(2.0, 0.5), (8.0, 3.0)]) == 3 and task_cpus([]) == 1


@pytest.mark.timeout(180)
def test_a_node_with_a_cpu_taken_still_meta_trains_the_teacher(one_cpu_held, tmp_path):
    """It asked for every CPU of the biggest node: with one taken (here by an actor; in CI by a placement
    group Ray lost) the search waited for ever at its first stage."""
    cfg = load_config(
        ROOT / "configs" / "gtn_smoke.yaml",
        ["gtn.outer_steps=2", f"search.teacher_store={tmp_path / 'store'}", "search.teacher=fresh"],
    )
    root = tmp_path / "exp"
    assert ensure_teacher(cfg, str(root)) == str(root / "teacher.pt")
    assert load_teacher(root / "teacher.pt").outer_steps == 2


class _Interrupted(Exception):
    pass


def test_waiting_for_the_teachers_cpus_says_so_and_a_signal_stops_it(ray_session, one_cpu_held, capsys):
    """A plain ``ray.get`` holds signals until the task ends (Ctrl-C did nothing, nor pytest-timeout)."""
    ray, hold = ray_session, one_cpu_held
    ref = ray.remote(num_cpus=2)(lambda: 1).remote()  # waits for the held CPU

    def interrupt(*_):
        raise _Interrupted

    before = signal.signal(signal.SIGUSR1, interrupt)
    poke = threading.Timer(2.0, os.kill, (os.getpid(), signal.SIGUSR1))
    release = threading.Timer(20.0, ray.kill, (hold,))  # a wait that ignores the signal ends here
    start = time.monotonic()
    try:
        poke.start()
        release.start()
        with pytest.raises(_Interrupted):
            wait_for(ref, 2, note_every=0.5)
        assert time.monotonic() - start < 10
    finally:
        signal.signal(signal.SIGUSR1, before)
        poke.cancel()
        release.cancel()
        ray.cancel(ref, force=True)
    assert "teacher stage: waiting for 2 free CPUs on one node (most free now: 1)" in capsys.readouterr().out
