"""benchmarks/README.md's tables on speed and scale: search overhead and scale, resume overhead."""

from __future__ import annotations

from typing import Any

from benchmarks.tables.base import load, md, pct, table


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
