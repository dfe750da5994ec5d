"""The one grid runner (baseline, retraining, truth): every job runs once, with one failure policy."""

from __future__ import annotations

import os

import pytest
from ray import tune

from cluster.entry import naming_the_node
from cluster.grid import MAX_FAILURES, GridError, run_grid
from search.errors import InputError


def _trainable():
    """The test's trainable, made inside a function so Ray ships it by value (workers cannot import tests/)."""

    def job_trial(config):
        job = config["job"]
        if job["kind"] == "flaky":  # fails on its first try only: the retry policy finishes it
            marker = os.path.join(job["dir"], "tried")
            if not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)  # a crashed worker, as a lost node would look
        if job["kind"] == "bad_input":
            with naming_the_node("a test job"):
                raise InputError("no such data set here")
        if job["kind"] == "bug":
            raise ZeroDivisionError("a bug")
        tune.report({"x": job["x"] * 2})

    return job_trial


def _run(jobs, tmp_path):
    return run_grid(_trainable(), jobs, stage="test", name="grid", storage=str(tmp_path / "tune"), cpus=1)


def test_every_job_runs_and_a_crashed_one_is_retried(ray_session, tmp_path):
    jobs = [{"kind": "ok", "x": 1}, {"kind": "flaky", "x": 2, "dir": str(tmp_path)}, {"kind": "ok", "x": 3}]
    results = _run(jobs, tmp_path)
    assert sorted(r["x"] for r in results) == [2, 4, 6] and (tmp_path / "tried").exists()
    assert MAX_FAILURES >= 1


def test_a_job_failing_on_bad_input_ends_the_grid_with_one_line_naming_the_node(ray_session, tmp_path):
    with pytest.raises(InputError) as e:
        _run([{"kind": "ok", "x": 1}, {"kind": "bad_input", "x": 0}], tmp_path)
    line = str(e.value)
    assert "\n" not in line and "1 of 2 test job(s) failed" in line and "no such data set here" in line
    assert "127.0.0.1" in line  # the node it failed on


def test_a_job_failing_for_another_reason_is_a_bug_not_an_input_error(ray_session, tmp_path):
    with pytest.raises(GridError, match="ZeroDivisionError|a bug"):
        _run([{"kind": "bug", "x": 0}], tmp_path)
