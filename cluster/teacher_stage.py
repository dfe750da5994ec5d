"""The search's first stage: find the experiment's teacher in a teacher store, or meta-train one.

A teacher depends on its data set and teacher settings only (:func:`search.teacher_key.teacher_key`), not on
the search, so it is trained once and reused: a search looks for ``<key>.pt`` among the teachers
shipped with the package (``search/teachers/``), then in the teacher store (``search.teacher_store``;
by default ``<storage>/teachers`` when the storage is remote, else ``~/.cache/gtnnas/teachers``). Only
when none matches is one meta-trained, as one Ray task that checkpoints every
``gtn.checkpoint_every`` outer steps to ``<experiment>/teacher.pt.state`` (so a crashed or resumed
search continues where it stopped), and then filed in the store for the next search, unless a time
budget cut its meta-training short (``search.teacher_share``): a cut teacher stays in the experiment.
``search.teacher: fresh`` meta-trains even when one matches (a new data set's first search).
The experiment keeps its own copy as ``<experiment>/teacher.pt``.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import ray

from cluster.entry import enter, naming_the_node, one_line
from cluster.tune_compat import node_cpus
from results.storage import exists, join, local_copy, remove, upload
from search.config import ExperimentConfig
from search.data import data_identity
from search.errors import CheckpointError
from search.outer_loop import train_teacher
from search.teacher_files import load_teacher, save_teacher
from search.teacher_key import teacher_key

SHIPPED = Path(__file__).resolve().parents[1] / "search" / "teachers"


def store_uri(cfg: ExperimentConfig) -> str:
    """Where teachers are filed: ``search.teacher_store``, else beside remote storage, else the user's cache."""
    if cfg.search.teacher_store:
        return cfg.search.teacher_store
    if "://" in cfg.storage:
        return join(cfg.storage, "teachers")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return str(cache / "gtnnas" / "teachers")


def find_teacher(cfg: ExperimentConfig) -> str | None:
    """The shipped or stored teacher meta-trained with ``cfg``'s settings, checked; None when there is none.

    A file under the right name that is corrupt or holds another key is refused with one line
    (:class:`CheckpointError`): it is not silently replaced.
    """
    key = teacher_key(cfg)
    for uri in (str(SHIPPED / f"{key}.pt"), join(store_uri(cfg), f"{key}.pt")):
        if exists(uri):
            check_stored(uri, key, data_identity(cfg.data))
            return uri
    return None


def check_stored(uri: str, key: str, dataset: str) -> None:
    """A stored teacher must load and carry the key it is filed under."""
    with local_copy(uri) as path:
        loaded = load_teacher(path, expect_dataset=dataset)
    if loaded.key != key:
        raise CheckpointError(
            f"{uri}: filed as teacher {key} but meta-trained with other settings "
            f"({loaded.key or 'no key recorded'}); delete it or set search.teacher"
        )


def file_teacher(cfg: ExperimentConfig, uri: str) -> str:
    """Copy the teacher at ``uri`` (meta-trained with ``cfg``'s settings) into the store; its place there."""
    filed = join(store_uri(cfg), f"{teacher_key(cfg)}.pt")
    with local_copy(uri) as path:
        upload(path, filed)
    return filed


def _meta_train_task(
    experiment: dict[str, Any], target: str, threads: int, deadline: float | None = None
) -> dict[str, Any]:
    """Ray task: meta-train (or continue meta-training) a teacher and store it at ``target``.

    With a ``deadline`` (epoch seconds) meta-training is cut to end by then (:func:`train_teacher`'s
    ``seconds``); the cut teacher is saved under the outer steps it ran, so its key says what it is."""
    with naming_the_node("the teacher stage"):
        me = enter(experiment, "teacher stage", threads=threads, gpu_share=experiment["search"]["teacher_gpus"])
        cfg, data = me.cfg, me.data()
    print(f"teacher stage: on node {me.node} ({me.device}), {cfg.data.dataset} {me.data_origin()}", flush=True)
    last, ran, least = [0.0], [0], [cfg.gtn.outer_steps]

    def log(s: Any) -> None:
        ran[0] = s.step
        least[0] = s.least_plan if s.least_plan is not None else least[0]
        if s.val_acc is not None or time.monotonic() - last[0] >= 10.0 or s.step == cfg.gtn.outer_steps:
            last[0] = time.monotonic()
            held = f", held-out acc {s.val_acc:.4f}" if s.val_acc is not None else ""
            print(
                f"teacher stage: outer step {s.step}/{cfg.gtn.outer_steps}, meta-loss {s.meta_loss:.4f}{held}",
                flush=True,
            )

    state_uri = target + ".state"
    with tempfile.TemporaryDirectory() as tmp:
        local_state = os.path.join(tmp, "teacher.state.pt")
        if exists(state_uri):
            with local_copy(state_uri) as path:
                shutil.copyfile(path, local_state)
            print(f"teacher stage: continuing from {state_uri}", flush=True)
        with naming_the_node("the teacher stage"):  # a state file of other settings is an input error
            teacher = train_teacher(
                cfg,
                data,
                callback=log,
                checkpoint=local_state,
                on_checkpoint=lambda p: upload(str(p), state_uri),
                seconds=None if deadline is None else deadline - time.time(),
            )
        local = os.path.join(tmp, "teacher.pt")
        cut = least[0] < cfg.gtn.outer_steps  # a schedule shortened even once is not the configured teacher
        made = replace(cfg, gtn=replace(cfg.gtn, outer_steps=ran[0])) if cut else cfg
        limit = {"time_limited": {"outer_steps_configured": cfg.gtn.outer_steps, "ran": ran[0]}} if cut else None
        save_teacher(local, teacher, made, data, ran[0], provenance=limit)
        upload(local, target)
    remove(state_uri)
    return {
        "teacher": target,
        "node": me.node,
        "data": me.data_origin(),
        "device": me.device,
        "steps": ran[0],
        "cut": cut,
    }


def task_cpus(nodes: list[tuple[float, float]], most: int = 8) -> int:
    """CPUs for the meta-training task, given every node's (total, free) CPUs: as many as one node has free
    now, at most ``most``, at least 1. Asking for a node's total instead would wait for all its CPUs,
    forever once Ray has lost one (a placement group removed while Ray prepared it keeps what it had
    reserved: ray-project/ray#64693, seen in this project's tests after benchmark-mode Tune runs)."""
    free = max((min(total, avail) for total, avail in nodes), default=1.0)
    return int(max(1, min(math.floor(free + 1e-9), most)))


def wait_for(ref: Any, cpus: int, note_every: float = 60.0, slice_s: float = 1.0) -> Any:
    """``ray.get`` in one-second slices: a plain ``ray.get`` holds signals for as long as it waits, so
    Ctrl-C (or a test's time limit) would act only when the task ends. Says every ``note_every`` seconds
    while no node has the task's CPUs free."""
    last = time.monotonic()
    while True:
        try:
            ready, _ = ray.wait([ref], timeout=slice_s)
        except SystemError as e:  # Ray's C code hands back a signal handler's exception (Ctrl-C) wrapped
            raise (e.__cause__ or e) from None
        if ready:
            return ray.get(ref)
        if time.monotonic() - last >= note_every:
            last = time.monotonic()
            most = max((free for _, free in node_cpus()), default=0.0)
            if most < cpus:
                print(f"teacher stage: waiting for {cpus} free CPUs on one node (most free now: {most:g})", flush=True)


def ensure_teacher(cfg: ExperimentConfig, root: str, seconds: float | None = None) -> str | None:
    """The experiment's teacher: configured, already its own, found in a store, or meta-trained now.

    Meta-training takes at most ``seconds`` (the run's ``teacher_share`` of its budget); a teacher cut
    short by them is not the configured one, so it stays in the experiment and is not filed."""
    s = cfg.search
    if not s.uses_gtn:
        return None
    if s.teacher not in (None, "fresh"):
        return s.teacher
    target = join(root, "teacher.pt")
    if exists(target):
        return target
    found = find_teacher(cfg) if s.teacher is None else None
    if found is not None:
        with local_copy(found) as path:
            upload(path, target)
        print(f"teacher stage: reusing teacher {teacher_key(cfg)} from {found}", flush=True)
        return target
    cpus = task_cpus(node_cpus())
    task = ray.remote(num_cpus=cpus, num_gpus=s.teacher_gpus)(_meta_train_task)
    print(
        f"teacher stage: no stored teacher {teacher_key(cfg)}; meta-training one ({cfg.gtn.outer_steps} "
        f"outer steps) -> {target}",
        flush=True,
    )
    deadline = None if seconds is None else time.time() + seconds
    try:
        done = wait_for(task.remote(cfg.to_dict(), target, cpus, deadline), cpus)
    except ray.exceptions.RayTaskError as e:
        raise (one_line(e) or e) from None
    if done["cut"]:
        few = (
            " (too few for a good curriculum: raise search.time_budget_s or teacher_share)"
            if done["steps"] < 10
            else ""
        )
        print(
            f"teacher stage: cut to {done['steps']} of {cfg.gtn.outer_steps} outer steps{few} to fit "
            f"search.teacher_share of the time budget ({seconds or 0:.0f} s); kept in the experiment, not filed "
            "in the teacher store",
            flush=True,
        )
        return target
    filed = file_teacher(cfg, target)
    print(f"teacher stage: filed as {filed} (node {done['node']} meta-trained it, data {done['data']})", flush=True)
    return target
