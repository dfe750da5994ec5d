"""``gtnnas report``: one self-contained HTML page (no network, no CDN) with matplotlib PNGs beside it.

Sections: best-so-far against trials and wall time; proxy against real score (and against a truth
table); Pareto fronts of accuracy against each cost the table has (params, FLOPs, latency), each front
listed, with the truth table's own front drawn for comparison; operation frequency per edge among the
top-k; the run's GTN curriculum; the run's config and versions. A small inline script counts images
that failed to load, so a headless browser can check the page.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from typing import Any

import numpy as np
import pandas as pd

from results.analysis import history, load, locate, metadata, op_frequency, pareto_front, top
from results.storage import exists, join, resolve, write_text
from results.truthtable import load_truth
from search.pareto import COSTS
from search.space import parse
from search.stats import kendall, spearman

CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});
</script>"""


def _plt() -> Any:
    import matplotlib  # noqa: PLC0415  (lazy: matplotlib, Agg backend at plot time)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  (lazy: after matplotlib.use("Agg"))

    return plt


def _save(fig: Any, out: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out, name))
    _plt().close(fig)
    return name


def plot_progress(hist: Any, out: str) -> list[str]:
    plt = _plt()
    names = []
    for x, label, fname in (
        ("trial", "trials started", "progress_trials.png"),
        ("wall_s", "wall time (s)", "progress_time.png"),
    ):
        fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=110)
        for exp, g in hist.groupby("experiment"):
            if g["best_val_acc"].notna().any():
                ax.step(g[x], g["best_val_acc"], where="post", label=f"{exp}: real val_acc")
            if g["best_rung1_score"].notna().any():
                ax.step(g[x], g["best_rung1_score"], where="post", linestyle="--", label=f"{exp}: rung-1 score")
        ax.set_xlabel(label)
        ax.set_ylabel("best so far")
        ax.legend(fontsize=7)
        names.append(_save(fig, out, fname))
    return names


def plot_scatter(x: Any, y: Any, xlabel: str, ylabel: str, out: str, fname: str) -> tuple[str, float, float]:
    plt = _plt()
    x, y = np.asarray(x, float), np.asarray(y, float)
    rho, tau = spearman(x, y), kendall(x, y)
    fig, ax = plt.subplots(figsize=(4.6, 3.6), dpi=110)
    ax.scatter(x, y, s=14, alpha=0.75)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"Spearman rho = {rho:.3f}, Kendall tau = {tau:.3f}, n = {len(x)}", fontsize=9)
    return _save(fig, out, fname), rho, tau


def plot_pareto(df: Any, cost: str, out: str, truth_front: Any = None) -> tuple[str, Any]:
    """val_acc against ``cost``: every architecture in grey, the front in colour joined as a step line, and
    the truth table's own front (mean val_acc over its seeds) dashed when given; returns (PNG, front)."""
    plt = _plt()
    front = pareto_front(df, cost)
    fig, ax = plt.subplots(figsize=(4.6, 3.6), dpi=110)
    d = df.dropna(subset=[cost, "val_acc"])
    ax.scatter(d[cost], d["val_acc"], s=12, alpha=0.5, color="0.6", label=f"architectures ({len(d)})")
    ax.step(front[cost], front["val_acc"], where="post", color="C3", label=f"Pareto front ({len(front)})")
    ax.scatter(front[cost], front["val_acc"], s=22, color="C3", zorder=3)
    if truth_front is not None and len(truth_front):
        ax.step(
            truth_front[cost],
            truth_front["val_acc"],
            where="post",
            color="k",
            linestyle="--",
            linewidth=1,
            label=f"truth table's front ({len(truth_front)})",
        )
    ax.set_xlabel(cost)
    ax.set_ylabel("val_acc")
    if d[cost].gt(0).all() and d[cost].max() > 20 * d[cost].min():
        ax.set_xscale("log")  # costs spread over decades (NAS-Bench-201 params and FLOPs do)
    ax.legend(fontsize=7)
    return _save(fig, out, f"pareto_{cost}.png"), front


def truth_front(t: Any, cost: str) -> Any:
    """The truth table's front of mean val_acc over seeds against ``cost`` (None without that column)."""
    if t is None or cost not in t.columns or not t[cost].notna().any():
        return None
    key = "arch_hash" if "arch_hash" in t.columns else "arch"
    cells = t.groupby(key, as_index=False).agg(
        arch=("arch", "first"), val_acc=("val_acc", "mean"), **{cost: (cost, "first")}
    )
    return pareto_front(cells, cost)


def plot_ops(freq: Any, k: int, out: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.2), dpi=110)
    im = ax.imshow(freq.to_numpy(), vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(freq.columns)), freq.columns, rotation=30, ha="right", fontsize=7)
    ax.set_yticks(range(len(freq.index)), freq.index, fontsize=7)
    for (i, j), v in np.ndenumerate(freq.to_numpy()):
        ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7, color="w" if v < 0.6 else "k")
    ax.set_title(f"operation share per edge, top {k}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _save(fig, out, "op_frequency.png")


def curriculum_png(path: str, meta: dict[str, Any], out: str) -> tuple[str | None, str]:
    """Copy the experiment's ``curriculum.png`` (drawn by the search driver), or (None, why not)."""
    finals, running = locate(path)
    roots = running + [f.rsplit("/", 1)[0] for f in finals]
    if len(roots) != 1:
        return None, f"{len(roots)} experiments: open one experiment's report to see its curriculum"
    src = join(roots[0], "curriculum.png")
    if not exists(src):
        return None, f"{roots[0]} holds no curriculum.png (a teacher that trains on real batches has none)"
    fs, p = resolve(src)
    with fs.open_input_stream(p) as f, open(os.path.join(out, "curriculum.png"), "wb") as dst:
        dst.write(f.read())
    content_hash = meta.get("curriculum", {}).get("content_hash", "?")
    return "curriculum.png", f"teacher {meta.get('teacher', '?')}, curriculum {content_hash}"


def _table(df: Any, cols: list[str]) -> str:
    cols = [c for c in cols if c in df.columns]
    return df[cols].to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, classes="t", na_rep="-")


def build_report(path: str, out: str, *, truth: str | None = None, top_k: int = 10) -> str:
    """Write ``out/index.html`` and its PNGs; returns the HTML path.

    Everything is validated and drawn in a private temporary folder first and renamed into ``out`` at the
    end (index.html last, through the one writer), so a failure leaves nothing half-written.
    """
    df = load(path)
    meta = metadata(path)
    truth_df = None
    if truth:
        truth_df = load_truth(truth)[0]
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".report-", dir=parent)
    try:
        page = _build(path, df, meta, work, truth, truth_df, top_k)
        os.makedirs(out, exist_ok=True)
        for name in sorted(os.listdir(work)):
            os.replace(os.path.join(work, name), os.path.join(out, name))
        target = os.path.join(out, "index.html")
        write_text(target, page)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _build(path: str, df: Any, meta: dict[str, Any], out: str, truth: str | None, truth_df: Any, top_k: int) -> str:
    """The page's sections in order (a section with nothing to show is left out), drawn into ``out``."""
    sections = [
        _top_section(df, top_k),
        _progress_section(path, out),
        _proxy_section(df, out),
        _phases_section(meta["phases"]) if meta.get("phases") else None,
        _truth_section(df, truth_df, truth, out) if truth else None,
        _pareto_section(df, out, truth_df),
        _ops_section(df, top_k, out),
        _best_model_section(path, out),
        _curriculum_section(path, meta, out),
        _config_section(meta),
    ]
    return _page(path, df, [s for s in sections if s])


def _top_section(df: Any, top_k: int) -> str:
    best = top(df, top_k)
    return f"<h2>Top {len(best)} of {len(df)} architectures (one row per equivalence class)</h2>" + _table(
        best, ["experiment", "arch", "val_acc", "test_acc", "rung1_score", "params", "flops", "trials"]
    )


def _progress_section(path: str, out: str) -> str | None:
    hist = history(path)
    if hist.empty:
        return None
    a, b = plot_progress(hist, out)
    return (
        f"<h2>Search progress</h2><img src='{a}' alt='best so far against trials'>"
        f"<img src='{b}' alt='best so far against wall time'>"
    )


def _proxy_section(df: Any, out: str) -> str:
    """The rung-1 score against real-data accuracy, with Spearman and Kendall, or why not."""
    both = df.dropna(subset=["rung1_score", "val_acc"]) if "rung1_score" in df else df.iloc[:0]
    if len(both) < 2:
        return (
            "<h2>Is the proxy trustworthy?</h2><p>Fewer than two architectures have both a rung-1 "
            "score and a real-data score.</p>"
        )
    name, rho, tau = plot_scatter(
        both["rung1_score"],
        both["val_acc"],
        "rung-1 score (GTN or proxy)",
        "real val_acc (best rung)",
        out,
        "proxy_vs_real.png",
    )
    return (
        f"<h2>Is the proxy trustworthy?</h2><p>The rung-1 score against real-data accuracy over "
        f"{len(both)} architectures that have both: Spearman rho {rho:.3f}, Kendall tau {tau:.3f}."
        f"</p><img src='{name}' alt='proxy against real score'>"
    )


def _pareto_section(df: Any, out: str, truth_df: Any = None) -> str | None:
    """val_acc against each cost the table has (params, flops, latency_ms), each front listed below its plot."""
    costs = [c for c in COSTS if c in df.columns and df[c].notna().any()]
    if not costs:
        return None
    if truth_df is not None and "arch_hash" not in truth_df:
        truth_df = truth_df.assign(arch_hash=[parse(a).equiv_hash() for a in truth_df["arch"]])
    fronts = []
    for cost in costs:
        truth = truth_front(truth_df, cost)
        name, front = plot_pareto(df, cost, out, truth)
        found = ""
        if truth is not None:
            on = set(front["arch_hash"]) & set(truth["arch_hash"]) if "arch_hash" in front else set()
            found = f"<p>The truth table's front has {len(truth)} cells; {len(on)} of this front's are on it.</p>"
        fronts.append(
            f"<h3>val_acc against {cost}</h3><img src='{name}' alt='Pareto front against {cost}'>{found}"
            + _table(front, ["arch", cost, "val_acc", "test_acc", "pareto_rank"])
        )
    return (
        "<h2>Accuracy against cost: Pareto fronts</h2><p>Each front: the architectures no other beats on both "
        "accuracy and that cost (<code>pareto_rank</code> is the rank under the search's own objectives).</p>"
        + "".join(fronts)
    )


def _ops_section(df: Any, top_k: int, out: str) -> str | None:
    k = min(top_k, int(df["val_acc"].notna().sum()))
    if not k:
        return None
    return (
        f"<h2>What the best cells are made of</h2><img src='{plot_ops(op_frequency(df, k), k, out)}' "
        "alt='operation frequency per edge'>"
    )


def _best_model_section(path: str, out: str) -> str | None:
    """After ``gtnnas retrain``: the best model's per-class test accuracy and confusion matrix, by class name."""
    root = _one_root(path)
    if root is None or not exists(join(root, "confusion.json")):
        return None
    fs, p = resolve(join(root, "confusion.json"))
    with fs.open_input_stream(p) as f:
        c = json.loads(f.read())
    names, matrix = c["class_names"], np.asarray(c["matrix"])
    rows = [
        {"class": n, "test images": int(matrix[i].sum()), "accuracy": float(a)}
        for i, (n, a) in enumerate(zip(names, c["per_class_acc"], strict=True))
    ]
    plt = _plt()
    k = len(names)
    fig, ax = plt.subplots(figsize=(min(3 + 0.32 * k, 12), min(2.6 + 0.3 * k, 11)), dpi=110)
    im = ax.imshow(matrix / np.maximum(matrix.sum(1, keepdims=True), 1), vmin=0, vmax=1, cmap="viridis")
    if k <= 40:  # beyond that the names would not be readable
        ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=7)
        ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    ax.set_title("best model, test split: share of each true class", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    name = _save(fig, out, "confusion.png")
    total = matrix.trace() / max(matrix.sum(), 1)
    return (
        f"<h2>The best model, class by class</h2><p>Test accuracy {total:.4f} over {int(matrix.sum())} images "
        f"(<code>gtnnas retrain</code>'s best run).</p><img src='{name}' alt='confusion matrix'>"
        + _table(pd.DataFrame(rows), ["class", "test images", "accuracy"])
    )


def _one_root(path: str) -> str | None:
    finals, running = locate(path)
    roots = running + [f.rsplit("/", 1)[0] for f in finals]
    return roots[0] if len(roots) == 1 else None


def _curriculum_section(path: str, meta: dict[str, Any], out: str) -> str:
    grid, note = curriculum_png(path, meta, out)
    image = f"<img src='{grid}' alt='curriculum grid'>" if grid else ""
    return f"<h2>The GTN curriculum</h2><p>{html.escape(note)}</p>{image}"


def _config_section(meta: dict[str, Any]) -> str:
    shown = {
        k: meta[k] for k in ("config_hash", "versions", "teacher", "curriculum", "calibration", "phases") if k in meta
    }
    return (
        "<h2>Config and versions</h2><pre>"
        + html.escape(json.dumps(shown, indent=2, default=str))
        + "</pre><details><summary>full config</summary><pre>"
        + html.escape(json.dumps(meta.get("config", {}), indent=2, default=str))
        + "</pre></details>"
    )


def _page(path: str, df: Any, sections: list[str]) -> str:
    n_exp = df["experiment"].nunique() if "experiment" in df else 1
    title = f"gtnnas report: {html.escape(str(path))}"
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style>"
        f"</head><body><h1>{title}</h1><p>{len(df)} architectures from {n_exp} experiment(s).</p>"
        + "\n".join(f"<section>{s}</section>" for s in sections)
        + CHECK_SCRIPT
        + "</body></html>"
    )


def _phases_section(split: dict[str, Any]) -> str:
    """Core-seconds by phase over the search's trials, their shares of cores x wall, the idle share."""
    rows = "".join(
        f"<tr><td>{p}</td><td>{v:,.0f}</td><td>{split.get('share', {}).get(p, float('nan')):.1%}</td></tr>"
        for p, v in split["core_seconds"].items()
    )
    idle = (
        f"<tr><td>idle (no trial's)</td><td></td><td>{split['idle_share']:.1%}</td></tr>"
        if "idle_share" in split
        else ""
    )
    return (
        f"<h2>Where the cores went</h2><p>{split.get('cores', '?')} CPUs for {split.get('wall_seconds', 0):.0f} s "
        f"of searching; {split['cells_screened']} cells screened by the rung-1 score, {split['cells_promoted']} "
        f"trained on real data.</p><table><tr><th>phase</th><th>core-seconds</th><th>share</th></tr>{rows}{idle}"
        "</table>"
    )


def _truth_section(df: Any, t: Any, truth: str, out: str) -> str:
    if "arch_hash" not in t:
        t = t.assign(arch_hash=[parse(a).equiv_hash() for a in t["arch"]])
    mean = t.groupby("arch_hash")["val_acc"].mean().rename("truth_val_acc")
    joined = df.merge(mean, left_on="arch_hash", right_index=True)
    parts = [
        f"<h2>Against the truth table</h2><p>{len(joined)} of {len(df)} architectures are in {html.escape(truth)}."
    ]
    for col, fname in (("rung1_score", "truth_rung1.png"), ("val_acc", "truth_real.png")):
        d = joined.dropna(subset=[col])
        if len(d) >= 2:
            name, rho, tau = plot_scatter(d[col], d["truth_val_acc"], col, "truth val_acc", out, fname)
            parts.append(f"<p>{col}: rho {rho:.3f}, tau {tau:.3f}</p><img src='{name}' alt='{col} against truth'>")
    return "".join(parts)


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
img{max-width:100%;margin:.4em .6em .4em 0;vertical-align:top}table.t{border-collapse:collapse;font-size:.85em}
table.t td,table.t th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right}
table.t td:nth-child(-n+2){text-align:left;font-family:monospace}pre{background:#f6f6f6;padding:.8em;overflow:auto}"""
