"""Pareto fronts in the results (issue #28 item 4): the final table's pareto_rank against a brute-force
reference, ``gtnnas leaderboard --pareto``, ``gtnnas retrain --pareto``'s choice of cells, ``gtnnas compare``'s
hypervolumes and the status line's front, all on synthetic tables (no search, no training)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cluster.callbacks import StatusCallback, non_dominated
from cluster.cli import main
from results.analysis import pareto_front
from results.compare import fronts
from results.leaderboard import row_from_result, write_final, write_part
from results.storage import write_parquet
from search.config import ExperimentConfig
from search.pareto import hypervolume
from search.space import parse, sample

OBJECTIVES = "val_acc:max,params:min,latency_ms:min"


def _brute_ranks(points: list[tuple[float, ...]], modes: list[str]) -> list[int]:
    """Peel fronts one by one with an explicit pairwise dominance test."""
    sign = [-1.0 if m == "max" else 1.0 for m in modes]
    low = [tuple(s * v for s, v in zip(sign, p, strict=True)) for p in points]

    def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))

    ranks, left, r = [-1] * len(low), set(range(len(low))), 0
    while left:
        layer = {i for i in left if not any(dominates(low[j], low[i]) for j in left if j != i)}
        for i in layer:
            ranks[i] = r
        left, r = left - layer, r + 1
    return ranks


def _results(rng: np.random.Generator, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        arch = f"cell{i}"
        common = {"arch": arch, "arch_hash": f"h{i}", "rung": 1, "gtn_score": float(rng.random())}
        costs = {
            "params": int(rng.integers(1, 8)) * 1000,  # few distinct values: ties and duplicates happen
            "flops": int(rng.integers(1, 5)) * 10**6,
            "latency_ms": float(rng.integers(1, 6)) / 4,
        }
        rows.append({"training_iteration": 1, **common, **costs})
        if i % 7 != 3:  # some cells never reach real data: no val_acc, so no rank
            acc = float(rng.integers(60, 70)) / 100
            rows.append({"training_iteration": 2, **common, **costs, "rung": 2, "val_acc": acc})
    return rows


@pytest.mark.parametrize("objectives", [OBJECTIVES, "val_acc:max,flops:min", "val_acc:max", None])
def test_pareto_rank_of_the_final_table_matches_a_brute_force_reference(tmp_path, objectives):
    rng = np.random.default_rng(7)
    root = str(tmp_path / "exp")
    write_part(root, [row_from_result("exp", f"t{i}", r) for i, r in enumerate(_results(rng, 60))], {})
    meta = {"config": {"search": {"objectives": objectives}}} if objectives else {}
    final = write_final(root, meta)
    stored = pd.read_parquet(tmp_path / "exp" / "leaderboard.parquet")
    objs = [item.split(":") for item in (objectives or "val_acc:max").split(",")]
    names, modes = [n for n, _ in objs], [m for _, m in objs]
    have = final[names].notna().all(axis=1)
    expected = _brute_ranks([tuple(r) for r in final.loc[have, names].to_numpy(float)], modes)
    assert list(final.loc[have, "pareto_rank"]) == expected and list(stored.loc[have, "pareto_rank"]) == expected
    assert (~have).sum() > 0 and stored.loc[~have, "pareto_rank"].isna().all()
    if objectives in (None, "val_acc:max"):  # one objective: distinct accuracies in order, ties sharing a rank
        dense = final.loc[have, "val_acc"].rank(method="dense", ascending=False).astype(int) - 1
        assert list(final.loc[have, "pareto_rank"]) == list(dense)


def _board(path, rows, objectives=None):
    """A finished experiment's folder: the final table (its config in the metadata) and experiment.json."""
    path.mkdir(parents=True, exist_ok=True)
    config = ExperimentConfig().to_dict()
    if objectives:
        config["search"]["objectives"] = objectives
    cols = ["experiment", "arch", "arch_hash", "val_acc", "test_acc", "rung1_score", "params", "flops", "latency_ms"]
    df = pd.DataFrame([dict(zip(cols, r, strict=True)) for r in rows], columns=cols).assign(trials=1)
    write_parquet(pa.Table.from_pandas(df, preserve_index=False), str(path / "leaderboard.parquet"), {"config": config})
    (path / "experiment.json").write_text(json.dumps({"config": config}))


#            arch  val   test  rung1  params flops latency
ROWS = [
    ("e", "a", "a", 0.90, 0.89, 0.5, 500, 5000, 2.0),
    ("e", "b", "b", 0.80, 0.79, 0.4, 100, 1000, 1.0),
    ("e", "c", "c", 0.70, 0.69, 0.9, 50, 500, 3.0),
    ("e", "d", "d", 0.60, 0.59, 0.8, 400, 900, 0.5),  # dominated on params, not on latency
    ("e", "x", "x", None, None, 0.7, 10, 100, 0.1),  # no real accuracy: on no front
    ("e", "f", "f", 0.85, 0.84, 0.3, 450, 4500, 2.5),
]


def test_leaderboard_pareto_prints_the_front_sorted_by_the_first_objective(tmp_path, capsys):
    _board(tmp_path / "e", ROWS)
    assert main(["leaderboard", str(tmp_path / "e"), "--pareto", "val_acc:max,params:min", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows] == ["a", "f", "b", "c"] and {r["pareto_rank"] for r in rows} == {0}
    assert main(["leaderboard", str(tmp_path / "e"), "--pareto", "params:min,latency_ms:min", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(",")[1] for line in lines[1:]] == ["x"]  # x has both costs: the cheapest everywhere
    assert main(["leaderboard", str(tmp_path / "e"), "--pareto", "val_acc,latency_ms,rung1_score:max"]) == 0
    table = capsys.readouterr().out
    assert "latency_ms" in table and "pareto_rank" in table and " d " in table  # d: the fastest with an accuracy
    assert main(["leaderboard", str(tmp_path / "e"), "--pareto", "val_acc:max,params:min", "--top", "1"]) == 0
    assert " a " in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("val_acc:max", "at least two objectives"),
        ("val_acc:max,nope:min", "unknown objective 'nope'"),
        ("val_acc:best,params:min", "mode 'best' is not min or max"),
        ("val_acc,params,val_acc", "given twice"),
        ("val_acc:max,score:max", "no score column"),
    ],
)
def test_leaderboard_pareto_bad_input_is_one_line(tmp_path, capsys, spec, needle):
    _board(tmp_path / "e", ROWS)
    assert main(["leaderboard", str(tmp_path / "e"), "--pareto", spec]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert main(["leaderboard", str(tmp_path / "e"), "--pareto", "val_acc,params", "--sort", "params"]) == 2


def test_retrain_plan_chooses_the_front(tmp_path):
    from cluster.retrain import plan  # noqa: PLC0415  (lazy: torch and Ray)

    _board(tmp_path / "multi", ROWS, "val_acc:max,latency_ms:min")
    _board(tmp_path / "single", ROWS)
    assert [r["arch"] for r in plan(str(tmp_path / "multi"), None, "")[1]] == ["a", "b", "d"]  # its own objectives
    assert [r["arch"] for r in plan(str(tmp_path / "multi"), None, "val_acc:max,params:min")[1]] == ["a", "f", "b", "c"]
    assert [r["arch"] for r in plan(str(tmp_path / "single"), 2)[1]] == ["a", "f"]  # --top as before
    assert [r["arch"] for r in plan(str(tmp_path / "single"), None)[1]] == ["a", "f", "b"]  # the default top 3
    for args, needle in (
        ((str(tmp_path / "single"), None, ""), "single-objective search"),
        ((str(tmp_path / "multi"), 2, ""), "exclusive"),
        ((str(tmp_path / "multi"), None, "val_acc:max"), "at least two"),
    ):
        with pytest.raises(ValueError, match=needle):
            plan(*args)


def test_retrain_flags_are_exclusive_and_checked_before_ray(tmp_path, capsys):
    _board(tmp_path / "multi", ROWS, "val_acc:max,latency_ms:min")
    for argv, needle in (
        (["--top", "2", "--pareto"], "exclusive"),
        (["--pareto", "val_acc:max,nope"], "unknown objective"),
    ):
        assert main(["retrain", str(tmp_path / "multi"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1


def test_compare_fronts_by_hypervolume(tmp_path, capsys):
    worse = [(*r[:3], r[3] - 0.05 if r[3] else None, *r[4:6], r[6] * 2, *r[7:]) for r in ROWS]
    _board(tmp_path / "good", ROWS)
    _board(tmp_path / "bad", [("w", *r[1:]) for r in worse])
    p = fronts(str(tmp_path / "good"), str(tmp_path / "bad"))
    assert p["objectives"] == "val_acc:max,params:min"  # single-objective experiments: the default pair
    everything = [r for r in ROWS + worse if r[3] is not None]
    ref = [min(r[3] for r in everything), max(r[6] for r in everything)]
    assert p["reference"] == pytest.approx(ref)
    box = (max(r[3] for r in everything) - ref[0]) * (ref[1] - min(r[6] for r in everything))
    for side, rows in (("a", ROWS), ("b", worse)):
        front = [(r[3], r[6]) for r in rows if r[1] in "afbc"]
        assert p[side]["front_size"] == 4
        assert p[side]["front_hv"] == pytest.approx(hypervolume(front, ["max", "min"], ref) / box)
    assert p["a"]["front_hv"] > p["b"]["front_hv"] and p["b"]["dominated"] == 4 and p["a"]["dominated"] == 0
    assert p["dominates_more"] == "A" and fronts(str(tmp_path / "bad"), str(tmp_path / "good"))["dominates_more"] == "B"
    _board(tmp_path / "own_a", ROWS, "val_acc:max,latency_ms:min")
    _board(tmp_path / "own_b", worse, "val_acc:max,latency_ms:min")
    assert fronts(str(tmp_path / "own_a"), str(tmp_path / "own_b"))["objectives"] == "val_acc:max,latency_ms:min"
    assert main(["compare", str(tmp_path / "good"), str(tmp_path / "bad")]) == 0
    out = capsys.readouterr().out
    assert "best_val_acc" in out and "front_hv" in out and "dominates more   A" in out
    assert main(["compare", str(tmp_path / "good"), str(tmp_path / "good"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pareto"]["dominates_more"] == "neither"


def test_status_line_shows_the_front_for_several_objectives_only():
    rng = np.random.default_rng(3)
    trials = [SimpleNamespace(trial_id=f"t{i}", status="TERMINATED") for i in range(40)]
    single, multi = StatusCallback(40), StatusCallback(40, objectives="val_acc:max,params:min")
    points = []
    for t in trials:
        res = {
            "arch": t.trial_id,
            "arch_hash": t.trial_id,
            "val_acc": float(rng.random()),
            "params": int(rng.integers(9)),
        }
        points.append((res["val_acc"], res["params"]))
        single.on_trial_result(0, trials, t, res)
        multi.on_trial_result(0, trials, t, res)
    multi.on_trial_result(0, trials, trials[0], {"arch": "x", "val_acc": None, "params": 1})  # not counted
    assert "front" not in single.line(trials)
    p = np.array(points)
    low = np.column_stack([-p[:, 0], p[:, 1]])
    on = [i for i, r in enumerate(_brute_ranks(points, ["max", "min"])) if r == 0]
    assert sorted(map(tuple, non_dominated(low))) == sorted(map(tuple, low[on]))
    ref = [p[:, 0].min(), p[:, 1].max()]
    hv = hypervolume(p[on], ["max", "min"], ref) / (np.ptp(p[:, 0]) * np.ptp(p[:, 1]))
    assert f"front {len(on)} (hv {hv:.3f})" in multi.line(trials, force=True)
    multi.on_trial_result(0, trials, trials[1], {"arch_hash": "new", "val_acc": 2.0, "params": 0})
    assert f"front {len(on)} (hv {hv:.3f})" in multi.line(trials)  # recomputed at most once a second
    assert "front 1 (hv 1.000)" in multi.line(trials, force=True)  # the new cell dominates every other


def test_report_draws_each_cost_with_the_truth_tables_front(tmp_path):
    from results.report import build_report  # noqa: PLC0415  (lazy: matplotlib)

    archs = [str(sample(np.random.default_rng(i))) for i in range(40)]
    rng = np.random.default_rng(0)
    params = rng.integers(10_000, 1_000_000, len(archs))
    rows = [
        ("e", a, parse(a).equiv_hash(), float(v), 0.5, 0.1, int(p), int(p) * 30, float(p) / 1e6)
        for a, v, p in zip(archs[:25], rng.uniform(0.5, 0.9, 25), params[:25], strict=True)
    ]
    _board(tmp_path / "e", rows)
    truth = tmp_path / "truth.parquet"
    means = rng.uniform(0.5, 0.9, len(archs))
    pd.DataFrame(
        {
            "arch": archs * 2,
            "seed": [0] * len(archs) + [1] * len(archs),
            "val_acc": np.r_[means - 0.01, means + 0.01],
            "test_acc": 0.5,
            "params": np.r_[params, params],
            "flops": np.r_[params, params] * 30,
        }
    ).to_parquet(truth)
    page = open(build_report(str(tmp_path / "e"), str(tmp_path / "r"), truth=str(truth))).read()
    for cost in ("params", "flops", "latency_ms"):
        assert f"src='pareto_{cost}.png'" in page and (tmp_path / "r" / f"pareto_{cost}.png").is_file()
    cells = pd.DataFrame({"arch": archs, "val_acc": means, "params": params})
    assert f"The truth table's front has {len(pareto_front(cells))} cells" in page  # mean val_acc over seeds
    assert page.count("The truth table's front has") == 2  # params and flops; the truth has no latency
