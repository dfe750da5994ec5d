"""The one thin Tune trainable: six edge choices -> cell -> GTN score -> real-data rungs.

Iteration 1 reports the GTN score (the architecture trained on the shared curriculum, looked up in
the actor's cache first); iterations 2.. continue survivors with real-data training, ``real_steps``
SGD steps per rung, reporting validation accuracy. Every report but the last carries a checkpoint, so a trial
moved to another node or restored after a driver crash resumes from its last rung. ``score`` is
the metric the schedulers compare: the GTN score at rung 1, real validation accuracy after.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np

from cluster.actor import curriculum_from_arrays, get_teacher_actor
from search.space import EDGE_KEYS, Arch, parse


@lru_cache(maxsize=2)
def cached_dataset(name: str, root: str | None, split_seed: int, train_subset: int | None, val_subset: int | None,
             device: str) -> Any:
    from search.data import load_dataset

    return load_dataset(name, root, split_seed=split_seed, device=device, train_subset=train_subset,
                        val_subset=val_subset)


def _curriculum(actor: Any) -> tuple[Any, Any]:
    """(curriculum, validation split) from the actor's object-store refs; retried if the actor restarted."""
    import ray
    import torch

    from search.data import Split

    for attempt in range(3):
        try:
            cur_ref, val_ref = ray.get(actor.refs.remote())
            arrays, val = ray.get([cur_ref[0], val_ref[0]])
            return curriculum_from_arrays(arrays), Split(torch.from_numpy(np.array(val["x"])),
                                                          torch.from_numpy(np.array(val["y"])))
        except ray.exceptions.RayError:
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise RuntimeError("unreachable")


def nas_trainable(config: dict[str, Any], *, experiment: dict[str, Any], namespace: str) -> None:
    import ray
    import torch
    from ray import tune

    from search.config import config_from_dict
    from search.curriculum import score
    from search.nets import count_flops, count_params
    from search.train import net_for, train

    cfg = config_from_dict(experiment, "<trial>")
    s, d = cfg.search, cfg.data
    torch.set_num_threads(max(1, int(s.cpus_per_trial)))
    torch.set_flush_denormal(True)
    device = "cuda" if s.gpus_per_trial > 0 and torch.cuda.is_available() else "cpu"
    arch = Arch.from_dict({k: config[k] for k in EDGE_KEYS})
    actor = get_teacher_actor(namespace)
    base = {"arch": str(arch), "arch_hash": arch.equiv_hash(), "seed": cfg.seed, "config_hash": cfg.hash(),
            "node_ip": ray.util.get_node_ip_address()}

    ckpt = tune.get_checkpoint()
    state: dict[str, Any] = {}
    if ckpt is not None:
        with ckpt.as_directory() as folder:
            state = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=True)
    data = cached_dataset(d.dataset, d.root, d.split_seed, d.train_subset, d.val_subset, device)
    model = net_for(arch, cfg.net, data, cfg.seed)

    if "gtn" not in state:  # rung 1: the GTN score, cached by equivalence class in the actor
        t0 = time.perf_counter()
        cur, val = _curriculum(actor)
        fetch = time.perf_counter() - t0
        key = f"{arch.equiv_hash()}|{cur.content_hash}|{s.score_steps}|{cfg.net.channels}|{cfg.net.cells}|{cfg.seed}"
        cached = ray.get(actor.lookup.remote(key))
        if cached is None:  # score the class's canonical cell, so the cache never depends on trial order
            cached = score(parse(arch.canonical()), cur, val.to(device), steps=s.score_steps, seed=cfg.seed,
                           channels=cfg.net.channels, cells=cfg.net.cells, num_classes=data.num_classes)
            actor.store.remote(key, cached)
            hit = False
        else:
            hit = True
        state = {"rung": 1, "gtn": {"gtn_score": cached["gtn_score"], "gtn_val_loss": cached["val_loss"],
                                    "score_seconds": cached["seconds"]},
                 "params": count_params(model), "flops": count_flops(model), "curriculum": cur.content_hash}
        _report(state, {**base, "cached": hit, "score": cached["gtn_score"], "fetch_seconds": fetch},
                checkpoint=s.real_rungs > 0)

    if "model" in state:
        model.load_state_dict(state["model"])
    for rung in range(state["rung"] + 1, s.real_rungs + 2):
        step_cfg = replace(cfg.train, steps=s.real_steps)
        last = rung == s.real_rungs + 1
        res = train(model, data.train, step_cfg, seed=cfg.seed + rung, val=data.val, test=data.test if last else None)
        state = {**state, "rung": rung, "model": model.state_dict(),
                 "real_seconds": state.get("real_seconds", 0.0) + res.seconds}
        calib = ray.get(actor.record.remote(arch.equiv_hash(), state["gtn"]["gtn_score"], res.val_acc))
        extra = {"val_acc": res.val_acc, "val_loss": res.val_loss, "score": res.val_acc, **calib}
        if res.test_acc is not None:
            extra["test_acc"] = res.test_acc
        _report(state, {**base, **extra}, checkpoint=not last)


def _report(state: dict[str, Any], metrics: dict[str, Any], checkpoint: bool) -> None:
    """tune.report, with a checkpoint of everything needed to resume after this rung unless it is the last."""
    import torch
    from ray import tune

    row = {**metrics, **state["gtn"], "rung": state["rung"], "params": state["params"], "flops": state["flops"],
           "curriculum": state["curriculum"],
           "seconds": state["gtn"]["score_seconds"] + state.get("real_seconds", 0.0)}
    if not checkpoint:
        tune.report(row)
        return
    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, "state.pt"))
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))


def param_space() -> dict[str, Any]:
    """Six categorical edge choices, as Tune search-space objects (random search, Optuna, ...)."""
    from ray import tune

    from search.space import OPS

    return {k: tune.choice(list(OPS)) for k in EDGE_KEYS}
