"""The search driver: teacher stage -> shared actor -> Tune trials -> leaderboard.

Runs on whatever Ray is initialised (embedded local, or a cluster via ``--address``). ``resume``
restores an interrupted experiment with ``Tuner.restore`` after recreating the actor, which Tune
does not do itself (driver-side actors are not part of Tune's state).
"""

from __future__ import annotations

import os
from typing import Any

from cluster.actor import start_teacher_actor
from cluster.callbacks import LeaderboardCallback
from cluster.leaderboard import reconcile, write_final
from cluster.searchers import make_searcher
from cluster.storage import exists, join, upload
from cluster.trainable import nas_trainable, param_space
from search.config import ExperimentConfig


def namespace_for(cfg: ExperimentConfig) -> str:
    return f"gtnnas-{cfg.name}"


def metadata(cfg: ExperimentConfig, teacher_uri: str, curriculum: dict[str, Any]) -> dict[str, Any]:
    import ray

    from search.teach import versions

    return {"config": cfg.to_dict(), "config_hash": cfg.hash(), "versions": {**versions(), "ray": ray.__version__},
            "teacher": teacher_uri, "curriculum": curriculum}


def _meta_train_task(experiment: dict[str, Any], target: str, threads: int) -> str:
    """Ray task: meta-train a teacher with ``experiment``'s gtn settings and store it at ``target``."""
    import tempfile

    import torch

    from search.config import config_from_dict
    from search.data import load_dataset
    from search.teach import save_teacher, train_teacher

    cfg = config_from_dict(experiment, "<teacher stage>")
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    d = cfg.data
    data = load_dataset(d.dataset, d.root, split_seed=d.split_seed, train_subset=d.train_subset, val_subset=d.val_subset)

    def log(s: Any) -> None:
        if s.val_acc is not None or s.step == 1:
            print(f"teacher stage: outer step {s.step}/{cfg.gtn.outer_steps} meta-loss {s.meta_loss:.4f}"
                  + (f" val-acc {s.val_acc:.4f}" if s.val_acc is not None else ""), flush=True)

    teacher = train_teacher(cfg, data, callback=log)
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "teacher.pt")
        save_teacher(local, teacher, cfg, data, cfg.gtn.outer_steps)
        upload(local, target)
    return target


def ensure_teacher(cfg: ExperimentConfig, root: str) -> str:
    """The configured teacher, else the experiment's own (meta-trained now if it is not there yet)."""
    import ray

    if cfg.search.teacher:
        return cfg.search.teacher
    target = join(root, "teacher.pt")
    if exists(target):
        return target
    cpus = int(max(1.0, min(ray.available_resources().get("CPU", 1.0), 8.0)))  # one node's worth at most
    task = ray.remote(num_cpus=cpus, num_gpus=cfg.search.teacher_gpus)(_meta_train_task)
    print(f"no teacher given: meta-training one first ({cfg.gtn.outer_steps} outer steps) -> {target}", flush=True)
    return ray.get(task.remote(cfg.to_dict(), target, cpus))


def trainable_for(cfg: ExperimentConfig) -> Any:
    """The trainable with this experiment's settings and resources (for new and restored runs alike)."""
    from ray import tune

    return tune.with_resources(
        tune.with_parameters(nas_trainable, experiment=cfg.to_dict(), namespace=namespace_for(cfg)),
        {"cpu": cfg.search.cpus_per_trial, "gpu": cfg.search.gpus_per_trial},
    )


def build_tuner(cfg: ExperimentConfig, root: str, meta: dict[str, Any]) -> Any:
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    s = cfg.search
    searcher = make_searcher(s.searcher, metric="gtn_score", mode="max", population=s.population,
                             tournament=s.tournament, seed=cfg.seed, max_concurrent=s.max_concurrent)
    if s.scheduler == "asha" and s.real_rungs > 0:
        scheduler: Any = ASHAScheduler(time_attr="training_iteration", max_t=1 + s.real_rungs, grace_period=1,
                                       reduction_factor=s.reduction_factor)
    else:
        scheduler = FIFOScheduler()
    callback = LeaderboardCallback(root, cfg.name, meta, s.flush_rows, s.flush_seconds)
    space = {} if s.searcher == "evolution" else param_space()
    storage = cfg.storage if "://" in cfg.storage else os.path.abspath(cfg.storage)
    return tune.Tuner(
        trainable_for(cfg),
        param_space=space,
        tune_config=tune.TuneConfig(metric="score", mode="max", search_alg=searcher, scheduler=scheduler,
                                    num_samples=s.num_samples, reuse_actors=True,
                                    max_concurrent_trials=s.max_concurrent or None),
        run_config=tune.RunConfig(
            name=cfg.name, storage_path=storage, callbacks=[callback],
            failure_config=tune.FailureConfig(max_failures=3),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # small; PBT-style pruning loses them
            verbose=int(os.environ.get("GTNNAS_TUNE_VERBOSE", "1")),
        ),
    )


def run_search(cfg: ExperimentConfig, *, resume: bool = False) -> Any:
    """Run (or resume) the whole pipeline on the initialised Ray; returns the final leaderboard (pandas)."""
    import ray
    from ray import tune

    root = join(cfg.storage, cfg.name)
    teacher_uri = ensure_teacher(cfg, root)
    actor = start_teacher_actor(cfg.to_dict(), teacher_uri, namespace_for(cfg), cfg.search.teacher_gpus)
    info = ray.get(actor.info.remote())
    meta = metadata(cfg, teacher_uri, info)
    if resume:
        tuner = tune.Tuner.restore(root, trainable=trainable_for(cfg), resume_unfinished=True, resume_errored=True)
    else:
        tuner = build_tuner(cfg, root, meta)
    grid = tuner.fit()
    histories = []
    for r in grid:
        if r.metrics and "trial_id" in r.metrics:
            frame = r.metrics_dataframe
            hist = frame.to_dict("records") if frame is not None else [r.metrics]
            histories.append((r.metrics["trial_id"], hist, "ERROR" if r.error else "TERMINATED"))
    calib = ray.get(actor.calibration.remote())
    meta = {**meta, "calibration": calib}
    reconcile(root, cfg.name, histories, meta)
    return write_final(root, meta), root, calib
