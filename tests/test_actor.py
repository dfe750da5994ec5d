import time
from dataclasses import replace

import numpy as np
import pytest

from cluster.actor import ExperimentServer, curriculum_from_arrays, curriculum_to_arrays, start_teacher_actor
from results.leaderboard import row_from_result, status_row, write_part, write_statuses
from search.space import parse

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"


def test_experiment_server_cache_and_calibration(tiny_teacher):
    path, cfg = tiny_teacher
    server = ExperimentServer(cfg.to_dict(), str(path))
    info = server.info()
    assert (
        info["steps"] == cfg.gtn.inner_steps and info["dataset"] == "fashion_mnist" and len(info["content_hash"]) == 16
    )
    assert server.lookup("k") is None
    server.store("k", {"gtn_score": 0.5})
    server.store("k", {"gtn_score": 0.9})  # first write wins: a score never changes under a trial
    assert server.lookup("k") == {"gtn_score": 0.5}
    assert server.first_result("h", {"val_acc": 0.3}) == ({"val_acc": 0.3}, True)
    assert server.first_result("h", {"val_acc": 0.9}) == ({"val_acc": 0.3}, False)  # one evaluation per class
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
    (ref,) = ray.get(actor.refs.remote())
    assert curriculum_from_arrays(ray.get(ref)).content_hash == before
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
    (ref,) = ray.get(actor.refs.remote())
    assert curriculum_from_arrays(ray.get(ref)).content_hash == before
    ray.kill(actor, no_restart=True)


def test_a_restarted_server_rebuilds_its_memory_from_the_leaderboard(tmp_path, tiny_teacher):
    path, cfg = tiny_teacher
    root = str(tmp_path / "exp")
    cur = ExperimentServer(cfg.to_dict(), str(path)).curriculum.content_hash
    ha, hb = parse(A).equiv_hash(), parse(B).equiv_hash()

    def res(it, arch, h, score, val=None, extra=None):
        r = {
            "training_iteration": it,
            "rung": it,
            "arch": arch,
            "arch_hash": h,
            "rung1_score": score,
            "gtn_score": score,
            "gtn_val_loss": 1.5,
            "score_seconds": 0.2,
            "curriculum": cur,
            "config_hash": cfg.hash(),
            **(extra or {}),
        }
        return {**r, "val_acc": val} if val is not None else r

    write_part(
        root,
        [
            row_from_result("e", "t1", res(1, A, ha, 0.4)),
            row_from_result("e", "t1", res(2, A, ha, 0.4, 0.7)),
            row_from_result("e", "t2", res(1, B, hb, 0.1)),
            row_from_result("e", "t9", res(1, B, "x", 0.9)),
            row_from_result("e", "t3", res(1, B, "y", 0.5, extra={"config_hash": "other"})),
        ],
        {},
    )
    write_statuses(root, [status_row("e", "t9", "LOST")])
    server = ExperimentServer(cfg.to_dict(), str(path), root)
    assert server.lookup(server.scorer.key(ha, cur, server.cfg.net, server.cfg.seed)) == {
        "gtn_score": 0.4,
        "gtn_val_loss": 1.5,
        "score_seconds": 0.2,
    }
    assert server.lookup(server.scorer.key(hb, cur, server.cfg.net, server.cfg.seed))["gtn_score"] == 0.1
    assert (
        server.lookup(server.scorer.key("x", cur, server.cfg.net, server.cfg.seed)) is None
    )  # a LOST trial's score is forgotten
    assert (
        server.lookup(server.scorer.key("y", cur, server.cfg.net, server.cfg.seed)) is None
    )  # another configuration's row is not ours
    assert server.pairs == {ha: (0.4, 0.7)} and server.rebuilt == 3


def test_a_combined_score_ranks_each_class_among_those_scored_so_far(tiny_teacher):
    path, cfg = tiny_teacher
    cfg = replace(cfg, search=replace(cfg.search, score="gtn+params"))
    server = ExperimentServer(cfg.to_dict(), str(path))
    rng = np.random.default_rng(0)
    # equal weights on the components' ranks: the bigger-and-better cell wins
    server.combine("a", {"gtn_score": 0.3, "params": 1e4})
    assert server.combine("b", {"gtn_score": 0.6, "params": 1e5}) > server.combine(
        "c", {"gtn_score": 0.1, "params": 1e3}
    )
    # real results change nothing: the weights are not refitted (benchmarks/score_choice.py)
    for i in range(40):
        p, g = float(np.exp(rng.uniform(7, 12))), float(rng.uniform(0.1, 0.6))
        server.combine(f"h{i}", {"gtn_score": g, "params": p})
        server.record(f"h{i}", 0.0, 0.5 + 0.05 * np.log(p))
    seen = list(server.parts.values())
    x = {"gtn_score": 0.1, "params": 1e6}
    assert server.combine("x", x) == pytest.approx(server.scorer.value(x, [*seen, x]))
    # an early cell's value moves as more classes are scored; the scheduler rescores all on today's ranking
    early, now = server.rescore(["b", "c", "x", "unknown"]), server.rescore(["x"])
    assert early[2] == now[0] and early[0] > early[1] and np.isnan(early[3])
    assert early[0] == pytest.approx(server.scorer.value(server.parts["b"], list(server.parts.values())))
