"""Every GPU measurement of issue #15 in one script, for the few minutes a GPU is lent.

1. Seconds per outer step at the CPU presets' shapes (configs/gtn_fashion_cpu.yaml) and at the paper
   config (configs/gtn_mnist_paper.yaml with sampled NB201 learners), fp32 against bf16 autocast
   (``gtn.autocast``), same GPU, same seed.
2. Candidates scored per GPU-minute with 1, 2, 4 and 8 processes sharing one GPU (C=16, N=5 cells,
   T=32 curriculum, 2 learner seeds, 2,000 validation images), each capped at its share of memory.
3. ``gtnnas search --config configs/gpu.yaml`` with a small budget, end to end.

Writes $OUT/gpu.json (or benchmarks/results/gpu.json) and prints a table. ``--smoke`` runs tiny
shapes on the CPU to check the script itself (its figures are not GPU figures).

    python -m benchmarks.gpu [--smoke] [--seconds 40] [--out DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import provenance
from benchmarks._common import table
from search.config import GTNConfig, load_config
from search.curriculum import gtn_score, materialize
from search.data import load_dataset
from search.gtn import Teacher
from search.outer_loop import train_teacher
from search.space import sample

ROOT = Path(__file__).resolve().parents[1]


def outer_steps(config: str, overrides: list[str], steps: int, device: str) -> dict:
    cfg = load_config(
        ROOT / "configs" / config,
        [f"gtn.outer_steps={steps}", "gtn.validate_every=100000", "gtn.generator_init=random", *overrides],
    )
    d = cfg.data
    data = load_dataset(d.dataset, None, device=device, train_subset=d.train_subset or 20000, val_subset=500)
    times: list[float] = []
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    train_teacher(cfg, data, callback=lambda s: times.append(s.seconds))
    warm = times[2:] or times
    return {
        "config": config,
        "overrides": overrides,
        "steps": steps,
        "s_per_outer_step": sum(warm) / len(warm),
        "peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    }


def _scorer(rank: int, share: float, seconds: float, smoke: bool, queue: mp.Queue) -> None:
    device = "cuda" if torch.cuda.is_available() and not smoke else "cpu"
    if device == "cuda" and share < 1:
        torch.cuda.set_per_process_memory_fraction(share, 0)
    torch.set_num_threads(1)
    c, n, t, b = (4, 1, 4, 16) if smoke else (16, 5, 32, 128)
    data = load_dataset("fashion_mnist", None, device=device, train_subset=1000, val_subset=2000)
    cfg = GTNConfig(curriculum="pixels", inner_steps=t, inner_batch=b)
    cur = materialize(Teacher(cfg, data.shape, 10).to(device), dataset="fashion_mnist", mean=data.mean, std=data.std)
    rng = __import__("numpy").random.default_rng(rank)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        gtn_score(sample(rng), cur, data.val, seeds=2, val_size=2000, channels=c, cells=n)
        done += 1
    queue.put(done / (time.perf_counter() - start) * 60.0)


def packing(procs: int, seconds: float, smoke: bool) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_scorer, args=(i, 1.0 / procs, seconds, smoke, queue)) for i in range(procs)]
    for w in workers:
        w.start()
    rates = []
    for _ in workers:
        try:
            rates.append(queue.get(timeout=seconds + 300))  # start-up, then the measured window
        except Exception:  # a worker died (out of memory, ...): report what came back
            break
    for w in workers:
        w.join(timeout=30)
        if w.is_alive():
            w.kill()
    return {
        "processes": procs,
        "candidates_per_gpu_minute": sum(rates),
        "workers_reported": len(rates),
        "exitcodes": [w.exitcode for w in workers],
    }


def end_to_end(smoke: bool, storage: str) -> dict:
    extra = (
        [
            "gtn.outer_steps=2",
            "search.num_samples=4",
            "net.channels=4",
            "net.cells=1",
            "gtn.inner_steps=4",
            "gtn.inner_batch=16",
            "search.gpus_per_trial=0",
            "search.teacher_gpus=0",
            "search.real_steps=5",
            "retrain.top=0",
            "data.val_subset=500",
        ]
        if smoke
        else ["gtn.outer_steps=40", "search.num_samples=32", "retrain.top=1", "retrain.epochs=1"]
    )
    start = time.perf_counter()
    try:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "cluster.cli",
                "search",
                "--config",
                "configs/gpu.yaml",
                f"storage={storage}",
                "name=gpu_e2e",
                *extra,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
    except subprocess.TimeoutExpired as e:
        return {
            "returncode": None,
            "wall_seconds": time.perf_counter() - start,
            "overrides": extra,
            "tail": f"timed out after {e.timeout}s",
        }
    return {
        "returncode": out.returncode,
        "wall_seconds": time.perf_counter() - start,
        "overrides": extra,
        "tail": out.stdout[-1500:] + out.stderr[-800:],
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU: checks the script, not the GPU")
    ap.add_argument("--seconds", type=float, default=40.0, help="scoring time per packing level")
    ap.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "benchmarks" / "results")))
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args, reported=not args.smoke)  # a smoke run checks the script: a draft, whatever the tree

    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    steps = 4 if args.smoke else 12
    shapes = [
        ("gtn_fashion_cpu.yaml", []),
        (
            "gtn_mnist_paper.yaml",
            ["gtn.learner=sampled", "gtn.learner_norm=gtn_bn", "gtn.eval_bn=batch", "gtn.learner_channels=16"],
        ),
    ]
    if args.smoke:
        shapes = [
            (c, o + ["gtn.inner_steps=4", "gtn.inner_batch=16", "gtn.learner_channels=4", "data.train_subset=2000"])
            for c, o in shapes
        ]
    rows = []
    for config, overrides in shapes:
        for precision in ("none", "bf16"):
            r = outer_steps(config, overrides + [f"gtn.autocast={precision}", f"data.device={device}"], steps, device)
            rows.append({**r, "autocast": precision})
            print(f"{config} autocast={precision}: {r['s_per_outer_step']:.3f} s per outer step", flush=True)
    levels = (1, 2) if args.smoke else (1, 2, 4, 8)
    pack = [packing(k, args.seconds if not args.smoke else 3.0, args.smoke) for k in levels]
    with tempfile.TemporaryDirectory() as tmp:
        e2e = end_to_end(args.smoke, tmp)
    result = {
        "benchmark": "gpu",
        "smoke": args.smoke,
        "device": device,
        "outer_step": rows,
        "packing": pack,
        "end_to_end": e2e,
    }
    os.makedirs(args.out, exist_ok=True)
    path = Path(args.out) / ("gpu_smoke.json" if args.smoke else "gpu.json")
    provenance.write_result(path, result)
    print(table(rows, ["config", "autocast", "s_per_outer_step", "peak_mb"]))
    print(table(pack, ["processes", "candidates_per_gpu_minute"]))
    print(f"end to end: rc={e2e['returncode']} in {e2e['wall_seconds']:.0f}s; wrote {path}")


if __name__ == "__main__":
    main()
