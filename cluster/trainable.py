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
from cluster.actor import fetch_curriculum, get_teacher_actor
from cluster.entry import enter, naming_the_node
from results.phases import PHASES, column
from search import nb201
from search.config import ExperimentConfig
from search.evaluators import evaluator
from search.scoring import Scorer
from search.shapes import InputSpec
from search.space import EDGE_KEYS, OPS, Arch, parse


def components(
    cfg: ExperimentConfig,
    scorer: Scorer,
    arch: Arch,
    *,
    data: Any = None,
    curriculum: Any = None,
    inputs: Any = None,
) -> dict[str, float]:
    """``scorer``'s components of ``arch``: read from NAS-Bench-201's tables in benchmark mode (no torch),
    else computed on networks of the searched shape (:func:`search.proxy_specs.components`)."""
    if cfg.search.evaluation.looks_up:
        return nb201.components(scorer, arch)
    from search.proxy_specs import components as computed  # noqa: PLC0415  (lazy: benchmark-mode trials run without torch)

    return computed(scorer, arch, net=cfg.net, data=data, curriculum=curriculum, seed=cfg.seed, inputs=inputs)


def rung1(cfg: Any, scorer: Scorer, arch: Arch, actor: Any, data: Any) -> dict[str, Any]:
    """The rung-1 score of ``arch``'s class: its components from the actor's cache or computed now.

    A combined score is ranked by the actor among the classes scored so far (the scheduler compares
    rung-1 scores on the ranking of the moment).
    """
    cur, fetch = None, 0.0
    if scorer.uses_gtn:
        t0 = time.perf_counter()
        cur = fetch_curriculum(actor)
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
        Trial(config, experiment, namespace).run()


class Trial:
    """One trial's steps: coming in (entry, cell, resumed state, data), the rung-1 score, the real rungs."""

    def __init__(self, config: dict[str, Any], experiment: dict[str, Any], namespace: str):
        started, t0 = time.time(), time.perf_counter()
        s = experiment["search"]
        trains = evaluator(s["evaluator"]).trains
        me = enter(
            experiment,
            "trial",
            threads=s["cpus_per_trial"],
            gpu_share=s["gpus_per_trial"],
            uses_torch=trains or not Scorer.parse(s["score"]).none,
        )  # benchmark mode with table lookups never needs torch
        self.cfg, self.scorer = me.cfg, me.cfg.search.scorer
        faults.pause("trial")
        self.arch = Arch.from_dict({k: config[k] for k in EDGE_KEYS})
        self.actor = get_teacher_actor(namespace)
        self.base = {
            "arch": str(self.arch),
            "arch_hash": self.arch.equiv_hash(),
            "seed": self.cfg.seed,
            "config_hash": self.cfg.hash(),
            "node_ip": ray.util.get_node_ip_address(),
            "node_id": ray.get_runtime_context().get_node_id()[:8],
            "device": me.device,
            "started": started,
            "gpus": ",".join(map(str, ray.get_gpu_ids())),
        }
        self.state = _restored() if trains else _fresh()  # benchmark mode keeps no checkpoints: a rerun is free
        self.clock = Clock(self.state["phases"], self.cfg.search.cpus_per_trial, t0)
        self.clock.lap("startup")
        self.data = me.data() if trains or self.scorer.needs_data else None
        self.clock.lap("data")
        self.rungs: RealTraining | TableLookup = (
            RealTraining(self.cfg, self.data, self.arch, self.state) if trains else TableLookup(self.arch, self.actor)
        )
        self.state["extra"].update(costs(self.cfg, self.arch, self.state["extra"], self.data))
        self.clock.lap("startup")

    def run(self) -> None:
        s = self.cfg.search
        checkpoint = self.rungs.checkpoints and s.real_rungs > 0
        if not self.scorer.none and self.state["rung"] < 1:
            r1 = rung1(self.cfg, self.scorer, self.arch, self.actor, self.data)
            self.state["rung"], self.state["extra"] = 1, {**self.state["extra"], **r1}
            self.clock.lap("score")
            _report(self.state, {**self.base, "score": r1["rung1_score"]}, checkpoint=checkpoint)
        first_real = s.rungs - s.real_rungs + 1
        for rung in range(max(self.state["rung"] + 1, first_real), s.rungs + 1):
            self.clock.restart()
            last = rung == s.rungs
            metrics = self.rungs.rung(rung, last, self.state, self.clock)
            self.state["rung"] = rung
            score1 = self.state["extra"].get("rung1_score")
            calib = (
                ray.get(self.actor.record.remote(self.arch.equiv_hash(), score1, metrics["val_acc"]))
                if score1 is not None
                else {}
            )
            row = {**self.base, **{k: v for k, v in metrics.items() if v is not None}, "score": metrics["val_acc"]}
            _report(self.state, {**row, **calib}, checkpoint=checkpoint and not last)


def costs(cfg: ExperimentConfig, arch: Arch, known: dict[str, Any], inputs: Any) -> dict[str, float]:
    """The cell's costs every report carries (what objectives and the scheduler read): params and FLOPs
    (benchmark mode: NAS-Bench-201's table for its network; real rungs count them when they build the
    network), and latency_ms from the latency table when the objectives or constraints name it."""
    out: dict[str, float] = {}
    canonical = parse(arch.canonical())
    if "params" not in known and cfg.search.evaluation.looks_up:
        out.update({k: int(nb201.proxy(canonical, k)) for k in ("params", "flops")})
    if "latency_ms" in cfg.search.costs_needed and "latency_ms" not in known:
        from cluster.costs import CellCosts  # noqa: PLC0415  (lazy: only latency-aware searches)

        shape = None if inputs is None else InputSpec(inputs.shape, inputs.num_classes)
        out["latency_ms"] = CellCosts(cfg, shape).latency_of(canonical)
    return out


def _fresh() -> dict[str, Any]:
    return {"rung": 0, "extra": {}, "real_seconds": 0.0, "phases": dict.fromkeys(PHASES, 0.0)}


def _restored() -> dict[str, Any]:
    """The state of the last rung's checkpoint (a moved or restored trial), else a fresh one."""
    ckpt = tune.get_checkpoint()
    if ckpt is None:
        return _fresh()
    import torch  # noqa: PLC0415  (lazy: benchmark-mode trials run without torch)

    with ckpt.as_directory() as folder:
        state = torch.load(os.path.join(folder, "state.pt"), map_location="cpu", weights_only=True)
    state.setdefault("phases", dict.fromkeys(PHASES, 0.0))
    return state


class RealTraining:
    """Real rungs: ``search.real_steps`` of SGD each on the data set, the weights kept between rungs."""

    checkpoints = True

    def __init__(self, cfg: ExperimentConfig, data: Any, arch: Arch, state: dict[str, Any]):
        from search.nets import count_flops, count_params, net_from  # noqa: PLC0415  (lazy: torch, real rungs only)

        self.cfg, self.data = cfg, data
        device = data.train.x.device
        self.model = net_from(arch, cfg.net, data, seed=cfg.seed, device=device)
        if "params" not in state["extra"]:  # the size of the class's canonical cell, as rung-1 proxies see it
            canonical = net_from(parse(arch.canonical()), cfg.net, data, seed=cfg.seed, device=device)
            state["extra"].update(params=count_params(canonical), flops=count_flops(canonical))
        if "model" in state:
            self.model.load_state_dict(state["model"])

    def rung(self, rung: int, last: bool, state: dict[str, Any], clock: Clock) -> dict[str, Any]:
        from search.train import train  # noqa: PLC0415  (lazy: torch, real rungs only)

        s, data = self.cfg.search, self.data
        res = train(
            self.model,
            data.train,
            replace(self.cfg.train, steps=s.real_steps),
            seed=self.cfg.seed + rung,
            val=data.val,
            test=data.test if last else None,
        )
        state.update(model=self.model.state_dict(), real_seconds=state["real_seconds"] + res.seconds)
        clock.add("train", res.seconds - res.eval_seconds)
        clock.add("eval", res.eval_seconds)
        return {"val_acc": res.val_acc, "val_loss": res.val_loss, "test_acc": res.test_acc}


class TableLookup:
    """Benchmark mode's real rung: NAS-Bench-201's table, once per equivalence class (later equivalent cells
    reuse the class's first result, at no simulated cost)."""

    checkpoints = False

    def __init__(self, arch: Arch, actor: Any):
        self.arch, self.actor = arch, actor

    def rung(self, rung: int, last: bool, state: dict[str, Any], clock: Clock) -> dict[str, Any]:
        mine = {**nb201.lookup(self.arch), "sim_epochs": float(nb201.EPOCHS)}
        first, new = ray.get(self.actor.first_result.remote(self.arch.equiv_hash(), mine))
        clock.lap("eval")
        return first if new else {**first, "sim_epochs": 0.0, "cached": True}


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
