import time

import pytest

from cluster.actor import TeacherServer, curriculum_from_arrays, curriculum_to_arrays, start_teacher_actor


def test_teacher_server_cache_and_calibration(tiny_teacher):
    path, cfg = tiny_teacher
    server = TeacherServer(cfg.to_dict(), str(path))
    info = server.info()
    assert info["steps"] == cfg.gtn.inner_steps and info["dataset"] == "fashion_mnist" and len(info["content_hash"]) == 16
    assert server.lookup("k") is None
    server.store("k", {"gtn_score": 0.5})
    server.store("k", {"gtn_score": 0.9})  # first write wins: a score never changes under a trial
    assert server.lookup("k") == {"gtn_score": 0.5}
    for i in range(9):
        assert "proxy_rho" not in server.record(f"a{i}", i / 10, i / 10)
    calib = server.record("a9", 0.9, 0.9)
    assert calib["calibration_n"] == 10 and calib["proxy_rho"] == pytest.approx(1.0)
    # arrays survive the object store's numpy form with the same content hash
    assert curriculum_from_arrays(curriculum_to_arrays(server.curriculum)).content_hash == info["content_hash"]


def test_actor_restarts_with_the_same_curriculum(ray_session, tiny_teacher):
    ray = ray_session
    path, cfg = tiny_teacher
    actor = start_teacher_actor(cfg.to_dict(), str(path), namespace="test-restart")
    before = ray.get(actor.info.remote())["content_hash"]
    cur_ref, _ = ray.get(actor.refs.remote())
    assert curriculum_from_arrays(ray.get(cur_ref[0])).content_hash == before
    ray.kill(actor, no_restart=False)
    deadline = time.time() + 60
    while True:  # calls during the restart may fail; max_task_retries retries them
        try:
            after = ray.get(actor.info.remote(), timeout=30)["content_hash"]
            break
        except ray.exceptions.RayError:
            assert time.time() < deadline
            time.sleep(0.5)
    assert after == before
    cur_ref, _ = ray.get(actor.refs.remote())
    assert curriculum_from_arrays(ray.get(cur_ref[0])).content_hash == before
    ray.kill(actor, no_restart=True)
