"""Few-step learning: test accuracy of a fresh learner after T inner steps on each curriculum.

For MNIST and Fashion-MNIST: a teacher is meta-trained for each of the ``full``, ``none`` and
``real`` curricula (same settings, same budget), then a fresh NB201 cell (the held-out validation
architecture) is trained for T steps on it, over several seeds, and tested on the official test set.
``real_best_lr`` is plain real data with the best fixed learning rate of a small sweep (picked on the
validation split). Also: seconds per outer step, and peak memory of one outer step for T = 16..128
with per-step checkpointing on and off (each in a fresh subprocess). Writes
benchmarks/results/gtn_few_step.json and prints tables; ``--memory-only`` measures memory alone and
writes benchmarks/results/gtn_few_step_memory.json (no figure of another run is carried over).

    python -m benchmarks.gtn_few_step [--outer-steps 60] [--seeds 5] [--steps 32] [--batch 32]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks import provenance
from benchmarks._common import real_baseline, table, write
from search.config import load_config
from search.curriculum import gtn_score, materialize
from search.data import load_dataset
from search.outer_loop import train_teacher
from search.space import parse


def overrides(args: argparse.Namespace, curriculum: str, dataset: str) -> list[str]:
    return [
        f"data.dataset={dataset}",
        f"gtn.curriculum={curriculum}",
        f"gtn.inner_steps={args.steps}",
        f"gtn.inner_batch={args.batch}",
        f"gtn.outer_steps={args.outer_steps}",
        "gtn.meta_lr=0.02",
        "gtn.init_lr=0.1",
        "gtn.grad_clip=1.0",
        "gtn.checkpointing=false",
        "gtn.validate_every=100000",
        f"gtn.learner_channels={args.channels}",
        f"net.channels={args.channels}",
        "net.cells=1",
    ]


def test_accuracy(cur, data, cfg, seeds: int) -> list[float]:
    arch = parse(cfg.gtn.validate_arch)
    return [
        gtn_score(arch, cur, data.test, seed=s, channels=cfg.net.channels, cells=cfg.net.cells)["gtn_score"]
        for s in range(seeds)
    ]


def best_real_lr(args: argparse.Namespace, data, dataset: str) -> tuple[float, list[float]]:
    """Real batches, fixed lr/momentum (no meta-learning): sweep lr on validation, report test."""
    return real_baseline(
        parse(load_config(None).gtn.validate_arch),
        data,
        overrides(args, "real", dataset),
        (0.01, 0.03, 0.1, 0.3, 1.0),
        args.seeds,
        channels=args.channels,
    )


MEMORY_PROBE = """
import gc, os, resource, sys, torch
torch.set_num_threads(2)
from search.config import load_config
from search.data import load_dataset
from search.outer_loop import train_teacher
t, ck = int(sys.argv[1]), sys.argv[2] == "on"
data = load_dataset("mnist", train_subset=2000, val_subset=100)
gc.collect()
before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024  # RSS, KiB
cfg = load_config(None, ["data.dataset=mnist", f"gtn.inner_steps={t}", "gtn.inner_batch=16", "gtn.outer_steps=1",
                         "gtn.learner_channels=4", "net.channels=4", "gtn.validate_every=100000",
                         f"gtn.checkpointing={'true' if ck else 'false'}", "gtn.meta_batch=64"])
train_teacher(cfg, data)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def memory(ts: list[int]) -> list[dict]:
    rows = []
    for t in ts:
        for ck in ("on", "off"):
            out = subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, str(t), ck],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            peak = float(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else float("nan")
            rows.append({"T": t, "checkpointing": ck, "peak_extra_mb": peak, "batch": 16, "learner_channels": 4})
    return rows


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outer-steps", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=32, help="inner steps T")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--datasets", default="mnist,fashion_mnist")
    ap.add_argument("--memory-ts", default="16,32,64,128")
    ap.add_argument("--memory-only", action="store_true", help="measure memory alone; writes gtn_few_step_memory.json")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    if args.memory_only:
        mem = memory([int(t) for t in args.memory_ts.split(",")])
        path = write("gtn_few_step_memory", {"memory": mem})
        print(table(mem, ["T", "checkpointing", "peak_extra_mb"]))
        print(f"\nwrote {path}")
        return
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    results: dict = {}
    rows = []
    for dataset in args.datasets.split(","):
        data = load_dataset(dataset)
        results[dataset] = {}
        for curriculum in ("full", "none", "real"):
            cfg = load_config(None, overrides(args, curriculum, dataset))
            times: list[float] = []
            start = time.perf_counter()
            teacher = train_teacher(cfg, data, callback=lambda s, times=times: times.append(s.seconds))
            took = time.perf_counter() - start
            cur = materialize(teacher, dataset=dataset, mean=data.mean, std=data.std, real=data.train, seed=0)
            accs = test_accuracy(cur, data, cfg, args.seeds)
            results[dataset][curriculum] = {
                "mean_test_acc": statistics.mean(accs),
                "std_test_acc": statistics.pstdev(accs),
                "seeds": args.seeds,
                "steps": args.steps,
                "test_accs": accs,
                "outer_steps": args.outer_steps,
                "seconds_per_outer_step": statistics.mean(times),
                "meta_train_seconds": took,
                "final_lr": cur.lr.tolist()[-1],
            }
            rows.append(
                {
                    "dataset": dataset,
                    "curriculum": curriculum,
                    **{
                        k: results[dataset][curriculum][k]
                        for k in ("mean_test_acc", "std_test_acc", "seconds_per_outer_step")
                    },
                }
            )
            print(rows[-1], flush=True)
        lr, accs = best_real_lr(args, data, dataset)
        results[dataset]["real_best_lr"] = {
            "mean_test_acc": statistics.mean(accs),
            "std_test_acc": statistics.pstdev(accs),
            "seeds": args.seeds,
            "steps": args.steps,
            "test_accs": accs,
            "lr": lr,
        }
        rows.append(
            {
                "dataset": dataset,
                "curriculum": f"real_best_lr (lr={lr})",
                "mean_test_acc": statistics.mean(accs),
                "std_test_acc": statistics.pstdev(accs),
                "seconds_per_outer_step": 0.0,
            }
        )
        print(rows[-1], flush=True)
    mem = memory([int(t) for t in args.memory_ts.split(",")]) if args.memory_ts else []
    settings = {k: v for k, v in vars(args).items()}
    path = write(
        "gtn_few_step",
        {"settings": settings, "results": results, "memory": mem, "eval_arch": load_config(None).gtn.validate_arch},
    )
    print(table(rows, ["dataset", "curriculum", "mean_test_acc", "std_test_acc", "seconds_per_outer_step"]))
    if mem:
        print()
        print(table(mem, ["T", "checkpointing", "peak_extra_mb"]))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
