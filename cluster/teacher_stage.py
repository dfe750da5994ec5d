"""The search's first stage: meta-train the experiment's teacher as one Ray task, resumably.

The task checkpoints every ``gtn.checkpoint_every`` outer steps to ``<experiment>/teacher.pt.state``
(any pyarrow.fs URI), so a crashed or resumed search continues meta-training where it stopped; the
finished teacher is ``<experiment>/teacher.pt`` and the state file is removed.
"""

from __future__ import annotations

import os
from typing import Any

from results.storage import exists, join, local_copy, remove, upload
from search.config import ExperimentConfig


def _meta_train_task(experiment: dict[str, Any], target: str, threads: int) -> str:
    """Ray task: meta-train (or continue meta-training) a teacher and store it at ``target``."""
    import shutil
    import tempfile
    import time

    import torch

    from cluster.device import granted_device
    from search.config import config_from_dict
    from search.data import load_dataset
    from search.teach import save_teacher, train_teacher

    cfg = config_from_dict(experiment, "<teacher stage>")
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)
    d = cfg.data
    data = load_dataset(d.dataset, d.root, split_seed=d.split_seed, train_subset=d.train_subset,
                        val_subset=d.val_subset, device=granted_device())
    last = [0.0]

    def log(s: Any) -> None:
        if s.val_acc is not None or time.monotonic() - last[0] >= 10.0 or s.step == cfg.gtn.outer_steps:
            last[0] = time.monotonic()
            held = f", held-out acc {s.val_acc:.4f}" if s.val_acc is not None else ""
            print(f"teacher stage: outer step {s.step}/{cfg.gtn.outer_steps}, meta-loss {s.meta_loss:.4f}{held}",
                  flush=True)

    state_uri = target + ".state"
    with tempfile.TemporaryDirectory() as tmp:
        local_state = os.path.join(tmp, "teacher.state.pt")
        if exists(state_uri):
            with local_copy(state_uri) as path:
                shutil.copyfile(path, local_state)
            print(f"teacher stage: continuing from {state_uri}", flush=True)
        teacher = train_teacher(cfg, data, callback=log, checkpoint=local_state,
                                on_checkpoint=lambda p: upload(str(p), state_uri))
        local = os.path.join(tmp, "teacher.pt")
        save_teacher(local, teacher, cfg, data, cfg.gtn.outer_steps)
        upload(local, target)
    remove(state_uri)
    return target


def ensure_teacher(cfg: ExperimentConfig, root: str) -> str | None:
    """The configured teacher, else the experiment's own (meta-trained now, or continued, if not there yet)."""
    import ray

    if not cfg.search.uses_gtn:
        return None
    if cfg.search.teacher:
        return cfg.search.teacher
    target = join(root, "teacher.pt")
    if exists(target):
        return target
    biggest = max((n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")), default=1.0)
    cpus = int(max(1.0, min(biggest, 8.0)))  # one task runs on one node: at most that node's CPUs
    task = ray.remote(num_cpus=cpus, num_gpus=cfg.search.teacher_gpus)(_meta_train_task)
    print(f"teacher stage: meta-training a teacher ({cfg.gtn.outer_steps} outer steps) -> {target}", flush=True)
    return ray.get(task.remote(cfg.to_dict(), target, cpus))
