"""README.md's "Results at a glance", from the JSON behind the other tables."""

from __future__ import annotations

from typing import Any

from benchmarks.tables.base import RESULTS, ci, load, md, pct, pm, table
from benchmarks.tables.search import VERDICT_SEEDS, strategy_order


@table("glance")
def glance() -> str:
    """README.md's "Results at a glance"."""
    ev = load("proxies_fashion_mnist_eval.json")
    c = ev["candidates"]
    alone = c[ev["best_gtn_alone_chosen_on_tuning"]]["evaluation"]["spearman"]
    params = c["params"]["evaluation"]["spearman"]
    sc = load("score_choice.json")
    win = sc["evaluation_once"][sc["chosen"]]
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
            f"Default rung-1 score (`{sc['chosen']}`: GTN, 2 learner seeds, and synflow, equal weights on ranks as "
            f"a search uses them; the shipped teacher) against a 1-epoch truth on {sc['evaluation_cells']} cells "
            "never tuned on",
            f"Spearman {ci(win['evaluation_rho'], win['evaluation_ci95'], 3, 2)}; kept by a rule stated before "
            f"looking (no candidate won 90% of paired resamples on the tuning split); GTN alone {alone:.3f}, "
            f"{'below' if alone < params else 'above'} `params`' {params:.3f}",
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
        *_glance_budget(),
        [
            "End to end on Fashion-MNIST at one commit, one core a search: the found cell, retrained, ranked "
            f"among {_truth_cells()} truth cells (mean rank, lower is better; 5-epoch val acc)",
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
            key=lambda s: strategy_order(s["strategy"]),
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
    paired = [
        f"{p['minutes']:g} min rank {_difference(p)}, 5-epoch test acc "
        + (
            f"{ci(p['e5_test_acc_mean'], p['e5_test_acc_ci95'], 4, sign='+')} (10 ranks at this spread need "
            f"{p['seeds_for_10_ranks']} seeds)"
            if len(p["seeds"]) >= VERDICT_SEEDS
            else f"{p['e5_test_acc_mean']:+.4f} ({len(p['seeds'])} seeds: too few to judge yet)"
        )
        for p in sorted(d["paired"], key=lambda p: p["minutes"])
        if p["against"] == "real_asha"
    ]
    return "; ".join(parts) + f". Paired, GTN minus real-data ASHA: {'; '.join(paired)} (commit {d['commit'][:7]})"


def has(name: str) -> bool:
    return (RESULTS / name).is_file()


def _glance_budget() -> list[list[str]]:
    """This round's rows: own data's preparation, fronts on NAS-Bench-201, the latency-constrained search."""
    rows = []
    if has("data_prepare.json"):
        d = load("data_prepare.json")
        two = next(r for r in d["prepare"] if r["workers"] == 2)
        rows.append(
            [
                f"Own data: {d['images']:,} Fashion-MNIST PNGs decoded into the cache (2 processes); loading the cache "
                "against the built-in loader",
                f"{two['seconds']:.1f} s; x{d['load_ratio']:.2f} (finding the cache, {d['images']:,} files checked: "
                f"+{d['find_seconds']:.1f} s)",
            ]
        )
    if has("search_nb201_pareto.json"):
        p = load("search_nb201_pareto.json")
        best = max(p["strategies"], key=lambda n: p["strategies"][n]["at"].get("200", 0.0))
        b, r = p["strategies"][best], p["strategies"]["random"]
        rows.append(
            [
                "Accuracy against params on NAS-Bench-201: hypervolume of the found front / the true front's after "
                f"200 evaluations, median of {b['repeats']} [quartiles]",
                f"{b['at']['200']:.3f} [{b['q25'][199]:.3f}, {b['q75'][199]:.3f}] (`{best}`; random search "
                f"{r['at']['200']:.3f}); 0.99 after a median {b['evals_to']['0.99']['median']:g} evaluations",
            ]
        )
    if has("budget_fashion_mnist.json"):
        f = load("budget_fashion_mnist.json")
        rows.append(
            [
                "Fashion-MNIST search under `latency_ms<=` the sample's median (2 cores): trained cells meeting it "
                "when measured again; the best cell's network; its exported program",
                f"{f['trained_meeting_bound_again']:.0%} of {len(f['trained'])}; {f['best']['again_ms']:.2f} ms; "
                f"{f['exported_program_ms']:.2f} ms (bound {f['bound_ms']:.2f} ms)",
            ]
        )
    return rows


def _difference(p: dict[str, Any]) -> str:
    """The mean paired rank difference, with its interval once there are enough seeds to mean something."""
    if len(p["seeds"]) < VERDICT_SEEDS:
        return f"{p['truth_rank_mean']:+.1f}"
    return ci(p["truth_rank_mean"], p["truth_rank_ci95"], 1, sign="+")


def _verdict(p: dict[str, Any]) -> str:
    """What a paired rank difference (GTN minus the other; lower is better) shows at its interval."""
    if len(p["seeds"]) < VERDICT_SEEDS:
        return f"too few seeds to judge yet (a verdict needs {VERDICT_SEEDS}; the other seeds follow)"
    lo, hi = p["truth_rank_ci95"]
    if hi < 0:
        return "better cells, beyond noise"
    if lo > 0:
        return "worse cells, beyond noise"
    return "no difference shown: the interval includes 0"


def _accuracy(p: dict[str, Any]) -> str:
    """What the paired 5-epoch test accuracy (GTN minus the other; higher is better) shows at its interval."""
    lo, hi = p["e5_test_acc_ci95"]
    wins = sum(d > 0 for d in p["e5_test_acc_diffs"])
    said = "higher, the interval clear of 0" if lo > 0 else "lower, the interval clear of 0" if hi < 0 else "level"
    diff = ci(p["e5_test_acc_mean"], p["e5_test_acc_ci95"], 4, sign="+")
    return f"the found cells' 5-epoch test accuracy, paired: {diff} ({said}; GTN higher in {wins} of {len(p['seeds'])})"


@table("headline")
def headline() -> str:
    """README.md's answer to the question the product exists for, from the end-to-end rerun."""
    d = load("search_fashion_mnist.json")
    runs = {(s["minutes"], s["strategy"]): s for s in d["summary"]}
    says = []
    for p in sorted(d["paired"], key=lambda p: p["minutes"]):
        if p["against"] != "real_asha":
            continue
        g, r = runs[(p["minutes"], "gtn_reused")], runs[(p["minutes"], "real_asha")]
        says.append(
            f"at {p['minutes']:g} minutes on one core ({len(p['seeds'])} paired seeds), the default GTN search's cell "
            f"ranks {g['truth_rank_mean']:.1f} of {_truth_cells()} on average against real-data ASHA's "
            f"{r['truth_rank_mean']:.1f}, a paired difference of "
            f"{_difference(p)} ranks: {_verdict(p)}"
            + (
                f" (showing a 10-rank difference at this spread needs about {p['seeds_for_10_ranks']} seeds); "
                f"{_accuracy(p)}"
                if len(p["seeds"]) >= VERDICT_SEEDS
                else ""
            )
        )
    return (
        "**Does the GTN search find better cells than real-data ASHA for the same compute?** Measured at one "
        f"commit ({d['commit'][:7]}) on Fashion-MNIST: " + "; ".join(says) + ".\n"
    )


@table("demo")
def demo() -> str:
    """README.md's quick start: how long the main job takes, from the last run of `search_phases --demo`."""
    run = next(r for r in load("search_phases.json")["runs"] if r["label"] == "demo")
    return (
        f"The main job (`configs/default.yaml`, what `make demo` runs once installed) took "
        f"{run['total_wall_seconds'] / 60:.1f} minutes on {run['cpus']:g} CPU cores, "
        f"{run['wall_seconds'] / 60:.1f} of them searching (measured by `python -m benchmarks.search_phases "
        f"--label demo --demo` at commit {run['provenance']['commit'][:7]}).\n"
    )
