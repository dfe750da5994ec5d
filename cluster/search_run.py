"""The search driver: teacher stage -> shared actor -> Tune trials -> leaderboard.

Runs on whatever Ray is initialised (embedded local, or a cluster via ``--address``). ``resume``
continues an interrupted experiment from whatever stage it reached: the teacher stage from its last
checkpoint, the search with ``Tuner.restore`` (after recreating the actor, which Tune does not do
itself). Before the actor starts, the leaderboard is made to agree with the restored experiment
(rows Tune holds that no part has are written; trials it does not know are marked LOST), because the
actor rebuilds its memory from the leaderboard. See docs/reliability.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

import pyarrow.fs as pafs
import ray
from ray import tune

from cluster import faults
from cluster.actor import fetch_curriculum, start_teacher_actor
from cluster.callbacks import LeaderboardCallback, SlimFinishedTrials, StatusCallback, tune_env
from cluster.costs import CellCosts, InfeasibleLog
from cluster.entry import data_inputs, one_line
from cluster.schedulers import ActorRescore, make_scheduler
from cluster.searchers import make_searcher
from cluster.teacher_stage import ensure_teacher
from cluster.trainable import components, nas_trainable, param_space
from cluster.tune_compat import trial_outcomes
from results.leaderboard import calibration_pairs, live_calibration, read_parts, reconcile, write_final
from results.phases import phase_split
from results.storage import exists, join, resolve, storage_path, upload, write_json
from search.config import ExperimentConfig
from search.errors import InputError, LeaderboardError, first_line
from search.scoring import Scorer
from search.versions import versions
from search.viz import save_grid

EXPERIMENT = "experiment.json"  # written first: an experiment that exists can be resumed


def namespace_for(cfg: ExperimentConfig) -> str:
    return f"gtnnas-{cfg.name}"


def metadata(cfg: ExperimentConfig, teacher_uri: str | None, curriculum: dict[str, Any]) -> dict[str, Any]:
    return {
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
        "versions": {**versions(), "ray": ray.__version__},
        "teacher": teacher_uri,
        "curriculum": curriculum,
        "evaluator": cfg.search.evaluator,
        "score": cfg.search.score,
    }


def trainable_for(cfg: ExperimentConfig) -> Any:
    """The trainable with this experiment's settings and resources (for new and restored runs alike)."""
    return tune.with_resources(
        tune.with_parameters(nas_trainable, experiment=cfg.to_dict(), namespace=namespace_for(cfg)),
        {"cpu": cfg.search.cpus_per_trial, "gpu": cfg.search.gpus_per_trial},
    )


def seed_proxy_fn(cfg: ExperimentConfig) -> Any:
    """Scores for the evolution's first population (``search.seed_proxy``), on the searched network; with
    several objectives (score, cost, ...) per cell, the costs counted (latency is not measured for a seed
    sample of thousands of cells: a latency objective seeds by the proxy alone)."""
    if not cfg.search.seed_proxy:
        return None
    scorer = Scorer.parse(cfg.search.seed_proxy)
    inputs = None if cfg.search.evaluation.looks_up else data_inputs(cfg.data)
    names = [o.name for o in cfg.search.objective_list[1:]]
    counted = CellCosts(cfg, inputs) if names and "latency_ms" not in names else None

    def score(archs: Any) -> list[Any]:
        values = [scorer.value(components(cfg, scorer, a, inputs=inputs)) for a in archs]
        if counted is None:
            return values
        return [(v, *(c[n] for n in names)) for v, c in zip(values, counted.of(list(archs)), strict=True)]

    return score


def build_tuner(
    cfg: ExperimentConfig, root: str, meta: dict[str, Any], verbose: bool = False, budget_s: float | None = None
) -> Any:
    s = cfg.search
    costs = cell_costs(cfg)
    log = InfeasibleLog(root, cfg.name)
    searcher = make_searcher(s, seed=cfg.seed, proxy=seed_proxy_fn(cfg), costs=costs, log=log)
    scheduler = make_scheduler(s, ActorRescore(namespace_for(cfg)) if s.scorer.combined else None)
    tune_native = s.searcher not in ("random", "evolution")
    return tune.Tuner(
        trainable_for(cfg),
        param_space=param_space() if tune_native else {},
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=s.num_samples,
            reuse_actors=True,
            time_budget_s=budget_s,
            max_concurrent_trials=s.max_concurrent or None,
        ),
        run_config=run_config(cfg, root, meta, storage_path(cfg.storage), verbose, log),
    )


def cell_costs(cfg: ExperimentConfig) -> CellCosts | None:
    """The costs the objectives and constraints name (None: none named), on the searched network's input."""
    if not cfg.search.costs_needed:
        return None
    return CellCosts(cfg, None if cfg.search.evaluation.looks_up else data_inputs(cfg.data))


def run_config(
    cfg: ExperimentConfig, root: str, meta: dict[str, Any], storage: str, verbose: bool, log: InfeasibleLog
) -> Any:
    s = cfg.search
    every_step = s.state_save == "step"
    callbacks = [
        LeaderboardCallback(root, cfg.name, meta, s.flush_rows, s.flush_seconds, every_step=every_step, log=log),
        SlimFinishedTrials(),
    ]
    if not verbose:
        callbacks.append(StatusCallback(s.num_samples, objectives=s.objectives))
    return tune.RunConfig(
        name=cfg.name,
        storage_path=storage,
        callbacks=callbacks,
        failure_config=tune.FailureConfig(max_failures=3),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # small; PBT-style pruning loses them
        verbose=1 if verbose else 0,
    )


def histories(grid: Any, root: str) -> list[tuple[str, list[dict[str, Any]], str]]:
    """(trial_id, reported results the leaderboard lacks, status) for every trial Tune knows.

    A trial's progress file is read only when the leaderboard misses one of its iterations.
    """
    try:
        have = set(map(tuple, read_parts(root, lost=True)[["trial_id", "iteration"]].itertuples(index=False)))
    except LeaderboardError:  # no parts yet
        have = set()
    out = []
    for trial_id, status, r in trial_outcomes(grid):
        last = int((r.metrics or {}).get("training_iteration", 0))
        hist: list[dict[str, Any]] = []
        if any((trial_id, i) not in have for i in range(1, last + 1)):
            frame = r.metrics_dataframe
            hist = frame.to_dict("records") if frame is not None and len(frame) else [r.metrics]
        out.append((trial_id, hist, status))
    return out


def run_search(cfg: ExperimentConfig, *, resume: bool = False, verbose: bool = False) -> Any:
    """Run (or resume) the whole pipeline on the initialised Ray; returns (final table, root, calibration)."""
    started = time.monotonic()
    root = join(cfg.storage, cfg.name)
    if not exists(join(root, EXPERIMENT)):
        write_json(join(root, EXPERIMENT), {"config": cfg.to_dict(), "config_hash": cfg.hash()})
    budget = cfg.search.time_budget_s
    share = None if budget is None else cfg.search.teacher_share * budget - (time.monotonic() - started)
    teacher_uri = ensure_teacher(cfg, root, share)
    tuner = restore_tuner(cfg, root) if resume else None
    if tuner is not None:  # the leaderboard must agree with the restored experiment before the actor reads it
        reconcile(
            root, cfg.name, histories(tuner.get_results(), root), {"config": cfg.to_dict(), "config_hash": cfg.hash()}
        )
    elif exists(join(root, "leaderboard")):  # rows from a driver that died before Tune saved anything
        reconcile(root, cfg.name, [], {})
    actor = start_teacher_actor(cfg.to_dict(), teacher_uri, namespace_for(cfg), root)
    try:
        info = ray.get(actor.info.remote())
    except ray.exceptions.RayError as e:  # its start failed on bad input: one line naming the node
        raise (one_line(e) or e) from None
    meta = metadata(cfg, teacher_uri, info)
    if teacher_uri is not None:
        save_curriculum_png(cfg, actor, root)
    if tuner is None:  # the budget covers the teacher stage too; Tune stops what still runs when it is spent
        check_constraints(cfg)
        left = None if budget is None else max(1.0, budget - (time.monotonic() - started))
        tuner = build_tuner(cfg, root, meta, verbose, left)
    searching = time.monotonic()
    with tune_env(verbose, every_step=cfg.search.state_save == "step", trial_logs=cfg.search.trial_logs):
        grid = tuner.fit()
    wall = time.monotonic() - searching
    report_failures(grid)
    faults.pause("final")
    reconcile(root, cfg.name, histories(grid, root), meta)
    parts = read_parts(root)
    pairs = calibration_pairs(parts)
    meta["calibration"] = live_calibration(pairs)
    meta["phases"] = phase_split(parts, ray.cluster_resources().get("CPU"), wall)  # this run's search stage
    meta["calibration"]["actor_agrees"] = ray.get(actor.state.remote())["pairs"] == pairs
    final = write_final(root, meta)
    final.attrs["phases"] = meta["phases"]
    return final, root, meta["calibration"]


def check_constraints(cfg: ExperimentConfig) -> None:
    """Before the search: a latency device no node has is refused, and so are constraints almost no cell can
    meet (:meth:`CellCosts.check_share`); one line each."""
    if "latency_ms" in cfg.search.costs_needed:
        from cluster.latency import check_device, task_resources  # noqa: PLC0415  (lazy: latency-aware searches)

        spec = cfg.search.latency_spec
        check_device(spec, task_resources(spec))
    costs = cell_costs(cfg)
    if costs is not None and costs.constraints:
        share = costs.check_share(cfg.seed)
        print(f"search.constraints: {share:.0%} of a seeded sample of cells meet them", flush=True)


def report_failures(grid: Any) -> None:
    """Trials that failed on bad input, as one line each (node and cause); every trial failing is an error.

    A failure that is not an input error is a bug: Tune has logged its traceback, and the search goes on.
    """
    errors = [r.error for r in grid if r.error is not None]
    lines = sorted({str(one_line(e) or first_line(e)) for e in errors})
    if errors and len(errors) == len(grid):
        raise InputError(f"every trial failed ({len(errors)}); {lines[0]}")
    for line in lines:
        print(f"gtnnas: warning: trial(s) failed: {line}", file=sys.stderr, flush=True)


def restore_tuner(cfg: ExperimentConfig, root: str) -> Any:
    """The interrupted experiment's Tuner, or None when Tune had not saved its state yet."""
    fs, path = resolve(root)
    names = [i.base_name for i in fs.get_file_info(pafs.FileSelector(path))] if exists(root) else []
    if "tuner.pkl" not in names or not any(n.startswith("experiment_state-") for n in names):
        return None  # the driver died before Tune saved anything: nothing to restore
    tuner = tune.Tuner.restore(root, trainable=trainable_for(cfg), resume_unfinished=True, resume_errored=True)
    tuner.get_results()  # raises if the saved state cannot be read: a real problem, not a fresh start
    return tuner


def save_curriculum_png(cfg: ExperimentConfig, actor: Any, root: str) -> None:
    """``<experiment>/curriculum.png`` for the report, drawn once from the actor's curriculum."""
    target = join(root, "curriculum.png")
    if exists(target):
        return
    cur = fetch_curriculum(actor)
    names = ray.get(actor.info.remote()).get("class_names", [])
    with tempfile.TemporaryDirectory() as tmp:
        save_grid(cur, os.path.join(tmp, "curriculum.png"), class_names=names)
        upload(os.path.join(tmp, "curriculum.png"), target)
