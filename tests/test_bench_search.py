"""Benchmark mode: the table lookups, and the light loop of `gtnnas bench search` against a real Tune run."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import pandas as pd
import pytest
from ray.tune.experiment.trial import Trial

from cluster.bench_search import Repeat, incumbent_curve, run_repeat, summarise
from cluster.search_run import run_search
from results.leaderboard import read_parts
from search import nb201
from search.config import load_config
from search.space import parse

ROOT = Path(__file__).resolve().parents[1]


def test_table_lookups_and_percentiles():
    table = pd.read_parquet(nb201.TABLE)
    assert len(table) == nb201.N_CELLS and table["arch"].is_unique
    row = table.sample(1, random_state=3).iloc[0]
    assert nb201.lookup(row["arch"]) == {"val_acc": row["cifar10_val"] / 100, "test_acc": row["cifar10_test"] / 100}
    assert nb201.best_test() == table["cifar10_test"].max() / 100
    assert nb201.percentile(nb201.best_test()) == 100.0
    assert nb201.percentile(table["cifar10_test"].median() / 100) == pytest.approx(50.0, abs=0.5)


def test_incumbent_is_the_best_by_validation_and_summaries_have_known_answers():
    best = nb201.best_test()
    rep = Repeat(cells=["a", "b", "c"], val=[0.5, 0.7, 0.6], test=[best, 0.05, best])
    test, pct = incumbent_curve(rep)
    assert list(test) == [best, 0.05, 0.05]  # b has the best validation accuracy from the 2nd evaluation on
    assert pct[0] == 100.0 and pct[1] == 0.0  # no cell tests below 5%
    s = summarise([rep, rep], 3)
    assert s["evals_to_top1pct"]["median"] == 1.0 and s["evals_to_top1pct"]["share_within"] == 1.0


def test_light_loop_evaluates_the_same_cells_in_the_same_order_as_tune(ray_session, tmp_path):
    overrides = [
        f"storage={tmp_path}",
        "name=loop",
        "search.searcher=evolution",
        "search.population=4",
        "search.tournament=2",
        "search.scheduler=asha",
        "search.score=params",
        "search.max_concurrent=1",
    ]
    cfg = load_config(ROOT / "configs" / "nb201_bench.yaml", overrides)
    light = run_repeat(cfg.search, cfg.seed, evaluations=8)
    assert len(light.cells) == 8 and light.trials > 8  # ASHA stopped some trials after the free proxy rung
    cfg = load_config(ROOT / "configs" / "nb201_bench.yaml", overrides + [f"search.num_samples={light.trials}"])
    run_search(cfg)
    rows = read_parts(str(tmp_path / "loop")).sort_values("timestamp", kind="mergesort")
    first = rows[rows["iteration"] == 1]
    assert list(first["arch"]) == light.suggested  # every trial, in the order Tune started them
    evaluated = rows.dropna(subset=["val_acc"])
    assert list(evaluated["arch"]) == light.cells  # the evaluations, in order
    for a, v in zip(evaluated["arch"], evaluated["val_acc"], strict=True):  # each one the table's own value
        assert v == nb201.lookup(a)["val_acc"]
    assert (evaluated["sim_epochs"] == nb201.EPOCHS).all()
    assert evaluated["arch"].map(lambda a: parse(a).equiv_hash()).is_unique  # no class evaluated twice


def test_vendored_proxy_table_covers_every_cell_and_recomputes():
    """The committed table is what benchmark mode reads instead of computing: all cells, and true."""
    t = pd.read_parquet(nb201.PROXY_TABLE)
    assert len(t) == nb201.N_CELLS and t["arch"].is_unique
    assert set(t.columns) >= {"arch", "params", "flops", "synflow"}
    sample = t.sample(3, random_state=0)
    for row in sample.to_dict("records"):
        arch = parse(row["arch"])
        for name in ("params", "flops"):
            assert nb201.compute_proxy(arch, name) == pytest.approx(row[name], rel=1e-9)
        assert nb201.compute_proxy(arch, "synflow") == pytest.approx(row["synflow"], rel=1e-4)
    assert nb201.proxy(sample["arch"].iloc[0], "synflow") == sample["synflow"].iloc[0]  # read, not recomputed


@pytest.mark.parametrize("limit", [[], ["search.max_concurrent=1"]], ids=["dedup", "limiter"])
def test_a_trial_id_tune_draws_twice_is_refused_so_every_trial_keeps_its_rows(
    ray_session, tmp_path, monkeypatch, limit
):
    """Tune's trial ids are 8 random hex digits: a 10,000-trial run drew one twice, and the leaderboard,
    keyed by (trial_id, iteration), kept one of the two trials' results (and Tune's concurrency limiter
    asserts on it). Forced here: the second id repeats the first."""
    ids = itertools.chain(["dup00000", "dup00000"], (f"id{i:06d}" for i in itertools.count()))
    monkeypatch.setattr(Trial, "generate_id", classmethod(lambda cls: next(ids)))
    cfg = load_config(
        ROOT / "configs" / "nb201_bench.yaml",
        [
            f"storage={tmp_path}",
            "name=ids",
            "search.searcher=random",
            "search.seed_proxy=null",
            "search.num_samples=6",
            *limit,
        ],
    )
    run_search(cfg)
    rows = read_parts(str(tmp_path / "ids"))
    assert len(rows) == 6 and rows["trial_id"].is_unique  # six trials, six rows, none overwritten
    assert "dup00000" in set(rows["trial_id"])
    assert [nb201.lookup(a)["val_acc"] for a in rows["arch"]] == list(rows["val_acc"])

    state = pickle.loads(sorted((tmp_path / "ids").glob("searcher-state-*.pkl"))[-1].read_bytes())
    assert state["refused"] == (0 if limit else 1)  # the limiter refuses a live id before Deduplicated sees it
