"""One test per private or undocumented Ray/Tune name the project uses (cluster/tune_compat.py, and the
public routes that replaced the others). After a Ray upgrade these say first what moved."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ray import tune
from ray.tune.search import ConcurrencyLimiter
from ray.util import debug

from cluster import tune_compat
from cluster.searchers import Deduplicated, Limiter, RandomSearch, RegularizedEvolution

ROOT = Path(__file__).resolve().parents[1]


def test_init_local_binds_loopback_and_start_ray_records_its_processes_in_the_session_folder():
    """ray.init's hidden _node_ip_address, and address_info["session_dir"] (public) for the owner record."""
    code = (
        "from cluster.raysetup import start_ray; import ray, json, glob, os; start_ray(num_cpus=1); "
        "print(json.dumps([n['NodeManagerAddress'] for n in ray.nodes()])); "
        "print(json.dumps(glob.glob(os.path.join(os.environ['RAY_TMPDIR'], 'ray', 'session_2*', "
        "'gtnnas-owner.json')))); ray.shutdown()"
    )
    short = tempfile.mkdtemp(prefix="gc", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, "RAY_TMPDIR": short}
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
        )
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-2000:]
    addresses, owners = (json.loads(line) for line in out.stdout.strip().splitlines()[-2:])
    assert addresses == ["127.0.0.1"] and len(owners) == 1  # recorded in the session folder while Ray ran


def test_trial_outcomes_gives_every_trials_id_and_status(ray_session, tmp_path):
    def trainable(config):
        if config["x"] == 1:
            raise ValueError("boom")
        tune.report({"y": config["x"]})

    grid = tune.Tuner(
        trainable,
        param_space={"x": tune.grid_search([0, 1, 2])},
        run_config=tune.RunConfig(
            storage_path=str(tmp_path), name="outcomes", verbose=0, failure_config=tune.FailureConfig(max_failures=0)
        ),
    ).fit()
    assert hasattr(grid, "_experiment_analysis")  # the private attribute the adapter reads first
    out = tune_compat.trial_outcomes(grid)
    assert sorted(s for _, s, _ in out) == ["ERROR", "TERMINATED", "TERMINATED"]
    assert [t for t, _, _ in out] == [r.metrics["trial_id"] for r in grid]
    assert {r.metrics.get("y") for _, s, r in out if s == "TERMINATED"} == {0, 2}


def test_upload_experiment_state_puts_the_saved_state_on_the_storage(ray_session, tmp_path):
    checks: list[bool] = []

    class Check(tune.Callback):
        saved = False

        def get_state(self):  # public: Tune calls it while saving the experiment state
            self.saved = True

        def on_step_end(self, iteration, trials, **info):
            if self.saved and trials:
                self.saved = False
                tune_compat.upload_experiment_state(trials)
                staged = sorted(Path(trials[0].local_experiment_path).glob("experiment_state-*.json"))[-1]
                stored = Path(trials[0].remote_experiment_path) / staged.name
                checks.append((stored.is_file() and stored.read_bytes() == staged.read_bytes(), staged.name, iteration))

    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = "0"
    try:
        tune.Tuner(
            lambda c: tune.report({"y": 1}),
            param_space={"x": tune.grid_search([0, 1])},
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="up", verbose=0, callbacks=[Check()]),
        ).fit()
    finally:
        os.environ.pop("TUNE_GLOBAL_CHECKPOINT_S")
    assert checks and all(c[0] for c in checks), checks  # every save on the storage whole, not only staged


def test_live_trials_and_the_limiter_that_refuses_a_repeated_id():
    lim = Limiter(Deduplicated(RandomSearch("score", "max")), 2)
    assert lim.suggest("a") is not None and "a" in tune_compat.live_trials(lim)
    assert lim.suggest("a") is None  # refused, not asserted
    plain = ConcurrencyLimiter(Deduplicated(RandomSearch("score", "max")), 2)
    plain.suggest("a")
    with pytest.raises(AssertionError):  # when Ray stops asserting here, Limiter can go
        plain.suggest("a")


def test_searchers_keep_metric_and_mode_through_public_properties():
    rea = RegularizedEvolution("rung1_score", "min", population=3, tournament=2)
    for i in range(3):
        rea.suggest(f"t{i}")
        rea.on_trial_complete(f"t{i}", {"rung1_score": float(i)})
    fresh = RegularizedEvolution()
    fresh.set_state(rea.get_state())
    assert (fresh.metric, fresh.mode) == ("rung1_score", "min")
    assert Deduplicated(rea).metric == "rung1_score" and Deduplicated(rea).mode == "min"


def test_node_cpus_gives_each_nodes_total_and_free_cpus(one_cpu_held):
    deadline = time.monotonic() + 20  # Ray's free-resource table follows the raylet within a second or so
    while (seen := tune_compat.node_cpus()) != [(2.0, 1.0)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen == [(2.0, 1.0)]


def test_slim_finished_trial_keeps_only_the_named_metrics_statistics(ray_session, tmp_path):
    """Trial.run_metadata's metric_analysis / metric_n_steps and _default_result_or_future (private)."""
    seen: list[tuple[set, set, set, object]] = []

    class Slim(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            before = set(trial.run_metadata.metric_analysis)
            tune_compat.slim_finished_trial(trial, ("score",))
            md = trial.run_metadata
            seen.append((before, set(md.metric_analysis), set(md.metric_n_steps), trial._default_result_or_future))

    tune.Tuner(
        lambda c: tune.report({"score": 1.0, "other": 2.0, "third": 3.0}),
        param_space={"x": tune.grid_search([0])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="slim", verbose=0, callbacks=[Slim()]),
    ).fit()
    (before, analysis, steps, future) = seen[0]
    assert {"score", "other", "third"} <= before  # Tune kept statistics of every numeric metric
    assert analysis == {"score"} and steps == {"score"} and future is None


def test_forget_encode_keys_drops_tunes_one_time_log_keys_and_nothing_else():
    """ray.util.debug._logged (private): the keys Tune adds for every object it cloudpickles."""
    debug._logged.update({"tune_func_encode:abc", "tune_func_encode:def", "someone_else:key"})
    try:
        assert tune_compat.forget_encode_keys() >= 2
        assert not any(k.startswith("tune_func_encode:") for k in debug._logged)
        assert "someone_else:key" in debug._logged
    finally:
        debug._logged.discard("someone_else:key")
