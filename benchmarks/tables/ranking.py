"""benchmarks/README.md's tables on ranking cells: seed noise, the default score, proxies."""

from __future__ import annotations

from typing import Any

from benchmarks.tables.base import ci, load, md, table


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
    ladder = ((f"`{n}`", n) for n in ("real:16", "real:32", "real:64", "real:128"))
    rows = [_issue13_row(label, c[name], name == winner) for label, name in [*specs, *ladder]]
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


def _issue13_row(label: str, r: dict[str, Any], strong: bool) -> list[str]:
    """One candidate of the issue-#13 run: tuning rho, evaluation rho with its interval, Kendall, top
    half, top 20% by truth, seconds per cell; a candidate that lost on tuning was not scored."""
    tuning = f"{r['tuning']['spearman']:.3f}" if "tuning" in r else ""
    ev = r.get("evaluation")
    if ev is None:
        return [label, tuning, "not scored (lost on tuning)", "", "", "", f"{r['seconds_per_arch']:.2f}"]
    return [
        label,
        tuning,
        ci(ev["spearman"], ev["spearman_ci95"], strong=strong),
        f"{ev['kendall']:.3f}",
        f"{ev['spearman_top_half']:.3f}",
        f"{ev['spearman_top20_truth']:.3f}",
        f"{r['seconds_per_arch']:.2f}",
    ]


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
