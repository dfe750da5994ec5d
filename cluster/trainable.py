"""The one thin Tune trainable: six edge choices -> cell -> rung-1 score -> real rungs.

Iteration 1 reports the rung-1 score (``search.score``: the cell trained on the shared GTN
curriculum, or a zero-cost proxy), looked up in the actor's cache first and always computed on the
class's canonical cell, so equivalent cells share one score. Later iterations are the real rungs:
``real_steps`` SGD steps of real-data training each (``evaluator: real``), or one lookup in the
NAS-Bench-201 table charged 12 simulated epochs (``evaluator: nb201``). ``score`` is what the
schedulers compare (rung-1 score at rung 1, real validation accuracy after); ``rung1_score`` rides
along in every later result for the searchers. Real-data reports but the last carry a checkpoint, so a
trial moved to another node or restored after a driver crash resumes from its last rung.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from typing import Any

from cluster import faults
from cluster.actor import curriculum_from_arrays, get_teacher_actor, score_key
from cluster.entry import enter, naming_the_node
from search.space import EDGE_KEYS, Arch, parse


def _curriculum(actor: Any) -> tuple[Any, Any]:
    """(curriculum, validation split) from the actor's object-store refs; retried if the actor restarted."""
    import ray
    import torch

    from search.data import Split

    for attempt in range(3):
        try:
            cur_ref, val_ref = ray.get(actor.refs.remote())
            arrays, val = ray.get([cur_ref[0], val_ref[0]])
            return curriculum_from_arrays(arrays), Split(torch.as_tensor(val["x"]), torch.as_tensor(val["y"]))
        except ray.exceptions.RayError:
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise RuntimeError("unreachable")


def components_of(score: str) -> tuple[str, ...]:
    """The cheap scores a rung-1 setting needs: itself, or a calibrated combination's parts."""
    if score.startswith("calibrated:"):
        from search.combine import parse_components

        return parse_components(score)
    return (score,)


def rung1(cfg: Any, arch: Arch, actor: Any, data: Any, device: str) -> dict[str, Any]:
    """The rung-1 score of ``arch``'s class: each component from the actor's cache or computed now.

    A calibrated score (``calibrated:gtn+params``) is combined by the actor with the weights it has
    fitted so far on the search's own real results.
    """
    import ray

    s = cfg.search
    canonical = parse(arch.canonical())
    parts = components_of(s.score)
    cur, val, fetch = None, None, 0.0
    if "gtn" in parts:
        t0 = time.perf_counter()
        cur, val = _curriculum(actor)
        fetch = time.perf_counter() - t0
    curriculum = cur.content_hash if cur is not None else None
    key = score_key(cfg, arch.equiv_hash(), curriculum)
    cached = ray.get(actor.lookup.remote(key))
    hit = cached is not None
    if not hit:
        start = time.perf_counter()
        cached = {}
        for part in parts:
            cached.update(component(part, cfg, canonical, cur, val, data, device))
        cached["score_seconds"] = time.perf_counter() - start
        actor.store.remote(key, cached)
    value = cached[COLUMN.get(parts[0], parts[0])] if len(parts) == 1 else \
        ray.get(actor.combine.remote(arch.equiv_hash(), {p: cached[COLUMN.get(p, p)] for p in parts}))
    return {**cached, "rung1_score": value, "cached": hit, "fetch_seconds": fetch, "curriculum": curriculum}


COLUMN = {"gtn": "gtn_score"}  # the leaderboard column a component is stored in


def component(name: str, cfg: Any, canonical: Arch, cur: Any, val: Any, data: Any, device: str) -> dict[str, float]:
    """One cheap score of the canonical cell: the GTN score, or a zero-cost proxy (benchmark mode: NB201's net)."""
    s = cfg.search
    if name == "gtn":
        from search.curriculum import score

        m = score(canonical, cur, val.to(device), steps=s.score_steps, seed=cfg.seed, seeds=s.score_seeds,
                  val_size=s.score_val, channels=cfg.net.channels, cells=cfg.net.cells, num_classes=data.num_classes)
        return {"gtn_score": m["gtn_score"], "gtn_val_loss": m["val_loss"]}
    if s.evaluator == "nb201":
        from search import nb201

        value = nb201.proxy(canonical, name)
        return {name: int(value) if name in ("params", "flops") else value}
    from search.proxies import ProxyContext, make_proxy

    ctx = ProxyContext(net=cfg.net, shape=data.shape, num_classes=data.num_classes, data=data, seed=cfg.seed)
    value = make_proxy(name).score_many([canonical], ctx)[0][0]
    return {name: int(value) if name in ("params", "flops") else value}


def nas_trainable(config: dict[str, Any], *, experiment: dict[str, Any], namespace: str) -> None:
    """One trial: its cell's rung-1 score, then its real rungs (see the module docstring)."""
    with naming_the_node("a trial"):
        _trial(config, experiment, namespace)


def _trial(config: dict[str, Any], experiment: dict[str, Any], namespace: str) -> None:
    import ray
    from ray import tune

    started = time.time()
    s = experiment["search"]
    real = s["evaluator"] == "real"
    me = enter(experiment, "trial", threads=s["cpus_per_trial"], gpu_share=s["gpus_per_trial"],
               uses_torch=real or s["score"] != "none")  # benchmark mode with table lookups never needs torch
    cfg, device = me.cfg, me.device
    s = cfg.search
    faults.pause("trial")
    arch = Arch.from_dict({k: config[k] for k in EDGE_KEYS})
    actor = get_teacher_actor(namespace)
    base = {"arch": str(arch), "arch_hash": arch.equiv_hash(), "seed": cfg.seed, "config_hash": cfg.hash(),
            "node_ip": ray.util.get_node_ip_address(), "node_id": ray.get_runtime_context().get_node_id()[:8],
            "device": device, "started": started,
            "gpus": ",".join(map(str, ray.get_gpu_ids()))}

    ckpt = tune.get_checkpoint() if real else None  # benchmark mode keeps no checkpoints: a rerun is free
    state: dict[str, Any] = {"rung": 0, "extra": {}, "real_seconds": 0.0}
    if ckpt is not None:
        import torch

        with ckpt.as_directory() as folder:
            state = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=True)
    data = me.data() if real or {"gtn", "naswot", "jacob_cov"} & set(components_of(s.score)) else None
    model = None
    if real:
        from search.nets import count_flops, count_params
        from search.train import net_for

        model = net_for(arch, cfg.net, data, cfg.seed)
        if "params" not in state["extra"]:  # the size of the class's canonical cell, as rung-1 proxies see it
            canonical = net_for(parse(arch.canonical()), cfg.net, data, cfg.seed)
            state["extra"].update(params=count_params(canonical), flops=count_flops(canonical))
    checkpoint = real and s.real_rungs > 0

    if s.score != "none" and state["rung"] < 1:
        r1 = rung1(cfg, arch, actor, data, device)
        state["rung"], state["extra"] = 1, {**state["extra"], **r1}
        _report(state, {**base, "score": r1["rung1_score"]}, checkpoint=checkpoint)

    if model is not None and "model" in state:
        model.load_state_dict(state["model"])
    first_real = s.rungs - s.real_rungs + 1
    for rung in range(max(state["rung"] + 1, first_real), s.rungs + 1):
        last = rung == s.rungs
        if real:
            from search.train import train

            res = train(model, data.train, replace(cfg.train, steps=s.real_steps), seed=cfg.seed + rung,
                        val=data.val, test=data.test if last else None)
            metrics = {"val_acc": res.val_acc, "val_loss": res.val_loss, "test_acc": res.test_acc}
            state = {**state, "model": model.state_dict(), "real_seconds": state["real_seconds"] + res.seconds}
        else:
            metrics = _lookup(arch, actor)
        state["rung"] = rung
        score1 = state["extra"].get("rung1_score")
        calib = ray.get(actor.record.remote(arch.equiv_hash(), score1, metrics["val_acc"])) if score1 is not None else {}
        _report(state, {**base, **{k: v for k, v in metrics.items() if v is not None}, "score": metrics["val_acc"],
                        **calib}, checkpoint=checkpoint and not last)


def _lookup(arch: Arch, actor: Any) -> dict[str, Any]:
    """Benchmark mode's real rung: the table, once per equivalence class (later equivalent cells reuse it)."""
    import ray

    from search import nb201

    mine = {**nb201.lookup(arch), "sim_epochs": float(nb201.EPOCHS)}
    first, new = ray.get(actor.first_result.remote(arch.equiv_hash(), mine))
    return first if new else {**first, "sim_epochs": 0.0, "cached": True}


def _report(state: dict[str, Any], metrics: dict[str, Any], checkpoint: bool) -> None:
    """tune.report, with a checkpoint of everything needed to resume after this rung unless told not to."""
    from ray import tune

    row = {**state["extra"], **metrics, "rung": state["rung"],
           "seconds": state["extra"].get("score_seconds", 0.0) + state["real_seconds"]}
    if not checkpoint:
        tune.report(row)
        return
    import torch

    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, "state.pt"))
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))


def param_space() -> dict[str, Any]:
    """Six categorical edge choices, as Tune search-space objects (for Tune's own searchers)."""
    from ray import tune

    from search.space import OPS

    return {k: tune.choice(list(OPS)) for k in EDGE_KEYS}

