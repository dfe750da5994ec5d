from types import SimpleNamespace

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.callbacks import LeaderboardCallback
from results import storage
from results.analysis import load
from results.leaderboard import (
    LeaderboardError,
    best_per_class,
    calibration_pairs,
    read_parts,
    read_statuses,
    reconcile,
    row_from_result,
    status_row,
    write_final,
    write_part,
    write_statuses,
)
from results.truthtable import load_truth
from search.errors import TruthError
from search.space import parse
from search.stats import spearman

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
# A with a conv on an edge whose output is unused (node 1 feeds nothing): the same function as A2
A1 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
A2 = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def _res(it, arch, g, v=None, t=None):
    r = {
        "training_iteration": it,
        "arch": arch,
        "arch_hash": parse(arch).equiv_hash(),
        "gtn_score": g,
        "rung1_score": g,
        "score": v or g,
        "rung": it,
        "params": 10,
        "flops": 20,
        "seconds": 1.0,
        "seed": 0,
        "config_hash": "c",
    }
    if v is not None:
        r["val_acc"] = v
    if t is not None:
        r["test_acc"] = t
    return r


def test_parts_dedupe_and_final(tmp_path):
    root = str(tmp_path / "exp")
    write_part(
        root,
        [row_from_result("exp", "t1", _res(1, A, 0.5)), row_from_result("exp", "t2", _res(1, B, 0.2))],
        {"config": {"a": 1}},
    )
    # a restored trial reports iteration 1 again, then continues
    write_part(
        root,
        [row_from_result("exp", "t1", _res(1, A, 0.5)), row_from_result("exp", "t1", _res(2, A, 0.5, 0.8, 0.79))],
        {},
    )
    write_statuses(root, [status_row("exp", "t1", "TERMINATED"), status_row("exp", "t2", "TERMINATED")])
    df = read_parts(root)
    assert len(df) == 3 and not df.duplicated(["trial_id", "iteration"]).any()
    assert not list((tmp_path / "exp" / "leaderboard").glob(".*"))  # no temporary files left
    final = write_final(root, {"versions": {"x": "1"}})
    assert list(final["arch"]) == [A, B] and list(final["status"]) == ["TERMINATED", "TERMINATED"]
    assert final.loc[0, "val_acc"] == 0.8 and final.loc[0, "test_acc"] == 0.79 and final.loc[1, "gtn_score"] == 0.2
    # plain pandas and pyarrow read both, with no project code
    assert len(pd.read_parquet(tmp_path / "exp" / "leaderboard.parquet")) == 2
    assert pq.read_table(tmp_path / "exp" / "leaderboard").num_rows == 4  # raw parts: only the restored key repeats
    assert b"gtnnas.versions" in pq.read_schema(tmp_path / "exp" / "leaderboard.parquet").metadata


def test_final_table_has_one_row_per_equivalence_class(tmp_path):
    assert parse(A1).equiv_hash() == parse(A2).equiv_hash() and A1 != A2
    root = str(tmp_path / "exp")
    write_part(
        root,
        [
            row_from_result("exp", "t1", _res(2, A1, 0.5, 0.81)),
            row_from_result("exp", "t2", _res(2, A2, 0.5, 0.83)),
            row_from_result("exp", "t3", _res(2, B, 0.1, 0.30)),
        ],
        {},
    )
    final = write_final(root, {})
    assert len(final) == 2 and final["arch_hash"].is_unique
    top = final.iloc[0]
    assert (
        top["arch"] == A2
        and top["val_acc"] == 0.83
        and top["trials"] == 2
        and list(top["variants"]) == sorted([A1, A2])
    )
    assert list(pd.read_parquet(tmp_path / "exp" / "leaderboard.parquet")["variants"][0]) == sorted([A1, A2])


def test_reconcile_adds_missing_rows_statuses_and_marks_unknown_trials_lost(tmp_path):
    root = str(tmp_path / "exp")
    write_part(
        root, [row_from_result("exp", "t1", _res(1, A, 0.5)), row_from_result("exp", "ghost", _res(1, B, 0.9))], {}
    )
    history = [
        ("t1", [_res(1, A, 0.5), _res(2, A, 0.5, 0.7)], "TERMINATED"),
        ("t2", [_res(1, B, 0.1)], "ERROR"),
        ("t3", [], "RUNNING"),
    ]
    assert reconcile(root, "exp", history, {}) == (2, 1)
    assert reconcile(root, "exp", history, {}) == (0, 0)
    assert read_statuses(root) == {"t1": "TERMINATED", "t2": "ERROR", "ghost": "LOST"}
    df = read_parts(root)
    assert sorted(zip(df.trial_id, df.iteration, strict=True)) == [
        ("t1", 1),
        ("t1", 2),
        ("t2", 1),
    ]  # the LOST trial's row is out
    assert "ghost" in set(read_parts(root, lost=True)["trial_id"])
    final = write_final(root, {})
    assert "ghost" not in set(final["trial_id"]) and set(final["status"]) == {"TERMINATED", "ERROR"}


def test_calibration_pairs_keep_the_newest_real_score_per_class(tmp_path):
    root = str(tmp_path / "exp")
    write_part(root, [row_from_result("exp", "t1", _res(2, A1, 0.4, 0.6))], {})
    write_part(
        root,
        [
            row_from_result("exp", "t1", _res(3, A1, 0.4, 0.7)),
            row_from_result("exp", "t2", _res(2, B, 0.1, 0.2)),
            row_from_result("exp", "t3", _res(1, A, 0.3)),
        ],
        {},
    )
    pairs = calibration_pairs(read_parts(root))
    assert pairs == {parse(A1).equiv_hash(): (0.4, 0.7), parse(B).equiv_hash(): (0.1, 0.2)}


def test_missing_leaderboard_is_one_clear_error(tmp_path):
    with pytest.raises(LeaderboardError, match="no readable leaderboard"):
        read_parts(str(tmp_path / "nothing"))


def test_best_per_class_prefers_real_accuracy():
    df = pd.DataFrame(
        [
            {
                "experiment": "e",
                "trial_id": "1",
                "iteration": 1,
                "rung": 1,
                "arch": A,
                "arch_hash": "a",
                "gtn_score": 0.9,
                "rung1_score": 0.9,
                "val_acc": None,
                "test_acc": None,
                "params": 1,
                "flops": 1,
                "synflow": None,
                "naswot": None,
                "seconds": 1.0,
                "sim_epochs": None,
                "seed": 0,
                "config_hash": "c",
                "curriculum": "h",
            },
            {
                "experiment": "e",
                "trial_id": "2",
                "iteration": 2,
                "rung": 2,
                "arch": B,
                "arch_hash": "b",
                "gtn_score": 0.1,
                "rung1_score": 0.1,
                "val_acc": 0.5,
                "test_acc": 0.4,
                "params": 1,
                "flops": 1,
                "synflow": None,
                "naswot": None,
                "seconds": 1.0,
                "sim_epochs": None,
                "seed": 0,
                "config_hash": "c",
                "curriculum": "h",
            },
        ]
    )
    out = best_per_class(df)
    assert list(out["arch"]) == [B, A] and list(out["status"]) == ["RUNNING", "RUNNING"]


def test_spearman_against_hand_computed_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1,2,3,4,5) vs (2,1,4,3,5): d^2 = 1+1+1+1+0 = 4 -> 1 - 6*4/(5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties get average ranks: x ranks (1.5,1.5,3), y ranks (1,2,3) -> Pearson of ranks
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)


def test_step_saves_write_rows_only_in_a_step_in_which_tune_saved(tmp_path):
    """state_save: step: rows wait for a save of Tune's state (Tune calls get_state as it saves); a save
    in an earlier step does not count, as it may not know the trials of this one."""
    cb = LeaderboardCallback(str(tmp_path), "e", {}, every_step=True)
    trial = SimpleNamespace(trial_id="t1")
    cb.get_state()  # a save with nothing buffered
    cb.on_step_end(1, [])
    cb.on_trial_result(2, [], trial, {"training_iteration": 1, "arch": "a", "score": 0.5})
    cb.on_step_end(2, [])  # no save in this step: the row waits
    assert not (tmp_path / "leaderboard").exists()
    cb.get_state()
    cb.on_step_end(3, [])  # saved in this step: written
    assert len(read_parts(str(tmp_path))) == 1


def test_a_results_table_with_more_rows_than_the_limit_is_refused_before_its_data_is_read(tmp_path, monkeypatch):
    """A Parquet file handed to gtnnas is checked from its footer (columns, rows) before any data is read."""
    root = str(tmp_path / "exp")
    write_part(root, [row_from_result("exp", f"t{i}", {"training_iteration": 1, "score": 0.5}) for i in range(30)], {})
    truth = tmp_path / "truth.parquet"
    pq.write_table(
        pa.table({"arch": ["a"] * 30, "seed": [0] * 30, "val_acc": [0.5] * 30, "test_acc": [0.5] * 30}), truth
    )
    monkeypatch.setattr(storage, "MAX_ROWS", 20)
    with pytest.raises(LeaderboardError, match="30 rows, more than the 20"):
        read_parts(root)
    with pytest.raises(LeaderboardError, match="30 rows, more than the 20"):
        load(root)
    with pytest.raises(TruthError, match="30 rows, more than the 20"):
        load_truth(str(truth))
    monkeypatch.setattr(storage, "MAX_ROWS", 30)
    assert len(read_parts(root)) == 30 and len(load_truth(str(truth))[0]) == 30
