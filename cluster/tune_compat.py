"""Every use of a private or undocumented Ray/Tune name, in one place, each with a test that fails loudly
when Ray changes it (tests/test_tune_compat.py). Upgrading Ray means running those tests first.

- :func:`init_local`: ``ray.init``'s hidden ``_node_ip_address``, to bind an embedded Ray to loopback.
- :func:`trial_outcomes`: each trial's id and status after ``Tuner.fit`` (``ResultGrid`` keeps the
  status only in its private experiment analysis; the public ``Result`` cannot tell TERMINATED from
  ERROR); the public, slower route (``tune.ExperimentAnalysis`` re-reading the experiment) if it goes.
- :func:`upload_experiment_state`: wait until the experiment state Tune just saved is on the storage
  (Tune uploads it in the background and offers no public wait).
- :func:`live_trials`: the trial ids ``ConcurrencyLimiter`` counts as running.
- :func:`node_cpus`: every alive node's total and free CPUs (``ray._private.state``'s per-node table,
  a developer API not exported at the top level); the cluster's free CPUs for each node if it goes.
- :func:`slim_finished_trial`, :func:`forget_encode_keys`: what Tune's driver keeps for every finished
  trial that only a running one needs (running statistics of every numeric metric, the auto-filled
  metrics' object ref) and a debug set Ray grows with every object Tune serialises; together with the
  trials' loggers they are most of the driver's growth per trial (benchmarks/results/search_scale.json).

Checked against the sources of Ray 2.10, 2.35, 2.50 and 2.60; tested with the installed one.
"""

from __future__ import annotations

import glob
import os
import time
from typing import Any

LOOPBACK = "127.0.0.1"


def init_local(**kwargs: Any) -> Any:
    """``ray.init("local", ...)`` bound to loopback; returns Ray's context (``address_info["session_dir"]``)."""
    import ray  # noqa: PLC0415  (lazy: cluster.raysetup imports this module before it sets Ray's environment)

    return ray.init("local", _node_ip_address=LOOPBACK, **kwargs)


def trial_outcomes(grid: Any) -> list[tuple[str, str, Any]]:
    """(trial id, status, ``Result``) for every trial of a fitted or restored ``ResultGrid``, in its order."""
    analysis = getattr(grid, "_experiment_analysis", None)
    results = list(grid)
    if analysis is not None:
        trials = analysis.trials
    else:  # the public route: reads the experiment's state and every trial's results again
        from ray import tune  # noqa: PLC0415  (lazy: see init_local)

        trials = tune.ExperimentAnalysis(grid.experiment_path, storage_filesystem=grid.filesystem).trials
    status = {t.trial_id: t.status for t in trials}
    return [(r.metrics["trial_id"], status[r.metrics["trial_id"]], r) for r in results]


def upload_experiment_state(trials: list, timeout: float = 60.0) -> None:
    """Wait until the experiment state Tune saved is on the experiment storage, not only staged locally.

    The wait-upload-wait Ray uses for its own forced syncs (``StorageContext.persist_artifacts``), then
    until the stored state file has the staged one's size: Tune's own upload of it, launched by another
    syncer than the trials', may still be rewriting it.
    """
    storage = getattr(trials[0], "storage", None) if trials else None
    syncer = getattr(storage, "syncer", None)
    if storage is None or syncer is None:  # nothing to upload: Tune writes straight to the storage
        return
    syncer.wait()
    syncer.sync_up(trials[0].local_experiment_path, trials[0].remote_experiment_path)
    syncer.wait()
    staged = sorted(glob.glob(os.path.join(trials[0].local_experiment_path, "experiment_state-*.json")))
    if not staged:
        return
    fs, name = storage.storage_filesystem, os.path.basename(staged[-1])
    stored, size = f"{storage.experiment_fs_path}/{name}", os.path.getsize(staged[-1])
    deadline = time.monotonic() + timeout
    while fs.get_file_info(stored).size != size and time.monotonic() < deadline:
        time.sleep(0.01)


def slim_finished_trial(trial: Any, keep: tuple[str, ...] = ("score",)) -> None:
    """Drop a finished trial's running statistics of every metric but ``keep`` (two deques per numeric
    metric) and its auto-filled-metrics object ref; Tune re-saves the trial slim at its next save."""
    md = trial.run_metadata
    md.metric_analysis = {k: v for k, v in md.metric_analysis.items() if k in keep}
    md.metric_n_steps = {k: v for k, v in md.metric_n_steps.items() if k in md.metric_analysis}
    if md.last_result:  # the ref is read only while a trial has reported nothing
        trial._default_result_or_future = None


def forget_encode_keys() -> int:
    """Forget the one-time-log keys Ray keeps for every object Tune has cloudpickled (never cleared)."""
    from ray.util import debug  # noqa: PLC0415  (lazy: see init_local)

    stale = [k for k in debug._logged if k.startswith("tune_func_encode:")]
    debug._logged.difference_update(stale)
    return len(stale)


def node_cpus() -> list[tuple[float, float]]:
    """(total, free) CPUs of every alive node."""
    import ray  # noqa: PLC0415  (lazy: see init_local)

    totals = {n["NodeID"]: n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")}
    try:
        from ray._private.state import available_resources_per_node  # noqa: PLC0415

        free = {k: v.get("CPU", 0.0) for k, v in available_resources_per_node().items()}
    except ImportError:  # the public route: the whole cluster's free CPUs, an upper bound for each node
        anywhere = ray.available_resources().get("CPU", 0.0)
        free = {k: min(t, anywhere) for k, t in totals.items()}
    return [(t, free.get(k, 0.0)) for k, t in totals.items()]


def live_trials(limiter: Any) -> set[str]:
    """Trial ids a ``ConcurrencyLimiter`` holds as running (its undocumented ``live_trials``)."""
    return limiter.live_trials
