"""benchmarks/README.md's tables on teachers: training speed, few-step and CPU presets, ranking, GPU, memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from benchmarks.tables.base import RESULTS, bold, load, md, pct, pm, table, top_of

CELL_NAMES = {
    "all_conv3x3": "all 3x3 convs",
    "paper_best": "NB201 paper cell",
    "light": "light (skip/1x1/pool)",
}
DATASETS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


@table("train-speed")
def train_speed() -> str:
    d = load("train_speed.json")
    rows = [
        [
            CELL_NAMES.get(r["cell"], r["cell"]),
            r["C"],
            r["N"],
            f"{r['params']:,}",
            f"{r['mflops']:.1f}",
            f"{r['seconds_per_step']:.3f}",
            f"{r['images_per_second']:,.0f}",
        ]
        for r in d["rows"]
    ]
    return md(["cell", "C", "N", "params", "MFLOPs", "s/step", "images/s"], rows)


@table("few-step")
def few_step() -> str:
    d = load("gtn_few_step.json")
    labels = {
        "full": "`full` GTN",
        "none": "`none` (no curriculum)",
        "real": "`real`, meta-learned lr/momentum",
    }
    rows = []
    for dataset, res in d["results"].items():
        for curriculum, r in res.items():
            label = labels.get(curriculum) or f"real, best fixed lr ({r['lr']})"
            secs = r.get("seconds_per_outer_step")
            rows.append(
                [
                    DATASETS.get(dataset, dataset),
                    label,
                    pm(r["mean_test_acc"], r["std_test_acc"]),
                    f"{secs:.2f}" if secs is not None else "-",
                ]
            )
    return md(["data set", "curriculum", "test accuracy (mean ± std)", "s / outer step"], rows)


@table("cpu-presets")
def cpu_presets() -> str:
    rows = []
    for name in ("gtn_preset_gtn_fashion_cpu.json", "gtn_preset_gtn_mnist_cpu.json"):
        d = load(name)
        gtn, real = d["results"]["gtn"], d["results"]["real_best_lr"]
        secs = d["meta_train_seconds"]
        rows.append(
            [
                DATASETS.get(d["dataset"], d["dataset"]),
                f"{secs / 60:.1f} min in {d['outer_steps']} outer steps ({secs / d['outer_steps']:.1f} s each)",
                bold(pm(gtn["mean_test_acc"], gtn["std_test_acc"]), gtn["mean_test_acc"] > real["mean_test_acc"]),
                f"{pm(real['mean_test_acc'], real['std_test_acc'])} (lr {real['lr']})",
                f"{d['gtn_minus_real'] * 100:+.1f}",
            ]
        )
    steps = load("gtn_preset_gtn_fashion_cpu.json")["steps"]
    return md(
        [
            "data set",
            "meta-training (outer steps, 2 cores)",
            f"GTN, {steps} steps",
            f"real data, {steps} steps",
            "GTN - real (points)",
        ],
        rows,
    )


def _rank_rows(specs: Iterable[tuple[str, str, str, bool]]) -> list[dict[str, Any]]:
    out = []
    for label, file, variant, cost in specs:
        v = load(file)["variants"][variant]
        p = v["proxies"]
        out.append(
            {
                "label": label,
                "held": v["held_out_val_acc"][-1][1],
                "rho16": p["gtn:16"]["spearman"],
                "g16": p["gtn:16"],
                "rho32": p["gtn:32"]["spearman"] if "gtn:32" in p else None,
                "s": v["seconds_per_outer_step"] if cost else None,
            }
        )
    return out


@table("gtn-rank")
def gtn_rank() -> str:
    specs = (
        ("`full` (the generator)", "gtn_rank.json", "full", True),
        ("`full` + `soft_labels`", "gtn_rank.json", "full+soft_labels", True),
        ("`full` + `learners_per_step: 2`", "gtn_rank.json", "full+2_learners", True),
        ("`pixels` + `pixels_init: real`", "gtn_rank.json", "pixels_real", True),
        ("the same, meta-training seed 1 (`gtn_rank_seed1.json`)", "gtn_rank_seed1.json", "pixels_real_seed1", True),
        ("`pixels` + `pixels_init: real` + `soft_labels`", "gtn_rank.json", "pixels_real+soft_labels", True),
        (
            "`full` warm: `generator_init: real`, `generator_meta_lr: 0.0005` (`gtn_rank_warm.json`; the 20 s fit "
            "included)",
            "gtn_rank_warm.json",
            "full+warm",
            True,
        ),
        (
            "control: real images at the initial lr/momentum, not meta-trained (`gtn_rank_untrained.json`)",
            "gtn_rank_untrained.json",
            "pixels_real_untrained",
            False,
        ),
    )
    rows = _rank_rows(specs)
    best_held, best_rho = top_of([r["held"] for r in rows]), top_of([r["rho16"] for r in rows])
    return md(
        ["teacher", "held-out", "`gtn:16` rho (tau, top-half)", "`gtn:32` rho", "s / outer step"],
        [
            [
                r["label"],
                bold(pct(r["held"]), r["held"] == best_held),
                bold(f"{r['rho16']:.3f}", r["rho16"] == best_rho)
                + f" ({r['g16']['kendall']:.3f}, {r['g16']['spearman_top_half']:.3f})",
                f"{r['rho32']:.3f}" if r["rho32"] is not None else "-",
                f"{r['s']:.2f}" if r["s"] is not None else "-",
            ]
            for r in rows
        ],
    )


@table("gtn-rank-gpu")
def gtn_rank_gpu() -> str:
    d = load("gtn_rank_gpu.json")
    specs = (
        ("warm generator, one meta_lr 0.02 for everything (the paper's rate)", "warm_lr0.02"),
        ("warm generator, one meta_lr 0.002", "warm_lr0.002"),
        ("warm generator, one meta_lr 0.0005", "warm_lr0.0005"),
        ("warm generator, one meta_lr 0.0001", "warm_lr0.0001"),
        ("warm, `generator_meta_lr` 0.002 (rest 0.02)", "warm_g0.002"),
        ("warm, `generator_meta_lr` 0.0005 (rest 0.02)", "warm_g0.0005"),
        ("the same, meta-training seed 1", "warm_g0.0005_seed1"),
        ("warm, `generator_meta_lr` 0.0001 (rest 0.02)", "warm_g0.0001"),
        ("warm, `generator_meta_lr` 0.0005 + `soft_labels`", "warm_g0.0005_soft"),
        ("`pixels` + `pixels_init: real` (reference)", "pixels_real"),
    )
    rows = _rank_rows((label, "gtn_rank_gpu.json", v, True) for label, v in specs)
    best = top_of([r["rho16"] for r in rows])
    steps = {d["variants"][v]["outer_steps"] for _, v in specs}
    gpu = (d.get("machine") or {}).get("cuda") or "GPU"
    return md(
        [
            f"teacher ({'/'.join(map(str, sorted(steps)))} outer steps, {gpu.removeprefix('NVIDIA ')})",
            "held-out",
            "`gtn:16` rho",
            "`gtn:32` rho",
        ],
        [
            [
                bold(r["label"], r["rho16"] == best),
                pct(r["held"]),
                bold(f"{r['rho16']:.3f}", r["rho16"] == best),
                f"{r['rho32']:.3f}" if r["rho32"] is not None else "-",
            ]
            for r in rows
        ],
    )


@table("gpu-teachers")
def gpu_teachers() -> str:
    """The paper config and the sampled-learner CPU preset meta-trained on a GPU for a wall-clock budget."""
    rows = []
    for name in ("gtn_paper_gpu.json", "gtn_fashion_gpu.json", "gtn_fashion_gpu_alone.json"):
        d = load(name)
        res = d["results"]
        real_key = next(k for k in res if k.startswith("real_best_lr_"))
        rows.append(
            [
                f"`{d['config'].split()[0]}` (`{name}`)",
                d["learner"],
                d["outer_steps"],
                f"{d['seconds_per_outer_step']:.2f}",
                pm(res["gtn_learner"]["mean_test_acc"], res["gtn_learner"]["std_test_acc"]),
                pm(res["gtn_nb201_cell"]["mean_test_acc"], res["gtn_nb201_cell"]["std_test_acc"]),
                f"{pm(res[real_key]['mean_test_acc'], res[real_key]['std_test_acc'])} "
                f"(lr {real_key.removeprefix('real_best_lr_')})",
            ]
        )
    return md(
        [
            "config (JSON)",
            "learner",
            "outer steps",
            "s / outer step",
            "GTN curriculum, the config's learner",
            "GTN curriculum, the held-out NB201 cell",
            "real data, best fixed lr",
        ],
        rows,
    )


@table("memory")
def memory() -> str:
    """Peak memory of one outer step; a ``--memory-only`` run's own JSON when there is one."""
    newer = RESULTS / "gtn_few_step_memory.json"
    mem = load(newer.name if newer.exists() else "gtn_few_step.json")["memory"]
    by = {(r["T"], r["checkpointing"]): r["peak_extra_mb"] for r in mem}
    ts = sorted({r["T"] for r in mem})
    return md(
        ["T", "checkpointing on", "off"],
        [[t, f"{by[t, 'on']:,.0f} MB", f"{by[t, 'off']:,.0f} MB"] for t in ts],
    )
