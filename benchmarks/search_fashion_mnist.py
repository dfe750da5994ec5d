"""End to end on real data: four search strategies at an equal wall-clock budget on 2 cores (issue #14).

On Fashion-MNIST at the CPU job's network (C=8, N=1), each strategy runs `gtnnas search` with
``search.time_budget_s`` (the teacher stage counts against the GTN search's budget; with
``--shared-teacher`` one teacher is meta-trained first and each GTN run's budget is cut by its share
of that time), for several seeds, one after another on an embedded 2-CPU Ray:
- ``gtn``: the default job (configs/default.yaml): the GTN score at rung 1, ASHA, evolution;
- ``real_asha``: real-data-only ASHA: 100 real SGD steps as rung 1, then two more rungs of 100;
- ``zero_cost``: ``search.score`` = a zero-cost proxy at rung 1 (no teacher), then the real rungs;
- ``random_real``: random cells, each trained 400 real steps (FIFO).
Each run's top cell (by validation accuracy) is retrained with the truth protocol (1 epoch, 2 seeds)
and placed among the truth table's cells. Writes benchmarks/results/search_fashion_mnist.json.

    python benchmarks/search_fashion_mnist.py [--minutes 8] [--seeds 3] [--strategies gtn,real_asha,...] [--keep DIR] [--shared-teacher]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import table, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRUTH = ROOT / "benchmarks" / "truth" / "fashion_mnist.parquet"
STRATEGIES = {
    "gtn": [],
    "real_asha": ["search.score=none", "search.real_rungs=3", "search.real_steps=100"],
    "zero_cost": ["search.score=naswot"],
    "random_real": ["search.score=none", "search.searcher=random", "search.scheduler=fifo", "search.real_rungs=2"],
}


def meta_train(storage: Path) -> tuple[str, float]:
    """One teacher of the default config (seed 0), for the GTN runs to share; returns (path, seconds)."""
    out = storage / "teacher"
    start = time.perf_counter()
    tr = subprocess.run([sys.executable, "-m", "cluster.cli", "gtn", "train", "--config", "configs/default.yaml",
                         "--threads", "2", f"out={out}", "seed=0"], cwd=ROOT, capture_output=True, text=True)
    if tr.returncode != 0:
        raise RuntimeError(f"meta-training the shared teacher failed: {tr.stderr[-2000:]}")
    return str(out / "teacher.pt"), time.perf_counter() - start


def run(strategy: str, seed: int, minutes: float, storage: Path, teacher: tuple[str, float] | None = None,
        share: int = 1) -> dict:
    """One search and the retraining of its top cell; a GTN run given ``teacher`` reuses it and its
    budget is cut by the teacher's seconds / ``share`` (the runs sharing it)."""
    name = f"{strategy}_s{seed}"
    budget = minutes * 60
    extra = []
    if strategy == "gtn" and teacher is not None:
        budget -= teacher[1] / share
        extra = [f"search.teacher={teacher[0]}"]
    cmd = [sys.executable, "-m", "cluster.cli", "search", "--config", "configs/default.yaml", "--num-cpus", "2",
           f"storage={storage}", f"name={name}", f"seed={seed}", "search.num_samples=100000",
           f"search.time_budget_s={budget}", *STRATEGIES[strategy], *extra]
    start = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
    final = pd.read_parquet(storage / name / "leaderboard.parquet")
    parts = pd.read_parquet(storage / name / "leaderboard")
    real = final.dropna(subset=["val_acc"])
    top = real.iloc[0] if len(real) else final.iloc[0]  # no cell reached real data: the best rung-1 score
    rt = subprocess.run([sys.executable, "-m", "cluster.cli", "retrain", str(storage / name), "--top", "1",
                         "--epochs", "1", "--seeds", "2", "--num-cpus", "2"], cwd=ROOT, capture_output=True, text=True)
    if rt.returncode != 0:
        raise RuntimeError(f"retraining {name} failed: {rt.stderr[-2000:]}")
    retrained = pd.read_parquet(storage / name / "final.parquet").iloc[0]
    return {"strategy": strategy, "seed": seed, "wall_seconds": wall, "trials": int(parts["trial_id"].nunique()),
            "real_evaluations": int(parts.dropna(subset=["val_acc"])["arch_hash"].nunique()),
            "top_arch": top["arch"], "search_val_acc": float(top["val_acc"]) if len(real) else None,
            "search_budget_seconds": budget,
            "teacher_seconds": teacher[1] / share if extra else teacher_seconds(storage / name),
            "retrained_val_acc": float(retrained["val_acc"]), "retrained_test_acc": float(retrained["test_acc"])}


def teacher_seconds(exp: Path) -> float | None:
    """Seconds from the experiment's start to its teacher on disk (the GTN search's teacher stage)."""
    teacher = exp / "teacher.pt"
    return teacher.stat().st_mtime - (exp / "experiment.json").stat().st_mtime if teacher.exists() else None


def truth_rank(val_acc: float) -> tuple[int, int]:
    t = pd.read_parquet(TRUTH)
    means = t[t["seed"].isin([0, 1])].groupby("arch")["val_acc"].mean()
    return int((means > val_acc).sum()) + 1, len(means)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--keep", type=Path, help="keep the experiments here (default: a temporary folder)")
    ap.add_argument("--shared-teacher", action="store_true",
                    help="meta-train one teacher first and let the GTN runs share it, each charged 1/seeds of "
                         "its time (default: each GTN run meta-trains its own inside its budget)")
    args = ap.parse_args()
    names = [s for s in args.strategies.split(",") if s]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = args.keep or tmp
        teacher = meta_train(Path(tmp)) if args.shared_teacher and "gtn" in names else None
        if teacher:
            print(f"shared teacher: {teacher[1]:.0f} s, {teacher[1] / args.seeds:.0f} s charged to each GTN run",
                  flush=True)
        for seed in range(args.seeds):  # interleaved: drift of the machine hits every strategy alike
            for s in names:
                r = run(s, seed, args.minutes, Path(tmp), teacher, args.seeds)
                r["truth_rank"], r["truth_cells"] = truth_rank(r["retrained_val_acc"])
                runs.append(r)
                with open(Path(tmp) / "runs.jsonl", "a") as f:  # survives a crash in a later run
                    f.write(json.dumps(r) + "\n")
                print(f"{s} seed {seed}: {r['trials']} trials, top {r['search_val_acc']} -> retrained "
                      f"{r['retrained_val_acc']:.4f} val / {r['retrained_test_acc']:.4f} test, rank "
                      f"{r['truth_rank']}/{r['truth_cells']} ({r['wall_seconds']:.0f}s)", flush=True)
    summary = []
    for s in names:
        rs = [r for r in runs if r["strategy"] == s]
        summary.append({"strategy": s, "runs": len(rs),
                        **{f"{k}_mean": float(np.mean([r[k] for r in rs])) for k in
                           ("trials", "real_evaluations", "retrained_val_acc", "retrained_test_acc", "truth_rank")},
                        **{f"{k}_std": float(np.std([r[k] for r in rs], ddof=1)) if len(rs) > 1 else 0.0 for k in
                           ("retrained_val_acc", "retrained_test_acc")}})
    path = write("search_fashion_mnist", {"minutes": args.minutes, "seeds": args.seeds, "strategies": STRATEGIES,
                                          "shared_teacher_seconds": teacher[1] if teacher else None,
                                          "protocol": "retrain: 1 epoch x 2 seeds, the truth table's protocol; rank "
                                                      "among the truth's cells by mean val_acc of seeds 0 and 1",
                                          "summary": summary, "runs": runs})
    print(table(summary, ["strategy", "runs", "trials_mean", "real_evaluations_mean", "retrained_val_acc_mean",
                          "retrained_val_acc_std", "retrained_test_acc_mean", "truth_rank_mean"]))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
