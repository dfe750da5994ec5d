"""The result tables of benchmarks/README.md and README.md ("Results at a glance"), written from the JSON.

Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->`` and is written by the function
registered under NAME, which reads the JSON under ``benchmarks/results/`` that holds its figures; no
figure in a table is typed by hand.

    python -m benchmarks.tables            # rewrite the tables in place
    python -m benchmarks.tables --check    # exit 1, naming each table that differs from its JSON
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = (ROOT / "benchmarks" / "README.md", ROOT / "README.md")
MARKED = re.compile(r"(<!-- table:([\w-]+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)
TABLES: dict[str, Callable[[], str]] = {}


def table(name: str) -> Callable[[Callable[[], str]], Callable[[], str]]:
    def register(fn: Callable[[], str]) -> Callable[[], str]:
        TABLES[name] = fn
        return fn

    return register


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text())


def md(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def pct(x: float, d: int = 1) -> str:
    return f"{x * 100:.{d}f}%"


def pm(mean: float, sd: float, d: int = 1) -> str:
    """A share and its SD in points: ``61.4% ± 2.0``."""
    return f"{mean * 100:.{d}f}% ± {sd * 100:.{d}f}"


def ci(v: float, lo_hi: list[float], d: int = 3, ci_d: int | None = None, sign: str = "", strong: bool = False) -> str:
    """``0.853 [0.807, 0.886]``; ``strong``: the figure in bold."""
    c = ci_d if ci_d is not None else d
    head = f"{v:{sign}.{d}f}"
    return f"{bold(head, strong)} [{lo_hi[0]:{sign}.{c}f}, {lo_hi[1]:{sign}.{c}f}]"


def bold(s: str, yes: bool = True) -> str:
    return f"**{s}**" if yes else s


def top_of(values: list[float | None]) -> float | None:
    have = [v for v in values if v is not None]
    return max(have) if have else None


# --------------------------------------------------------------------------- ranking cells


@table("seed-noise")
def seed_noise() -> str:
    """GTN score alone on the tuning split by learner family and number of learner seeds."""
    d = load("proxies_fashion_mnist_eval.json")
    cands, chosen = d["candidates"], d["best_gtn_alone_chosen_on_tuning"]
    families = (
        ("C=8, 16 steps, accuracy", "c8t16", 16, 8, ""),
        ("C=8, 16 steps, minus loss", "c8t16", 16, 8, ":loss"),
        ("C=8, 8 steps", "c8t8", 8, 8, ""),
        ("C=4, 16 steps", "c4t16", 16, 4, ""),
        ("C=4, 8 steps", "c4t8", 8, 4, ""),
    )
    seeds = (1, 2, 3, 4, 6, 8)
    rows = []
    for label, fam, steps, c, suffix in families:

        def name(k: int, fam: str = fam, steps: int = steps, c: int = c, suffix: str = suffix) -> str:
            return f"gtn[{fam}]:{steps}" + (f":s{k}" if k > 1 else "") + f":v1000:c{c}{suffix}"

        cells = []
        for k in seeds:
            r = cands.get(name(k), {}).get("tuning")
            if r is None:
                cells.append("")
            elif name(k) == chosen:
                cells.append(ci(r["spearman"], r["spearman_ci95"], 3, 2, strong=True))
            else:
                cells.append(f"{r['spearman']:.3f}")
        rows.append([label, *cells, f"{cands[name(1)]['seconds_per_arch']:.2f}"])
    return md(["learners", "1 seed", "2 seeds", "3", "4", "6", "8", "s per seed"], rows)


@table("default-score")
def default_score() -> str:
    """The candidates chosen on the tuning split, scored once on the evaluation split."""
    d = load("proxies_fashion_mnist_eval.json")
    c = d["candidates"]
    winner, alone, no_gtn = (
        d["winner_chosen_on_tuning"],
        d["best_gtn_alone_chosen_on_tuning"],
        d["best_without_gtn_chosen_on_tuning"],
    )

    def row(label: str, name: str, seconds: str | None = None, best: bool = False) -> list[str]:
        r = c.get(name) or issue13[name]
        ev = r["evaluation"]
        tuning = f"{r['tuning']['spearman']:.3f}" if "tuning" in r else ""
        rho = ci(ev["spearman"], ev["spearman_ci95"], 3, 2, strong=best)
        return [label, tuning, rho, f"{ev['spearman_top20_truth']:.3f}", seconds or f"{r['seconds_per_arch']:.2f}"]

    issue13 = load(ISSUE13)["candidates"]  # the real:k ladder was measured in the issue-#13 run
    real = issue13["real:128"]
    rows = [
        row(f"**winner**, chosen on tuning: `{winner}`", winner, best=True),
        row(f"GTN alone, chosen on tuning: `{alone}`", alone),
        row(f"best without GTN, chosen on tuning: `{no_gtn}`", no_gtn),
        row("`params`", "params"),
        row(
            f"`real:128` (the issue-#13 run, `{ISSUE13}`)",
            "real:128",
            f"{d['real128_seconds_per_arch']:.1f} here ({real['seconds_per_arch']:.2f} then)",
        ),
        [
            "truth seed against seed (ceiling)",
            f"{d['ceiling_spearman']['tuning']:.3f}",
            f"{d['ceiling_spearman']['evaluation']:.3f}",
            "",
            "",
        ],
    ]
    return md(["score", "tuning rho", "**evaluation rho**", "top-20% by truth", "s / cell"], rows)


ISSUE13 = "history/proxies_fashion_mnist_eval_a439949.json"  # the issue-#13 run, as committed in a439949


@table("issue13-eval")
def issue13_eval() -> str:
    """The issue-#13 teachers' candidates, the real:k ladder and the ceiling, from that run's own JSON."""
    d = load(ISSUE13)
    c = d["candidates"]
    winner = d["winner_chosen_on_tuning"]
    specs = (
        (f"**winner**: `{winner}`", winner),
        ("the same recipe, the other meta-training seed (`gtn[default]`)", winner.replace("gtn[s1]", "gtn[default]")),
        ("its rank ensemble (equal weights; the live search's fallback)", "ensemble:gtn[s1]:16:s2:v1000+params+naswot"),
        ("best without GTN, chosen on tuning: `ensemble:params+jacob_cov`", "ensemble:params+jacob_cov"),
        (
            "`calibrated:params+naswot` (best without GTN in hindsight, with `params+jacob_cov`)",
            "calibrated:params+naswot",
        ),
        ("`params`", "params"),
        ("`naswot`", "naswot"),
        ("`synflow`", "synflow"),
        ("`jacob_cov`", "jacob_cov"),
        ("GTN alone, 2 learner seeds (`gtn[s1]:16:s2:v1000`)", "gtn[s1]:16:s2:v1000"),
        ("GTN alone, 1 learner seed (`gtn[s1]:16:v1000`)", "gtn[s1]:16:v1000"),
        ("ranking teacher, 2 learner seeds (`gtn[rank]:16:s2:v1000`)", "gtn[rank]:16:s2:v1000"),
    )
    rows = []
    for label, name in [*specs, *((f"`{n}`", n) for n in ("real:16", "real:32", "real:64", "real:128"))]:
        r = c[name]
        tuning = f"{r['tuning']['spearman']:.3f}" if "tuning" in r else ""
        ev = r.get("evaluation")
        if ev is None:
            rows.append([label, tuning, "not scored (lost on tuning)", "", "", "", f"{r['seconds_per_arch']:.2f}"])
            continue
        rows.append(
            [
                label,
                tuning,
                ci(ev["spearman"], ev["spearman_ci95"], strong=name == winner),
                f"{ev['kendall']:.3f}",
                f"{ev['spearman_top_half']:.3f}",
                f"{ev['spearman_top20_truth']:.3f}",
                f"{r['seconds_per_arch']:.2f}",
            ]
        )
    truth = load("proxies_fashion_mnist.json")
    rows.append(
        [
            "ceiling: one truth seed against the other",
            f"{d['ceiling_spearman']['tuning']:.3f}",
            f"{d['ceiling_spearman']['evaluation']:.3f}",
            "",
            "",
            "",
            f"{truth['truth_seconds_per_run']:.1f}",
        ]
    )
    return md(
        [
            "score",
            "tuning rho",
            "**evaluation rho** [95% CI]",
            "Kendall",
            "top-half",
            "top-20% by truth",
            "s / cell",
        ],
        rows,
    )


@table("proxies-tuning")
def proxies_tuning() -> str:
    """``gtnnas bench proxies`` on the tuning split's 100 cells, and the truth's own ceilings."""
    d = load("proxies_fashion_mnist.json")
    rows = [
        [
            f"`{n}`",
            f"{r['spearman']:.3f}",
            f"{r['kendall']:.3f}",
            f"{r['spearman_top_half']:.3f}",
            f"{r['seconds_per_arch']:.3f}",
        ]
        for n, r in d["proxies"].items()
    ]
    run_s = d["truth_seconds_per_run"]
    rows += [
        [
            "ceiling: one truth run against another",
            f"{d['ceiling_spearman']:.3f}",
            "",
            "",
            f"{run_s:.1f} (one truth run)",
        ],
        [
            f"a {d['replicate_seeds']}-seed truth mean against another",
            f"{d['replicate_spearman']:.3f}",
            "",
            "",
            f"{d['replicate_seeds'] * run_s:.1f}",
        ],
    ]
    return md(["proxy", "Spearman rho", "Kendall tau", "top-half rho", "seconds / arch"], rows)


@table("nb201-published")
def nb201_published() -> str:
    d = load("nb201_proxies.json")
    targets = ("cifar10_val", "cifar10_test", "cifar100_val", "cifar100_test")
    by = {(r["proxy"], r["target"]): r for r in d["results"]}
    proxies = list(dict.fromkeys(r["proxy"] for r in d["results"]))
    rows = [
        [
            f"`{p}`",
            *(f"{by[p, t]['spearman']:.3f}" for t in targets),
            f"{by[p, targets[0]]['seconds_per_arch']:.3f}",
        ]
        for p in proxies
    ]
    return md(["proxy", "CIFAR-10 val", "CIFAR-10 test", "CIFAR-100 val", "CIFAR-100 test", "s / cell"], rows)


# --------------------------------------------------------------------------- teachers

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


# --------------------------------------------------------------------------- search strategies


@table("search-nb201")
def search_nb201() -> str:
    d = load("search_nb201.json")
    rows = []
    for name, s in d["strategies"].items():
        at, e = s["at"], s["evals_to_top1pct"]
        rows.append(
            [
                f"`{name}`",
                *(f"{at[k]['test_mean'] * 100:.2f} ± {at[k]['test_std'] * 100:.2f}" for k in ("50", "100", "300")),
                f"{at['100']['percentile_mean']:.2f} ± {at['100']['percentile_std']:.2f}",
                f"{e['median']:g}",
                pct(e["share_within_100"], 0),
                pct(e["share_within"], 0),
            ]
        )
    return md(
        [
            "strategy",
            "test acc @50",
            "@100",
            "@300",
            "percentile @100",
            "evals to top 1%: median",
            "reach top 1% within 100",
            "within 300",
        ],
        rows,
    )


E2E_ORDER = ("gtn_reused", "gtn_fresh", "real_asha", "naswot_screened", "naswot")


def _order(strategy: str) -> int:
    return E2E_ORDER.index(strategy) if strategy in E2E_ORDER else len(E2E_ORDER)


@table("e2e")
def e2e() -> str:
    d = load("search_fashion_mnist.json")
    rows = [
        [
            f"{s['minutes']:g} min",
            s["strategy"],
            s["runs"],
            f"{s['trials_mean']:.1f}",
            f"{s['cells_screened_mean']:.1f}",
            f"{s['real_evaluations_mean']:.1f}",
            f"{', '.join(str(r) for _, r in sorted(zip(s['seeds'], s['truth_ranks'], strict=True)))} "
            f"({s['truth_rank_mean']:.1f})",
            ci(s["e1_val_acc_mean"], s["e1_val_acc_ci95"], 4),
            ci(s["e5_val_acc_mean"], s["e5_val_acc_ci95"], 4),
        ]
        for s in sorted(d["summary"], key=lambda s: (s["minutes"], _order(s["strategy"])))
    ]
    return md(
        [
            "budget",
            "strategy",
            "runs",
            "trials",
            "cells screened",
            "real evaluations",
            "truth rank per seed (mean)",
            "1-epoch val acc [95% CI]",
            "5-epoch val acc [95% CI]",
        ],
        rows,
    )


@table("e2e-paired")
def e2e_paired() -> str:
    d = load("search_fashion_mnist.json")
    rows = [
        [
            f"{p['minutes']:g} min",
            p["against"],
            ", ".join(map(str, p["seeds"])),
            ci(p["truth_rank_mean"], p["truth_rank_ci95"], 1, sign="+"),
            ", ".join(f"{x:+.0f}" for x in p["truth_rank_diffs"]),
            ci(p["e5_val_acc_mean"], p["e5_val_acc_ci95"], 4, sign="+"),
        ]
        for p in sorted(d["paired"], key=lambda p: (p["minutes"], _order(p["against"])))
    ]
    return md(
        [
            "budget",
            "gtn_reused minus",
            "seeds",
            "truth rank [95% CI]",
            "per seed",
            "5-epoch val acc [95% CI]",
        ],
        rows,
    )


@table("allocation")
def allocation() -> str:
    """The allocation candidates on tuning seeds: the runs' records, and the phase split of the same runs."""
    runs = load("search_fashion_mnist.json")["tuning_runs"]
    phases = {r["label"]: r for r in load("search_phases.json")["runs"]}
    variants = {  # strategy: (label, the label of the same search in search_phases.json)
        "alloc_rf4": ("plain ASHA, rf 4", "before_s{seed}"),
        "alloc_rf8": ("plain ASHA, rf 8", None),
        "alloc_screen16": ("`search.screen=16`", "after_s{seed}"),
    }
    rows = []
    for r in sorted(runs, key=lambda r: (list(variants).index(r["strategy"]), r["seed"])):
        label, phase = variants[r["strategy"]]
        split = phases.get(phase.format(seed=r["seed"])) if phase else None
        shares = (
            [pct(split["share"]["score"], 0), pct(split["share"]["train"], 0), pct(split["idle_share"], 0)]
            if split
            else ["", "", ""]
        )
        rows.append(
            [
                label,
                r["seed"],
                r["cells_screened"],
                r["real_evaluations"],
                r["truth_rank"],
                *shares,
            ]
        )
    return md(
        [
            "variant",
            "seed",
            "cells screened",
            "trained on real data",
            "truth rank",
            "score share",
            "train share",
            "idle",
        ],
        rows,
    )


@table("e2e-issue14")
def e2e_issue14() -> str:
    """The first end-to-end run (issue #14), restored from the commit that recorded it."""
    d = load("history/search_fashion_mnist_ffe2d06.json")
    runs = d["runs"]
    charged = {r["teacher_seconds"] for r in runs if r.get("teacher_seconds")}
    labels = {
        "gtn": f"gtn (teacher shared, {min(charged):.0f} s charged)" if charged else "gtn",
        "zero_cost": "zero_cost (NASWOT)",
    }
    best_val = max(s["retrained_val_acc_mean"] for s in d["summary"])
    best_test = max(s["retrained_test_acc_mean"] for s in d["summary"])
    rows = []
    for s in d["summary"]:
        name = s["strategy"]
        ranks = [r["truth_rank"] for r in sorted(runs, key=lambda r: r["seed"]) if r["strategy"] == name]
        val = f"{s['retrained_val_acc_mean']:.4f} ± {s['retrained_val_acc_std']:.4f}"
        test = f"{s['retrained_test_acc_mean']:.4f} ± {s['retrained_test_acc_std']:.4f}"
        rows.append(
            [
                labels.get(name, name),
                s["runs"],
                f"{s['trials_mean']:.0f}",
                f"{s['real_evaluations_mean']:.0f}",
                bold(val, s["retrained_val_acc_mean"] == best_val),
                bold(test, s["retrained_test_acc_mean"] == best_test),
                ", ".join(map(str, ranks)),
            ]
        )
    cells = runs[0]["truth_cells"]
    return md(
        [
            "strategy",
            "runs",
            "trials",
            "real-data evaluations",
            "retrained val acc (mean ± SD over seeds)",
            "retrained test acc",
            f"rank among the truth's {cells} cells, per seed",
        ],
        rows,
    )


# --------------------------------------------------------------------------- speed and scale


@table("search-overhead")
def search_overhead() -> str:
    d = load("search_overhead.json")
    labels = {
        "local_2cpu": "embedded Ray, 2 CPUs",
        "cluster_2x1cpu": "simulated cluster: head (0 CPU) + 2 x 1-CPU workers",
    }
    rows = [
        [
            labels.get(r["setup"], r["setup"]),
            f"{r['wall_seconds']:.1f}",
            pct(r["overhead_fraction"]),
            pct(r["end_to_end_overhead_fraction"]),
            f"{r['archs_per_core_minute']:.1f}",
            f"{r['score_seconds_mean']:.2f}",
            f"{r['fetch_seconds_mean']:.3f}",
            r["cache_hits"],
        ]
        for r in d["runs"]
    ]
    return md(
        [
            "setup",
            "wall (s)",
            "overhead (share of trial time not in `score`)",
            "end-to-end overhead",
            "archs / core-minute",
            "score (s)",
            "curriculum fetch (s)",
            "cache hits",
        ],
        rows,
    )


@table("search-scale")
def search_scale() -> str:
    d = load("search_scale.json")
    rows = [
        [
            f"{r['requested']:,}",
            f"{r['rows']:,}" if r["rows"] == r["results"] else f"{r['rows']:,} / {r['results']:,}",
            r["duplicates"],
            r["lost"],
            f"{r['wall_seconds']:.0f}",
            f"{r['seconds_per_trial']:.3f}",
            f"{r['driver_peak_rss_mb']:,.0f}",
        ]
        for r in d["runs"]
    ]
    before = sorted(load("history/search_scale_95f248e.json")["runs"], key=lambda r: r["requested"])
    rows.append(
        [
            "before: "
            + " / ".join(f"{r['requested']:,}" for r in before)
            + " (issue #14's run, `history/search_scale_95f248e.json`)",
            "",
            "",
            "",
            " / ".join(f"{r['wall_seconds']:.0f}" for r in before),
            " / ".join(f"{r['seconds_per_trial']:.3f}" for r in before),
            " / ".join(f"{r['driver_peak_rss_mb']:,.0f}" for r in before),
        ]
    )
    return md(["trials", "rows = results", "duplicates", "lost", "wall (s)", "s / trial", "driver peak RSS (MB)"], rows)


@table("search-scale-issue14")
def search_scale_issue14() -> str:
    """Issue #14's runs, restored from the commits that recorded them: after the id fix, and the run before it."""
    after = load("history/search_scale_95f248e.json")["runs"]
    before = [r for r in load("history/search_scale_bb4b35b.json")["runs"] if r["requested"] == 10000]

    def row(label: str, r: dict[str, Any]) -> list[str]:
        def get(k: str) -> str:
            return f"{r[k]:,}" if r.get(k) is not None else "-"

        return [
            label,
            get("trials"),
            get("distinct_tune_ids"),
            get("ids_refused"),
            get("results"),
            get("rows"),
            get("duplicates"),
            get("lost"),
            f"{r['wall_seconds']:.0f}",
            f"{r['seconds_per_trial']:.3f}",
            f"{r['driver_peak_rss_mb']:,.0f}",
        ]

    rows = [row(f"{r['requested']:,}", r) for r in sorted(after, key=lambda r: r["requested"])]
    rows += [row(f"{r['requested']:,}, before the id fix (commit bb4b35b)", r) for r in before]
    return md(
        [
            "trials asked",
            "trials in the leaderboard",
            "distinct Tune ids",
            "ids refused",
            "results",
            "leaderboard rows",
            "duplicate rows",
            "lost",
            "wall (s)",
            "s / trial",
            "driver peak RSS (MB)",
        ],
        rows,
    )


@table("resume-overhead")
def resume_overhead() -> str:
    d = load("resume_overhead.json")
    rows = []
    for policy, s in d["summary"].items():
        walls = [r["wall_seconds"] for r in d["runs"] if r["state_save"] == policy]
        rows.append(
            [
                f"`{policy}`",
                ", ".join(f"{w:.1f}" for w in walls),
                f"{s['wall_seconds']:.1f}",
                pct(s["overhead_fraction"]),
                pct(s["end_to_end_overhead_fraction"]),
            ]
        )
    runs = {len([r for r in d["runs"] if r["state_save"] == p]) for p in d["summary"]}
    n = {2: "two"}.get(min(runs), str(min(runs)))
    return md(
        [
            "policy",
            f"wall (s), {n} runs",
            "mean",
            "overhead (share of trial time not in `score`)",
            "end-to-end overhead",
        ],
        rows,
    )


# --------------------------------------------------------------------------- README.md


@table("glance")
def glance() -> str:
    """README.md's "Results at a glance"."""
    ev = load("proxies_fashion_mnist_eval.json")
    c = ev["candidates"]
    win = c[ev["winner_chosen_on_tuning"]]["evaluation"]
    alone = c[ev["best_gtn_alone_chosen_on_tuning"]]["evaluation"]["spearman"]
    no_gtn = c[ev["best_without_gtn_chosen_on_tuning"]]["evaluation"]["spearman"]
    params = c["params"]["evaluation"]["spearman"]
    rs = load("resume_overhead.json")
    timer, step = rs["summary"]["timer"]["wall_seconds"], rs["summary"]["step"]["wall_seconds"]
    per = len([r for r in rs["runs"] if r["state_save"] == "step"])
    nb = load("search_nb201.json")["strategies"]
    seeded, rnd = nb["rea_synflow_seeded"], nb["random"]
    preset = load("gtn_preset_gtn_fashion_cpu.json")
    g, r = preset["results"]["gtn"], preset["results"]["real_best_lr"]
    lb = load("leaderboard_speed.json")
    whole = next(x["seconds"] for x in lb["results"] if x["step"].startswith("whole"))
    rows = [
        [
            "Default rung-1 score (GTN, 2 seeds, + synflow; the shipped teacher) against a 1-epoch truth on "
            f"{ev['n_archs']} cells never tuned on",
            f"Spearman {ci(win['spearman'], win['spearman_ci95'], 3, 2)} (best without GTN {no_gtn:.3f}; GTN alone "
            f"{alone:.3f}, {'below' if alone < params else 'above'} `params`' {params:.3f})",
        ],
        [
            f"Crash-consistent saving (`state_save: step`) against Tune's timer, {rs['trials']} GTN-scored trials",
            f"{(step / timer - 1) * 100:+.0f}% wall time ({step:.0f} s vs {timer:.0f} s, {per} runs each)",
        ],
        [
            "Proxy-seeded evolution on NAS-Bench-201: evaluations until a top-1% cell, median of "
            f"{seeded['repeats']} repeats",
            f"{seeded['evals_to_top1pct']['median']:g} (random search: {rnd['evals_to_top1pct']['median']:g}; "
            f"{pct(seeded['evals_to_top1pct']['share_within_100'], 0)} of repeats within 100)",
        ],
        [
            f"Warm-generator CPU teacher vs real data, {preset['steps']} steps, Fashion-MNIST",
            f"{pm(g['mean_test_acc'], g['std_test_acc'])} vs {pm(r['mean_test_acc'], r['std_test_acc'])}",
        ],
        [f"`gtnnas leaderboard` on {lb['rows']:,} rows, whole command", f"{whole:.2f} s"],
        [
            "End to end on Fashion-MNIST, one core a search: the found cell, retrained, ranked among "
            f"{_truth_cells()} truth cells (mean rank; 5-epoch val acc)",
            _glance_e2e(),
        ],
    ]
    return md(["what", "figure"], rows)


def _truth_cells() -> int:
    runs = load("search_fashion_mnist.json")["runs"]
    return max(r["truth_cells"] for r in runs)


def _glance_e2e() -> str:
    d = load("search_fashion_mnist.json")
    names = {
        "gtn_reused": "default GTN search",
        "real_asha": "real-data ASHA",
        "naswot_screened": "NASWOT with the same screen",
    }
    parts = []
    for minutes in sorted({s["minutes"] for s in d["summary"]}):
        here = sorted(
            (s for s in d["summary"] if s["minutes"] == minutes and s["strategy"] in names),
            key=lambda s: _order(s["strategy"]),
        )
        seeds = "/".join(sorted({str(s["runs"]) for s in here}))
        parts.append(
            f"{minutes:g} min, {seeds} seeds: "
            + ", ".join(
                f"{names[s['strategy']]} {s['truth_rank_mean']:.1f} "
                f"({ci(s['e5_val_acc_mean'], s['e5_val_acc_ci95'], 4, 3)})"
                for s in here
            )
        )
    zero = all(p[f"{k}_ci95"][0] <= 0 <= p[f"{k}_ci95"][1] for p in d["paired"] for k in ("truth_rank", "e5_val_acc"))
    tail = "every paired difference's interval includes 0" if zero else "not every paired interval includes 0"
    return "; ".join(parts) + f"; {tail}"


# --------------------------------------------------------------------------- the command


def render(text: str) -> tuple[str, list[str], list[str]]:
    """``text`` with every marked table rewritten; the names of those that changed, and unknown names."""
    stale: list[str] = []
    unknown: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m.group(2)
        if name not in TABLES:
            unknown.append(name)
            return m.group(0)
        new = TABLES[name]()
        if new != m.group(3):
            stale.append(name)
        return m.group(1) + new + m.group(4)

    return MARKED.sub(sub, text), stale, unknown


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 naming each stale table")
    ap.add_argument(
        "--doc", action="append", type=Path, help="a Markdown file to process (repeatable; default: both READMEs)"
    )
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    docs = args.doc or list(DOCS)
    problems, used = [], set()
    for doc in docs:
        text = doc.read_text()
        new, stale, unknown = render(text)
        used |= {m.group(2) for m in MARKED.finditer(text)}
        problems += [f"{doc}: no generator for table {n!r}" for n in unknown]
        if args.check:
            problems += [f"{doc}: table {n!r} differs from its JSON" for n in stale]
        elif new != text:
            doc.write_text(new)
            print(f"{doc}: rewrote {', '.join(stale)}")
    if not args.doc:
        problems += [f"table {n!r} is in neither README" for n in sorted(set(TABLES) - used)]
    for p in problems:
        print(p, file=sys.stderr)
    if problems and args.check:
        print("regenerate with: python -m benchmarks.tables", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
