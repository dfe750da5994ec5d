"""The truth builder as Tune trials (tiny budget, then resumed) and the proxy benchmark on its output."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from cluster.cli import main
from cluster.proxy_bench import step_efficiency
from cluster.truth import build_truth, plan_jobs, truth_config
from results.truthtable import read_rows, replicate_rho, seed_rho
from search.config import load_config

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def test_plan_is_seeded_distinct_and_prefix_stable():
    big, small = plan_jobs(20, 2, 7), plan_jobs(5, 2, 7)
    assert big[:10] == small and len({a for a, _ in big}) == 20
    assert [s for _, s in small[:4]] == [0, 1, 0, 1]
    assert plan_jobs(5, 2, 8) != small
    with pytest.raises(ValueError, match="--archs"):
        plan_jobs(0, 1)


def test_gtn_step_efficiency_reads_the_real_ladder():
    s = {
        "real:16": {"spearman": 0.2},
        "real:64": {"spearman": 0.5},
        "real:256": {"spearman": 0.7},
        "gtn:16": {"spearman": 0.6},
        "gtn:8": {"spearman": 0.1},
        "synflow": {"spearman": 0.9},
    }
    e = step_efficiency(s)
    assert e["gtn:16"]["real_steps_same_rho"] == pytest.approx(128.0)  # halfway between 64 and 256 in log steps
    assert e["gtn:16"]["step_ratio"] == pytest.approx(8.0)
    assert e["gtn:8"]["real_steps_same_rho"] is None and e["gtn:8"]["bound"] == "below the ladder"
    assert set(e) == {"gtn:16", "gtn:8"}


def test_seed_rho_is_the_ceiling():
    rows = [
        {"arch": a, "seed": s, "val_acc": v}
        for a, s, v in [("a", 0, 0.1), ("b", 0, 0.2), ("c", 0, 0.3), ("a", 1, 0.15), ("b", 1, 0.35), ("c", 1, 0.3)]
    ]
    assert seed_rho(rows) == pytest.approx(0.5)


def test_replicate_rho_averages_every_split_of_the_seeds():
    # seeds 0 and 1 rank a<b<c<d, seeds 2 and 3 swap a and b. Halves {0,1}|{2,3} give rho 0.8 by hand
    # (1 - 6*2/(4*15)); {0,2}|{1,3} and {0,3}|{1,2} give identical means, rho 1. Mean: 2.8 / 3.
    ranks = {0: (1, 2, 3, 4), 1: (1, 2, 3, 4), 2: (2, 1, 3, 4), 3: (2, 1, 3, 4)}
    rows = [{"arch": a, "seed": s, "val_acc": v} for s, t in ranks.items() for a, v in zip("abcd", t, strict=True)]
    rho, k = replicate_rho(rows)
    assert k == 2 and rho == pytest.approx(2.8 / 3)
    assert seed_rho(rows) == pytest.approx((1 + 1 + 4 * 0.8) / 6)
    assert replicate_rho(rows + [{"arch": "e", "seed": 0, "val_acc": 9.0}])[0] == pytest.approx(
        2.8 / 3
    )  # e lacks seeds
    rho, k = replicate_rho([r for r in rows if r["seed"] < 3])  # 3 seeds: no two halves of 2
    assert k == 0 and rho != rho


@pytest.fixture(scope="module")
def truth(ray_session, tmp_path_factory):
    cfg = truth_config(load_config(SMOKE, []), 0.05)
    out = str(tmp_path_factory.mktemp("truth") / "t.parquet")
    rows, ran = build_truth(cfg, out, n_archs=3, n_seeds=1)
    return cfg, out, rows, ran


def test_truth_builder_trains_then_resumes(truth):
    cfg, out, rows, ran = truth
    assert ran == 3 and len(rows) == 3
    table = pd.read_parquet(out)
    assert {
        "arch",
        "arch_hash",
        "seed",
        "val_acc",
        "test_acc",
        "budget_epochs",
        "params",
        "flops",
        "seconds",
        "versions",
        "config_hash",
    } <= set(table.columns)
    assert table["val_acc"].between(0, 1).all() and table["test_acc"].between(0, 1).all()
    assert (table["budget_epochs"] == 0.05).all() and (table["steps"] == 2).all()  # 0.05 x 1000 / 32
    before = {(r["arch"], r["seed"]): r["val_acc"] for r in read_rows(out)}
    rows, ran = build_truth(cfg, out, n_archs=4, n_seeds=1)  # resumed: only the new cell is trained
    assert ran == 1 and len(rows) == 4
    assert all(before[(r["arch"], r["seed"])] == r["val_acc"] for r in rows if (r["arch"], r["seed"]) in before)
    assert len(pd.read_parquet(out)) == 4
    rows, ran = build_truth(cfg, out, n_archs=4, n_seeds=1)
    assert ran == 0
    # settings a truth run does not depend on (the teacher's, the data's location) keep it resumable
    moved = replace(
        cfg, gtn=replace(cfg.gtn, outer_steps=cfg.gtn.outer_steps + 1), data=replace(cfg.data, root="/elsewhere")
    )
    assert build_truth(moved, out, n_archs=4, n_seeds=1)[1] == 0
    for other in (
        replace(cfg, train=replace(cfg.train, epochs=0.1)),
        replace(cfg, net=replace(cfg.net, channels=cfg.net.channels + 1)),
    ):
        with pytest.raises(ValueError, match="another config or budget"):
            build_truth(other, out, n_archs=4, n_seeds=1)


def test_bench_proxies_on_the_truth(truth, tmp_path, capsys):
    _, out, _, _ = truth
    res = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "proxies",
                "--truth",
                out,
                "--proxies",
                "params,synflow,real:2,ensemble:params+synflow",
                "--out",
                str(res),
            ]
        )
        == 0
    )
    data = json.loads((res / "proxies.json").read_text())
    assert data["n_archs"] == 4 and "ceiling_spearman" in data
    assert data["replicate_seeds"] == 0 and data["replicate_spearman"] is None  # one seed: no halves
    for name in ("params", "synflow", "real:2", "ensemble:params+synflow"):
        m = data["proxies"][name]
        assert {"spearman", "kendall", "spearman_top_half", "seconds_per_arch"} <= set(m)
        assert m["seconds_per_arch"] > 0
    assert len(list(res.glob("scatter_*.png"))) == 4
    assert "ceiling" in capsys.readouterr().out


def test_bad_truth_and_proxy_input_exit_2(tmp_path, capsys):
    bogus = tmp_path / "x.parquet"
    pd.DataFrame({"arch": ["x"]}).to_parquet(bogus)
    assert main(["bench", "proxies", "--truth", str(bogus), "--out", str(tmp_path / "o")]) == 2
    assert "missing columns" in capsys.readouterr().err
    assert main(["bench", "proxies", "--truth", str(bogus), "--proxies", "magic", "--out", str(tmp_path)]) == 2
    assert "unknown proxy 'magic'" in capsys.readouterr().err
    assert main(["bench", "proxies", "--truth", str(bogus), "--proxies", "gtn:8", "--out", str(tmp_path)]) == 2
    assert "--teacher" in capsys.readouterr().err
    assert main(["truth", "--config", str(SMOKE), "--archs", "0", "--budget", "1", "--out", str(tmp_path / "t")]) == 2
    assert not (tmp_path / "t").exists() and not (tmp_path / "o").exists()
