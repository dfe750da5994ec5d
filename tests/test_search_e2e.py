"""End to end on configs/smoke.yaml: local Ray, evolution, ASHA, a real tiny teacher, leaderboards."""

import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq


def test_smoke_search_end_to_end(smoke_search):
    cfg, final, exp, calib, took = smoke_search
    assert exp.name == "e2e" and (exp / "teacher.pt").is_file()  # the teacher stage ran and stored it
    # parts and the final table, read by plain pandas / pyarrow (no project code)
    parts = pads.dataset(exp / "leaderboard", format="parquet").to_table().to_pandas()
    rows = parts.sort_values("timestamp").drop_duplicates(["trial_id", "iteration"], keep="last")
    assert rows["trial_id"].nunique() == cfg.search.num_samples
    for _, g in rows.groupby("trial_id"):  # every trial: rung 1 (GTN) then contiguous real rungs
        assert sorted(g["iteration"]) == list(range(1, len(g) + 1))
        assert g["gtn_score"].notna().all() and (g["iteration"] > 1).eq(g["val_acc"].notna()).all()
    assert rows["iteration"].max() == 1 + cfg.search.real_rungs  # ASHA promoted someone to the top rung
    assert (rows["iteration"] == 1).sum() > (rows["iteration"] == rows["iteration"].max()).sum()  # and stopped others
    assert set(rows["config_hash"]) == {cfg.hash()} and set(rows["seed"]) == {cfg.seed}
    assert rows["node_ip"].eq("127.0.0.1").all()
    table = pd.read_parquet(exp / "leaderboard.parquet")
    assert len(table) == rows["arch"].nunique() and table["arch"].is_unique
    assert len(final) == len(table)
    meta = pq.read_schema(exp / "leaderboard.parquet").metadata
    assert {b"gtnnas.versions", b"gtnnas.config", b"gtnnas.calibration"} <= set(meta)
    assert calib["calibration_n"] >= 1
    assert took < 120, f"smoke search took {took:.0f}s"
