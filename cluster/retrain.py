"""Retrain and export what a search found: ``gtnnas retrain EXPERIMENT --top K --epochs E --seeds S``.

The top-k distinct cells of the experiment's final table (one per equivalence class, by validation
accuracy), or with ``--pareto`` its Pareto front, are trained with a full schedule, one Tune trial per
(cell, seed), each as its class's canonical cell (:func:`deployed`: the cell the search's costs describe).
Results land next to the leaderboard: ``final.parquet`` (one row per cell: seeds, mean and spread of
validation and test accuracy, params, FLOPs, seconds), ``best_model.pt`` (the state dict
of the best run, with its cell and config; loads with ``torch.load(weights_only=True)``) and
``best_model.pt2``, a ``torch.export`` program (any batch size) that loads with ``torch.export.load``
and no trace of this package, with its input shape and normalisation in ``best_model.json`` and inside
the archive (``extra_files``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import replace
from typing import Any

import pandas as pd
import pyarrow as pa
import torch
from ray import tune

from cluster.entry import enter, naming_the_node
from cluster.grid import run_grid
from cluster.latency import exported_latency
from results.analysis import front, front_objectives, load
from results.storage import exists, join, local_copy, storage_path, upload, write_json, write_parquet
from search.config import ExperimentConfig, config_from_dict
from search.errors import InputError, first_line
from search.nets import count_flops, count_params, net_from
from search.pareto import parse_objectives
from search.shapes import InputSpec
from search.space import Arch, parse
from search.train import train

RUNS = "retrain"  # <experiment>/retrain/<arch_hash>-s<seed>.pt: every run's weights


def plan(root: str, top: int | None = 3, pareto: str | None = None) -> tuple[ExperimentConfig, list[dict[str, Any]]]:
    """(the experiment's config, the final-table rows to retrain); one line if impossible.

    The top ``top`` classes by validation accuracy, or with ``pareto`` (exclusive with ``top``) the front:
    the cells with a real-data score and ``pareto_rank`` 0 under the experiment's own objectives
    (``pareto=""``) or the ones named (``"val_acc:max,params:min"``), best first by the first objective.
    """
    if pareto is not None and top is not None:
        raise InputError("--top and --pareto are exclusive: retrain the top K cells or the front, not both")
    if top is not None and top < 1:
        raise InputError(f"--top must be >= 1, got {top}")
    if not exists(join(root, "experiment.json")) or not exists(join(root, "leaderboard.parquet")):
        raise InputError(f"{root}: no finished experiment here (needs experiment.json and leaderboard.parquet)")
    try:
        with local_copy(join(root, "experiment.json")) as path, open(path) as f:
            cfg = config_from_dict(json.load(f)["config"], f"{root}/experiment.json")
    except (ValueError, KeyError, TypeError) as e:  # not JSON, or not ours
        raise InputError(f"{root}/experiment.json: not an experiment description ({first_line(e)})") from None
    if not cfg.search.evaluation.trains:
        raise InputError(
            f"{root}: a benchmark-mode experiment (its cells were looked up, not trained on "
            f"{cfg.data.dataset}); nothing to retrain"
        )
    table = load(root).dropna(subset=["val_acc"])
    if pareto is not None:
        return cfg, _front_rows(table, pareto or cfg.search.objectives, own=not pareto)
    top = 3 if top is None else top
    if len(table) < top:
        raise InputError(f"--top {top}: the experiment has only {len(table)} cell(s) with a real-data score")
    rows = table.sort_values("val_acc", ascending=False, kind="mergesort").head(top)
    return cfg, rows.to_dict("records")


def _front_rows(table: Any, objectives: str, own: bool) -> list[dict[str, Any]]:
    """The Pareto front of ``table`` under ``objectives`` (two or more), best first by the first one."""
    if own and len(parse_objectives(objectives)) < 2:
        raise InputError(
            f"--pareto: the experiment was a single-objective search ({objectives}); name the front's "
            "objectives, e.g. --pareto val_acc:max,params:min"
        )
    rows = front(table, front_objectives(objectives, list(table.columns)))
    if rows.empty:
        raise InputError(f"--pareto {objectives}: no cell with a real-data score has every objective's value")
    return rows.to_dict("records")


def check_budget(epochs: float, seeds: int) -> None:
    if epochs <= 0 or seeds < 1:
        raise InputError(f"--epochs must be > 0 and --seeds >= 1, got {epochs} and {seeds}")


def deployed(arch: Arch) -> Arch:
    """The cell that is retrained and exported for a found cell: its class's canonical cell (dead edges
    removed), the one the search's params, FLOPs and latency describe, so the exported model meets the
    budget the search was held to and runs no edge that cannot reach the output."""
    return parse(arch.canonical())


def retrain_trainable(config: dict[str, Any], *, experiment: dict[str, Any], root: str) -> None:
    """One (cell, seed): train the full schedule, store the weights, report the figures."""
    s = experiment["search"]
    with naming_the_node("a retraining trial"):
        me = enter(experiment, "retrain", threads=s["cpus_per_trial"], gpu_share=s["gpus_per_trial"])
        cfg, data = me.cfg, me.data()
    found, seed = parse(config["job"]["arch"]), int(config["job"]["seed"])
    arch = deployed(found)
    model = net_from(arch, cfg.net, data, seed=seed, device=data.device)
    res = train(model, data.train, cfg.train, seed=seed, val=data.val, test=data.test)
    target = join(root, RUNS, f"{arch.equiv_hash()}-s{seed}.pt")
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "w.pt")
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, local)
        upload(local, target)
        write_json(os.path.join(tmp, "c.json"), confusion(model, data))
        upload(os.path.join(tmp, "c.json"), target.removesuffix(".pt") + ".confusion.json")
    tune.report(
        {
            **data_info(data),
            "arch": str(found),
            "arch_hash": arch.equiv_hash(),
            "seed": seed,
            "val_acc": res.val_acc,
            "test_acc": res.test_acc,
            "params": count_params(model),
            "flops": count_flops(model),
            "seconds": res.seconds,
            "steps": res.steps,
            "weights": target,
        }
    )


def data_info(data: Any) -> dict[str, Any]:
    """What an exported model's input is, from the data it was trained on: shape, normalisation, classes."""
    return {
        "input_shape": [1, *data.shape],
        "mean": list(data.mean),
        "std": list(data.std),
        "class_names": list(data.class_names) or [str(i) for i in range(data.num_classes)],
        "data_id": data.identity,
    }


@torch.no_grad()
def confusion(model: torch.nn.Module, data: Any, batch: int = 1000) -> dict[str, Any]:
    """The test split's confusion matrix (rows: true class, columns: predicted) and per-class accuracy."""
    model.eval()
    k = data.num_classes
    matrix = torch.zeros(k, k, dtype=torch.int64)
    for i in range(0, len(data.test), batch):
        x, y = data.test.x[i : i + batch], data.test.y[i : i + batch]
        pred = model(x).argmax(1).cpu()
        matrix += torch.bincount(y.cpu() * k + pred, minlength=k * k).reshape(k, k)
    per_class = (matrix.diag() / matrix.sum(1).clamp(min=1)).tolist()
    names = list(data.class_names) or [str(i) for i in range(k)]
    return {"class_names": names, "matrix": matrix.tolist(), "per_class_acc": per_class}


def run_retrain(root: str, *, top: int | None, epochs: float, seeds: int, pareto: str | None = None) -> Any:
    """Retrain the top ``top`` cells (or with ``pareto`` the front, :func:`plan`) of the experiment at ``root``;
    returns the final table (pandas)."""
    check_budget(epochs, seeds)
    cfg, rows = plan(root, top, pareto)  # the final training uses all of the data, whatever the search used
    cfg = replace(
        cfg,
        train=replace(cfg.train, epochs=epochs, steps=None),
        data=replace(cfg.data, train_subset=None, val_subset=None),
    )
    results = run_grid(
        tune.with_parameters(retrain_trainable, experiment=cfg.to_dict(), root=root),
        [{"arch": r["arch"], "seed": s} for r in rows for s in range(seeds)],
        stage="retrain",
        name=f"{cfg.name}-retrain-{time.strftime('%Y%m%d-%H%M%S')}",
        storage=storage_path(cfg.storage),
        cpus=cfg.search.cpus_per_trial,
        gpus=cfg.search.gpus_per_trial,
    )
    runs = pd.DataFrame(results)
    rank = {r["arch"]: i + 1 for i, r in enumerate(rows)}
    final = runs.groupby(["arch", "arch_hash"], as_index=False).agg(
        seeds=("seed", "nunique"),
        val_acc=("val_acc", "mean"),
        val_acc_std=("val_acc", "std"),
        test_acc=("test_acc", "mean"),
        test_acc_std=("test_acc", "std"),
        params=("params", "first"),
        flops=("flops", "first"),
        seconds=("seconds", "sum"),
    )
    final["search_rank"] = final["arch"].map(rank)
    final["epochs"] = float(epochs)
    final = final.sort_values("val_acc", ascending=False, kind="mergesort").reset_index(drop=True)
    best = runs.sort_values("val_acc", ascending=False, kind="mergesort").iloc[0]
    latency = export(cfg, root, best)
    write_parquet(
        pa.Table.from_pandas(final, preserve_index=False),
        join(root, "final.parquet"),
        {"config": cfg.to_dict(), "best": {"arch": best["arch"], "seed": int(best["seed"])}},
    )
    final.attrs["latency"] = latency  # set after the write: pyarrow would copy attrs into the file's metadata
    return final


def export(cfg: ExperimentConfig, root: str, best: Any) -> dict[str, Any] | None:
    """``best_model.pt`` (state dict + cell + config), ``best_model.pt2`` (torch.export), ``best_model.json``
    (the input it takes: size, channels, normalisation, class names) and the best run's ``confusion.json``.

    When the search was held to latency (a ``latency_ms`` constraint or objective), the network and the
    exported program are timed on its device (:func:`cluster.latency.exported_latency`) and ``best_model.json``
    carries both under ``latency``, with whether the program meets the bounds; returned as well (else None).
    """
    arch = deployed(parse(best["arch"]))
    input_shape, names = [int(v) for v in best["input_shape"]], list(best["class_names"])
    net = net_from(arch, cfg.net, InputSpec((input_shape[1], input_shape[2], input_shape[3]), len(names)))
    with local_copy(best["weights"]) as path:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    net.eval()
    info = {
        "arch": str(arch),
        "arch_hash": arch.equiv_hash(),
        "seed": int(best["seed"]),
        "dataset": cfg.data.dataset,
        "data_id": best["data_id"],
        "input_shape": input_shape,
        "input_range": "pixels in [0, 1], then (x - mean) / std, per channel",
        "mean": [float(v) for v in best["mean"]],
        "std": [float(v) for v in best["std"]],
        "num_classes": len(names),
        "class_names": names,
        "val_acc": float(best["val_acc"]),
        "test_acc": float(best["test_acc"]),
        "channels": cfg.net.channels,
        "cells": cfg.net.cells,
        "norm": cfg.net.norm,
        "config_hash": cfg.hash(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        torch.save(
            {"format": "gtnnas-model", "state_dict": net.state_dict(), **info}, os.path.join(tmp, "best_model.pt")
        )
        example = torch.zeros(2, *input_shape[1:])
        program = torch.export.export(net, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}})
        torch.export.save(program, os.path.join(tmp, "best_model.pt2"), extra_files={"gtnnas.json": json.dumps(info)})
        write_json(os.path.join(tmp, "best_model.json"), info)
        for name in ("best_model.pt", "best_model.pt2", "best_model.json"):
            upload(os.path.join(tmp, name), join(root, name))
        latency = timed(cfg, root)  # from the files just uploaded, where the device is (nodes share no disk)
        if latency is not None:  # written again with it: until then the JSON already matches the new program
            write_json(os.path.join(tmp, "best_model.json"), {**info, "latency": latency})
            upload(os.path.join(tmp, "best_model.json"), join(root, "best_model.json"))
    with local_copy(best["weights"].removesuffix(".pt") + ".confusion.json") as path:
        upload(path, join(root, "confusion.json"))
    return latency


def timed(cfg: ExperimentConfig, root: str) -> dict[str, Any] | None:
    """The exported model at ``root`` timed where the search's latency device is (network and program), with
    whether the program meets the search's latency bounds; None for a search not held to latency."""
    if "latency_ms" not in cfg.search.costs_needed:
        return None
    latency = exported_latency(cfg, root)
    bounds = [c for c in cfg.search.constraint_list if c.name == "latency_ms"]
    latency["bounds"] = [c.describe() for c in bounds]
    latency["program_meets_bounds"] = all(c.holds(latency["program_ms"]) for c in bounds)
    return latency
