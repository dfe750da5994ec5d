"""Is a trained teacher useful? Few-step test accuracy on its curriculum against real data at equal steps.

Takes a checkpoint made by ``gtnnas gtn train --config configs/gtn_*_cpu.yaml`` and trains fresh copies
of the held-out architecture (``gtn.validate_arch``, the config's C and N) for the curriculum's T
steps of batch B, over several seeds, then tests them on the official test split. The comparison is
real data with the same T, B, momentum and normalisation and the best fixed learning rate of a
small sweep (picked on validation, as in benchmarks/gtn_few_step.py); each seed draws its own real batches. Writes
benchmarks/results/gtn_preset_<config name>.json and prints a table.

    python -m benchmarks.gtn_preset runs/gtn_fashion_cpu/teacher.pt [--seeds 5] [--train-log metrics.csv]
"""

from __future__ import annotations

import argparse
import csv
import statistics

import torch

from benchmarks import provenance
from benchmarks._common import real_baseline, table, write
from search.curriculum import gtn_score
from search.data import load_dataset
from search.space import parse
from search.teacher_files import load_teacher

LRS = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def stats(xs: list[float]) -> dict:
    return {
        "mean_test_acc": statistics.mean(xs),
        "std_test_acc": statistics.pstdev(xs),
        "seeds": len(xs),
        "test_accs": xs,
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("teacher")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-log", help="the run's metrics.csv: its wall time and held-out curve go in the JSON")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    torch.set_num_threads(args.threads)
    lt = load_teacher(args.teacher)
    cfg, g = lt.config, lt.config.gtn
    data = load_dataset(lt.dataset, cfg.data.root, split_seed=cfg.data.split_seed)
    arch, net = parse(g.validate_arch), dict(channels=cfg.net.channels, cells=cfg.net.cells)
    cur = lt.curriculum(real=data.train)
    gtn = [gtn_score(arch, cur, data.test, seed=s, **net)["gtn_score"] for s in range(args.seeds)]

    overrides = [
        f"gtn.inner_steps={g.inner_steps}",
        f"gtn.inner_batch={g.inner_batch}",
        f"gtn.init_momentum={g.init_momentum}",
        f"gtn.learner_norm={g.learner_norm}",
        f"gtn.eval_bn={g.eval_bn}",
    ]
    lr, real = real_baseline(arch, data, overrides, LRS, args.seeds, **net)
    results = {"gtn": stats(gtn), "real_best_lr": {**stats(real), "lr": lr}}
    train = {}
    if args.train_log:
        with open(args.train_log) as f:
            rows = list(csv.DictReader(f))
        train = {
            "meta_train_seconds": sum(float(r["seconds"]) for r in rows),
            "held_out_val_acc": [(int(r["step"]), float(r["val_acc"])) for r in rows if r.get("val_acc")],
        }
    path = write(
        f"gtn_preset_{cfg.name}",
        {
            "teacher": str(args.teacher),
            "config": cfg.to_dict(),
            "dataset": lt.dataset,
            "outer_steps": lt.outer_steps,
            "steps": g.inner_steps,
            "batch": g.inner_batch,
            "eval_arch": g.validate_arch,
            "results": results,
            "gtn_minus_real": results["gtn"]["mean_test_acc"] - results["real_best_lr"]["mean_test_acc"],
            **train,
        },
    )
    rows = [
        {"curriculum": k, "mean": v["mean_test_acc"], "std": v["std_test_acc"], "seeds": v["seeds"]}
        for k, v in results.items()
    ]
    print(table(rows, ["curriculum", "mean", "std", "seeds"]))
    print(f"{lt.dataset}, T={g.inner_steps}, B={g.inner_batch}, real lr {lr}; JSON: {path}")


if __name__ == "__main__":
    main()
