"""Leaderboard slicing, Pareto fronts and the leaderboard/compare commands on hand-made tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cluster.cli import main
from results.analysis import history, load, op_frequency, pareto_front, top
from results.leaderboard import row_from_result, write_part
from search.errors import LeaderboardError

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
C = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"
D = "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|"


def _board(path, experiment, rows):
    cols = ["experiment", "arch", "arch_hash", "val_acc", "test_acc", "gtn_score", "params", "flops", "trials"]
    df = pd.DataFrame(
        [
            {
                "experiment": experiment,
                "arch": a,
                "arch_hash": a[:6],
                "val_acc": v,
                "test_acc": t,
                "gtn_score": g,
                "params": p,
                "flops": 10 * p,
                "trials": 1,
            }
            for a, v, t, g, p in rows
        ],
        columns=cols,
    )
    path.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path / "leaderboard.parquet", index=False)


@pytest.fixture()
def boards(tmp_path):
    _board(
        tmp_path / "exp1", "exp1", [(A, 0.90, 0.89, 0.30, 500), (B, 0.40, 0.41, 0.10, 100), (C, 0.70, 0.69, 0.20, 50)]
    )
    _board(tmp_path / "exp2", "exp2", [(D, 0.95, 0.94, 0.35, 400), (B, 0.42, 0.40, 0.12, 100)])
    return tmp_path


def test_filters_and_sorting_have_known_answers(boards):
    df = load(str(boards))  # a folder of experiments
    assert len(df) == 5 and set(df["experiment"]) == {"exp1", "exp2"}
    assert list(top(df, 2)["arch"]) == [D, A]
    assert list(top(load(boards.as_uri()), 2)["arch"]) == [D, A]  # a pyarrow.fs URI reads the same
    assert list(load(str(boards), "val_acc > 0.5 and params < 450")["arch"]) == [C, D]
    assert sorted(load(str(boards), "experiment == 'exp1' and not val_acc < 0.5")["arch"]) == sorted([A, C])
    assert len(load(str(boards), "arch in ['" + B + "']")) == 2
    assert list(top(load(str(boards / "exp1")), sort="params", ascending=True)["arch"]) == [C, B, A]
    assert list(top(df, sort="gtn_score")["gtn_score"]) == [0.35, 0.30, 0.20, 0.12, 0.10]
    with pytest.raises(LeaderboardError, match="unknown column 'nope'"):
        load(str(boards), "nope > 1")
    with pytest.raises(LeaderboardError, match="only columns"):
        load(str(boards), "open('x')")
    for bad in ("1", "1 < 2", "val_acc in 0.9", "val_acc > 'a'", "val_acc >"):
        with pytest.raises(LeaderboardError):
            load(str(boards), bad)


def test_history_credits_each_score_to_when_it_arrived(tmp_path):
    def res(it, v=None, g=None):
        return {"training_iteration": it, "arch": A, "val_acc": v, "rung1_score": g}

    root = str(tmp_path / "exp")
    rows = [
        row_from_result("exp", "t0", res(1, g=0.3)),
        row_from_result("exp", "t1", res(1, v=0.5)),
        row_from_result("exp", "t0", res(2, v=0.9)),
    ]
    for i, r in enumerate(rows):
        r["timestamp"] = [0.0, 2.0, 100.0][i]
    write_part(root, rows, {})
    h = history(root)
    assert list(h["wall_s"]) == [0.0, 2.0, 100.0] and list(h["trial"]) == [1, 2, 2]
    assert list(h["best_val_acc"].fillna(-1)) == [-1, 0.5, 0.9]  # 0.9 counts only from t=100


def test_pareto_front_on_a_hand_made_set():
    df = pd.DataFrame(
        {"arch": list("abcdefg"), "params": [1, 2, 2, 3, 4, 5, 5], "val_acc": [0.5, 0.4, 0.6, 0.6, 0.8, 0.7, 0.9]}
    )
    # a: cheapest; b dominated by a; c beats a; d ties c but costs more; e better; f dominated; g best.
    assert list(pareto_front(df)["arch"]) == ["a", "c", "e", "g"]


def test_op_frequency_counts_the_top_k(boards):
    freq = op_frequency(load(str(boards)), k=2)  # D and A
    assert freq.loc["edge_1_0", "nor_conv_3x3"] == 0.5 and freq.loc["edge_1_0", "nor_conv_1x1"] == 0.5
    assert freq.loc["edge_2_0", "nor_conv_3x3"] == 1.0
    assert (freq.sum(axis=1) == 1.0).all()


def test_leaderboard_command_formats(boards, capsys):
    assert main(["leaderboard", str(boards), "--top", "2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows] == [D, A] and rows[0]["val_acc"] == 0.95
    assert (
        main(
            [
                "leaderboard",
                str(boards / "exp1"),
                "--where",
                "val_acc >= 0.7",
                "--format",
                "csv",
                "--columns",
                "arch,val_acc",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "arch,val_acc" and len(lines) == 3
    out = boards / "sel.parquet"
    assert (
        main(
            ["leaderboard", str(boards), "--sort", "params", "--ascending", "--format", "parquet", "--output", str(out)]
        )
        == 0
    )
    assert list(pd.read_parquet(out)["params"]) == [50, 100, 100, 400, 500]
    assert main(["leaderboard", str(boards), "--top", "1"]) == 0
    assert D in capsys.readouterr().out


def test_malformed_and_empty_leaderboards_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad" / "leaderboard.parquet"
    bad.parent.mkdir()
    bad.write_bytes(b"PAR1 not really parquet")
    empty = tmp_path / "empty"
    _board(empty, "e", [])
    foreign = tmp_path / "foreign.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(foreign)
    for path, msg in (
        (bad.parent, "not a readable leaderboard"),
        (empty, "has no rows"),
        (foreign, "missing columns: arch, val_acc"),
        (tmp_path / "nothing", "no such file"),
    ):
        code = main(["leaderboard", str(path)])
        err = capsys.readouterr().err
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    assert main(["leaderboard", str(bad.parent), "--sort", "x"]) == 2
    assert main(["report", str(empty), "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r" / "index.html").exists()


def test_report_with_a_bad_truth_writes_nothing(boards, tmp_path):
    out = tmp_path / "rep"
    assert main(["report", str(boards / "exp1"), "--out", str(out), "--truth", str(tmp_path / "none.parquet")]) == 2
    assert not out.exists() and not list(tmp_path.glob(".report-*"))
    assert main(["report", str(boards / "exp1"), "--out", str(out), "--top", "0"]) == 2
