"""Tables of this round's benchmarks: the default score's choice, own data's preparation, fronts on
NAS-Bench-201 and a latency-constrained Fashion-MNIST search."""

from __future__ import annotations

from benchmarks.tables.base import RESULTS, ci, load, md, table


@table("score-choice")
def score_choice() -> str:
    """Every candidate on the tuning split with its share of paired-bootstrap wins over the incumbent."""
    d = load("score_choice.json")
    rows = sorted(d["candidates"].items(), key=lambda kv: -kv[1]["tuning_rho"])
    out = [
        [
            f"`{name}`" + (" (incumbent, kept)" if name == d["chosen"] else ""),
            ci(r["tuning_rho"], r["tuning_ci95"], 3, 2),
            "-" if name == d["incumbent"] else f"{r['wins_over_incumbent']:.0%}",
        ]
        for name, r in rows[:12]
    ]
    return md(["candidate (equal weights on ranks)", "tuning rho [95% CI]", "wins over the incumbent"], out)


@table("score-refit")
def score_refit() -> str:
    d = load("score_choice.json")["refit"]
    rows = [
        [r["n_real"], ci(r["mean_rho_gain"], r["gain_ci95"], 3, 3, sign="+"), f"{r['share_refit_better']:.0%}"]
        for r in d["by_n"]
    ]
    return md(["cells with a real result", "rho gain of a refit [95%]", "draws where the refit ranks better"], rows)


def missing(name: str, command: str) -> str | None:
    """A note in place of a table whose JSON has not been written yet (never a typed figure)."""
    return None if has(name) else f"_Not measured yet: `{command}` writes `benchmarks/results/{name}`._\n"


@table("data-prepare")
def data_prepare() -> str:
    if note := missing("data_prepare.json", "python -m benchmarks.data_prepare"):
        return note
    d = load("data_prepare.json")
    rows = [
        [
            r["workers"],
            f"{r['seconds']:.1f} s",
            f"{r['images_per_second']:,.0f}",
            f"{r['total_peak_mb']:,.0f} MB",
        ]
        for r in d["prepare"]
    ]
    table_ = md(["decoding processes", f"{d['images']:,} PNGs prepared in", "images / s", "peak memory"], rows)
    times = md(
        ["", "seconds (best of 3)"],
        [
            ["load the built-in Fashion-MNIST (IDX files)", f"{d['load_seconds_builtin']:.3f}"],
            [
                "load the prepared cache (memory-map, normalise)",
                f"{d['load_seconds_cache']:.3f} (x{d['load_ratio']:.2f})",
            ],
            [
                f"find it first: list the {d['images']:,} source files, check the fingerprint",
                f"{d['find_seconds']:.3f} (both: x{d['find_and_load_ratio']:.2f})",
            ],
        ],
    )
    exact = "exactly" if d["pixels_and_labels_exact"] else "NOT"
    note = f"\nCache {d['cache_mb']:.1f} MB; its pixels and labels are {exact} the built-in loader's.\n\n"
    return table_ + note + times


@table("nb201-pareto")
def nb201_pareto() -> str:
    if note := missing("search_nb201_pareto.json", "python -m benchmarks.search_nb201_pareto --tune"):
        return note
    d = load("search_nb201_pareto.json")
    rows = []
    for name, r in d["strategies"].items():
        at, n = r["at"], r["evaluations"]
        hv200 = f"{at['200']:.3f} [{r['q25'][199]:.3f}, {r['q75'][199]:.3f}]" if "200" in at else "-"
        rows.append(
            [
                f"`{name}`",
                f"{n} x {r['repeats']}",
                *(f"{at[k]:.3f}" if k in at else "-" for k in ("50", "100")),
                hv200,
                *(f"{at[k]:.3f}" if k in at else "-" for k in ("300", "1000")),
                _evals(r["evals_to"]["0.98"], n),
                _evals(r["evals_to"]["0.99"], n),
            ]
        )
    head = ["strategy", "evals x repeats", "HV@50", "HV@100", "HV@200 [quartiles]", "HV@300", "HV@1000"]
    return md([*head, "evals to 0.98 (median)", "evals to 0.99 (median)"], rows)


def _evals(e: dict[str, float], budget: int) -> str:
    reached = f"{e['share_reached']:.0%} of runs reach it"
    return f"{e['median']:.0f} ({reached})" if e["median"] != float("inf") else f"> {budget} ({reached})"


@table("budget-fmnist")
def budget_fmnist() -> str:
    if note := missing("budget_fashion_mnist.json", "python -m benchmarks.budget_fashion_mnist"):
        return note
    d = load("budget_fashion_mnist.json")
    again = [t["again_ms"] for t in d["trained"]]
    rows = [
        ["bound (median of a seeded sample, idle machine)", f"{d['bound_ms']:.3f} ms"],
        ["cells refused before scoring (INFEASIBLE)", d["refused_cells"]],
        ["trials / cells trained on real data", f"{d['trials']} / {len(d['trained'])}"],
        [
            "trained cells meeting the bound when measured again",
            f"{d['trained_meeting_bound_again']:.0%} (slowest {max(again):.3f} ms)" if again else "-",
        ],
        ["the best cell's network, measured again (eager PyTorch)", f"{d['best']['again_ms']:.3f} ms"],
        [
            "its exported program (`torch.export.load(...).module()`), measured",
            f"{d['exported_program_ms']:.3f} ms (test acc {d['best']['test_acc']:.4f})",
        ],
        ["search, retraining", f"{d['search_seconds'] / 60:.1f} min, {d['retrain_seconds'] / 60:.1f} min"],
    ]
    return md(["what", "measured"], rows)


def has(name: str) -> bool:
    return (RESULTS / name).is_file()
