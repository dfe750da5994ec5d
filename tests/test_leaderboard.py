import pandas as pd
import pyarrow.parquet as pq
import pytest

from search.stats import spearman
from cluster.leaderboard import (LeaderboardError, best_per_arch, read_parts, reconcile, row_from_result,
                                 write_final, write_part)

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"


def _res(it, arch, g, v=None, t=None):
    r = {"training_iteration": it, "arch": arch, "arch_hash": arch[:4], "gtn_score": g, "score": v or g,
         "rung": it, "params": 10, "flops": 20, "seconds": 1.0, "seed": 0, "config_hash": "c"}
    if v is not None:
        r["val_acc"] = v
    if t is not None:
        r["test_acc"] = t
    return r


def test_parts_dedupe_and_final(tmp_path):
    root = str(tmp_path / "exp")
    write_part(root, [row_from_result("exp", "t1", _res(1, A, 0.5), "RUNNING"),
                      row_from_result("exp", "t2", _res(1, B, 0.2), "RUNNING")], {"config": {"a": 1}})
    # a retried trial reports iteration 1 again, then continues
    write_part(root, [row_from_result("exp", "t1", _res(1, A, 0.5), "RUNNING"),
                      row_from_result("exp", "t1", _res(2, A, 0.5, 0.8, 0.79), "TERMINATED")], {})
    df = read_parts(root)
    assert len(df) == 3 and not df.duplicated(["trial_id", "iteration"]).any()
    assert not list((tmp_path / "exp" / "leaderboard").glob(".*"))  # no temporary files left
    final = write_final(root, {"versions": {"x": "1"}})
    assert list(final["arch"]) == [A, B]
    assert final.loc[0, "val_acc"] == 0.8 and final.loc[0, "test_acc"] == 0.79 and final.loc[1, "gtn_score"] == 0.2
    # plain pandas and pyarrow read both, with no project code
    assert len(pd.read_parquet(tmp_path / "exp" / "leaderboard.parquet")) == 2
    assert pq.read_table(tmp_path / "exp" / "leaderboard").num_rows == 4  # raw parts, before dedupe
    meta = pq.read_schema(tmp_path / "exp" / "leaderboard.parquet").metadata
    assert b"gtnnas.versions" in meta


def test_reconcile_adds_only_missing_rows(tmp_path):
    root = str(tmp_path / "exp")
    write_part(root, [row_from_result("exp", "t1", _res(1, A, 0.5), "RUNNING")], {})
    history = [("t1", [_res(1, A, 0.5), _res(2, A, 0.5, 0.7)], "TERMINATED"), ("t2", [_res(1, B, 0.1)], "TERMINATED")]
    assert reconcile(root, "exp", history, {}) == 2
    assert reconcile(root, "exp", history, {}) == 0
    df = read_parts(root)
    assert sorted(zip(df.trial_id, df.iteration)) == [("t1", 1), ("t1", 2), ("t2", 1)]
    assert df.set_index(["trial_id", "iteration"]).loc[("t1", 2), "status"] == "TERMINATED"


def test_missing_leaderboard_is_one_clear_error(tmp_path):
    with pytest.raises(LeaderboardError, match="no readable leaderboard"):
        read_parts(str(tmp_path / "nothing"))


def test_best_per_arch_prefers_real_accuracy():
    df = pd.DataFrame([
        {"experiment": "e", "trial_id": "1", "iteration": 1, "rung": 1, "arch": A, "arch_hash": "a", "gtn_score": 0.9,
         "val_acc": None, "test_acc": None, "params": 1, "flops": 1, "seconds": 1.0, "seed": 0, "config_hash": "c",
         "curriculum": "h"},
        {"experiment": "e", "trial_id": "2", "iteration": 2, "rung": 2, "arch": B, "arch_hash": "b", "gtn_score": 0.1,
         "val_acc": 0.5, "test_acc": 0.4, "params": 1, "flops": 1, "seconds": 1.0, "seed": 0, "config_hash": "c",
         "curriculum": "h"},
    ])
    out = best_per_arch(df)
    assert list(out["arch"]) == [B, A]


def test_spearman_against_hand_computed_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1,2,3,4,5) vs (2,1,4,3,5): d^2 = 1+1+1+1+0 = 4 -> 1 - 6*4/(5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties get average ranks: x ranks (1.5,1.5,3), y ranks (1,2,3) -> Pearson of ranks
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(0.8660254)
