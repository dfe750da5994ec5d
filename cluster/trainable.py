"""The one thin Tune trainable: six edge choices -> cell -> rung-1 score -> real rungs.

Iteration 1 reports the rung-1 score (``search.score``, parsed once into a :class:`search.scoring.Scorer`:
the cell trained on the shared GTN curriculum, a zero-cost proxy, or their combination),
looked up in the actor's cache first and always computed on the class's canonical cell, so equivalent
cells share one score. Later iterations are the real rungs: ``real_steps`` SGD steps of real-data
training each (``evaluator: real``), or one lookup in the NAS-Bench-201 table charged 12 simulated
epochs (``evaluator: nb201``). ``score`` is what the schedulers compare (rung-1 score at rung 1, real
validation accuracy after); ``rung1_score`` rides along in every later result for the searchers.
Real-data reports but the last carry a checkpoint, so a trial moved to another node or restored after
a driver crash resumes from its last rung. Every report carries the trial's core-seconds so far by
phase (``cs_startup``, ``cs_data``, ``cs_score``, ``cs_train``, ``cs_eval``: wall seconds times the
trial's CPUs), which the status line and the report add up.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import replace
from typing import Any

import ray
from ray import tune

from cluster import faults
from cluster.actor import curriculum_from_arrays, get_teacher_actor
from cluster.entry import enter, naming_the_node
from results.phases import PHASES, column
from search import nb201
from search.config import ExperimentConfig
from search.scoring import Scorer
from search.space import EDGE_KEYS, OPS, Arch, parse


def _curriculum(actor: Any) -> Any:
    """The curriculum from the actor's object-store ref; retried if the actor restarted."""
    for attempt in range(3):
        try:
            (ref,) = ray.get(actor.refs.remote())
            return curriculum_from_arrays(ray.get(ref))
        except ray.exceptions.RayError:
            if attempt == 2:
                raise
            time.sleep(1.0)
    raise RuntimeError("unreachable")


def components(
    cfg: ExperimentConfig,
    scorer: Scorer,
    arch: Arch,
    *,
    data: Any = None,
    curriculum: Any = None,
    shape: tuple[int, int, int] | None = None,
) -> dict[str, float]:
    """``scorer``'s components of ``arch``: read from NAS-Bench-201's tables in benchmark mode (no torch),
    else computed on networks of the searched shape (:func:`search.proxy_specs.components`)."""
    if cfg.search.evaluator == "nb201":
        return nb201.components(scorer, arch)
    from search.proxy_specs import components as computed  # noqa: PLC0415  (lazy: benchmark-mode trials run without torch)

    return computed(scorer, arch, net=cfg.net, data=data, curriculum=curriculum, seed=cfg.seed, shape=shape)


def rung1(cfg: Any, scorer: Scorer, arch: Arch, actor: Any, data: Any) -> dict[str, Any]:
    """The rung-1 score of ``arch``'s class: its components from the actor's cache or computed now.

    A combined score is ranked by the actor among the classes scored so far (the scheduler compares
    rung-1 scores on the ranking of the moment).
    """
    cur, fetch = None, 0.0
    if scorer.uses_gtn:
        t0 = time.perf_counter()
        cur = _curriculum(actor)
        fetch = time.perf_counter() - t0
    curriculum = cur.content_hash if cur is not None else None
    key = scorer.key(arch.equiv_hash(), curriculum, cfg.net, cfg.seed)
    cached = ray.get(actor.lookup.remote(key))
    hit = cached is not None
    if not hit:
        start = time.perf_counter()
        cached = components(cfg, scorer, parse(arch.canonical()), data=data, curriculum=cur)
        cached["score_seconds"] = time.perf_counter() - start
        actor.store.remote(key, cached)
    parts = {c: cached[c] for c in scorer.columns}
    value = ray.get(actor.combine.remote(arch.equiv_hash(), parts)) if scorer.combined else scorer.value(parts)
    return {**cached, "rung1_score": value, "cached": hit, "fetch_seconds": fetch, "curriculum": curriculum}


def nas_trainable(config: dict[str, Any], *, experiment: dict[str, Any], namespace: str) -> None:
    """One trial: its cell's rung-1 score, then its real rungs (see the module docstring)."""
    with naming_the_node("a trial"):
        _trial(config, experiment, namespace)


def _trial(config: dict[str, Any], experiment: dict[str, Any], namespace: str) -> None:
    started, t0 = time.time(), time.perf_counter()
    s = experiment["search"]
    real = s["evaluator"] == "real"
    me = enter(
        experiment,
        "trial",
        threads=s["cpus_per_trial"],
        gpu_share=s["gpus_per_trial"],
        uses_torch=real or s["score"] != "none",
    )  # benchmark mode with table lookups never needs torch
    cfg = me.cfg
    s, scorer = cfg.search, cfg.search.scorer
    faults.pause("trial")
    arch = Arch.from_dict({k: config[k] for k in EDGE_KEYS})
    actor = get_teacher_actor(namespace)
    base = {
        "arch": str(arch),
        "arch_hash": arch.equiv_hash(),
        "seed": cfg.seed,
        "config_hash": cfg.hash(),
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": ray.get_runtime_context().get_node_id()[:8],
        "device": me.device,
        "started": started,
        "gpus": ",".join(map(str, ray.get_gpu_ids())),
    }

    ckpt = tune.get_checkpoint() if real else None  # benchmark mode keeps no checkpoints: a rerun is free
    state: dict[str, Any] = {"rung": 0, "extra": {}, "real_seconds": 0.0, "phases": dict.fromkeys(PHASES, 0.0)}
    if ckpt is not None:
        import torch  # noqa: PLC0415  (lazy: benchmark-mode trials run without torch)

        with ckpt.as_directory() as folder:
            state = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=True)
    clock = Clock(state.setdefault("phases", dict.fromkeys(PHASES, 0.0)), s.cpus_per_trial, t0)
    clock.lap("startup")
    data = me.data() if real or scorer.needs_data else None
    clock.lap("data")
    model = None
    if real:
        from search.nets import (  # noqa: PLC0415  (lazy: torch, real rungs only)
            count_flops,
            count_params,
            net_from,  # noqa: PLC0415  (lazy: torch, real rungs only)
        )

        assert data is not None  # real rungs load the data set
        device = data.train.x.device
        model = net_from(arch, cfg.net, data, seed=cfg.seed, device=device)
        if "params" not in state["extra"]:  # the size of the class's canonical cell, as rung-1 proxies see it
            canonical = net_from(parse(arch.canonical()), cfg.net, data, seed=cfg.seed, device=device)
            state["extra"].update(params=count_params(canonical), flops=count_flops(canonical))
    checkpoint = real and s.real_rungs > 0
    clock.lap("startup")

    if not scorer.none and state["rung"] < 1:
        r1 = rung1(cfg, scorer, arch, actor, data)
        state["rung"], state["extra"] = 1, {**state["extra"], **r1}
        clock.lap("score")
        _report(state, {**base, "score": r1["rung1_score"]}, checkpoint=checkpoint)

    if model is not None and "model" in state:
        model.load_state_dict(state["model"])
    first_real = s.rungs - s.real_rungs + 1
    for rung in range(max(state["rung"] + 1, first_real), s.rungs + 1):
        clock.restart()
        last = rung == s.rungs
        if real:
            from search.train import train  # noqa: PLC0415  (lazy: torch, real rungs only)

            assert model is not None and data is not None  # built above for real rungs
            res = train(
                model,
                data.train,
                replace(cfg.train, steps=s.real_steps),
                seed=cfg.seed + rung,
                val=data.val,
                test=data.test if last else None,
            )
            metrics = {"val_acc": res.val_acc, "val_loss": res.val_loss, "test_acc": res.test_acc}
            state = {**state, "model": model.state_dict(), "real_seconds": state["real_seconds"] + res.seconds}
            clock.add("train", res.seconds - res.eval_seconds)
            clock.add("eval", res.eval_seconds)
        else:
            metrics = _lookup(arch, actor)
            clock.lap("eval")
        state["rung"] = rung
        score1 = state["extra"].get("rung1_score")
        calib = (
            ray.get(actor.record.remote(arch.equiv_hash(), score1, metrics["val_acc"])) if score1 is not None else {}
        )
        _report(
            state,
            {**base, **{k: v for k, v in metrics.items() if v is not None}, "score": metrics["val_acc"], **calib},
            checkpoint=checkpoint and not last,
        )


class Clock:
    """Core-seconds by phase: each lap's wall seconds times the trial's CPUs, added to ``phases``."""

    def __init__(self, phases: dict[str, float], cpus: float, t0: float | None = None):
        self.phases, self.cpus = phases, cpus
        self.t = time.perf_counter() if t0 is None else t0

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.add(phase, now - self.t)
        self.t = now

    def add(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds * self.cpus

    def restart(self) -> None:
        self.t = time.perf_counter()


def _lookup(arch: Arch, actor: Any) -> dict[str, Any]:
    """Benchmark mode's real rung: the table, once per equivalence class (later equivalent cells reuse it)."""
    mine = {**nb201.lookup(arch), "sim_epochs": float(nb201.EPOCHS)}
    first, new = ray.get(actor.first_result.remote(arch.equiv_hash(), mine))
    return first if new else {**first, "sim_epochs": 0.0, "cached": True}


def _report(state: dict[str, Any], metrics: dict[str, Any], checkpoint: bool) -> None:
    """tune.report, with a checkpoint of everything needed to resume after this rung unless told not to."""
    row = {
        **state["extra"],
        **metrics,
        "rung": state["rung"],
        "seconds": state["extra"].get("score_seconds", 0.0) + state["real_seconds"],
        **{column(k): v for k, v in state["phases"].items()},
    }
    if not checkpoint:
        tune.report(row)
        return
    import torch  # noqa: PLC0415  (lazy: benchmark-mode trials keep no checkpoints and run without torch)

    with tempfile.TemporaryDirectory() as folder:
        torch.save(state, os.path.join(folder, "state.pt"))
        tune.report(row, checkpoint=tune.Checkpoint.from_directory(folder))


def param_space() -> dict[str, Any]:
    """Six categorical edge choices, as Tune search-space objects (for Tune's own searchers)."""
    return {k: tune.choice(list(OPS)) for k in EDGE_KEYS}
