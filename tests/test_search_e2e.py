"""End to end on configs/smoke.yaml: local Ray, evolution, ASHA, a real tiny teacher, leaderboards."""

import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from cluster.teacher_stage import find_teacher


def test_smoke_search_end_to_end(smoke_search):
    cfg, final, exp, calib, took = smoke_search
    assert exp.name == "e2e" and (exp / "teacher.pt").is_file()  # the teacher stage ran and stored it
    assert not (exp / "teacher.pt.state").exists()  # its resumable state is removed once it is done
    # the part files as plain pyarrow reads them (no project code, no dedupe): one row per key
    rows = pads.dataset(exp / "leaderboard", format="parquet").to_table().to_pandas()
    assert not rows.duplicated(["trial_id", "iteration"]).any()
    assert rows["trial_id"].nunique() == cfg.search.num_samples
    for _, g in rows.groupby("trial_id"):  # every trial: rung 1 (GTN) then contiguous real rungs
        assert sorted(g["iteration"]) == list(range(1, len(g) + 1))
        assert g["gtn_score"].notna().all() and (g["iteration"] > 1).eq(g["val_acc"].notna()).all()
    assert rows["iteration"].max() == 1 + cfg.search.real_rungs  # ASHA promoted someone to the top rung
    assert (rows["iteration"] == 1).sum() > (rows["iteration"] == rows["iteration"].max()).sum()  # and stopped others
    # no two trials evaluated cells of one equivalence class
    assert rows.groupby("arch_hash")["trial_id"].nunique().max() == 1
    assert set(rows["config_hash"]) == {cfg.hash()} and set(rows["seed"]) == {cfg.seed}
    assert rows["node_ip"].eq("127.0.0.1").all()
    statuses = pd.read_parquet(exp / "trials")
    assert set(statuses["trial_id"]) == set(rows["trial_id"]) and set(statuses["status"]) == {"TERMINATED"}
    table = pd.read_parquet(exp / "leaderboard.parquet")
    assert len(table) == rows["arch_hash"].nunique() and table["arch_hash"].is_unique
    assert len(final) == len(table) and set(table["status"]) == {"TERMINATED"}
    meta = pq.read_schema(exp / "leaderboard.parquet").metadata
    assert {b"gtnnas.versions", b"gtnnas.config", b"gtnnas.calibration"} <= set(meta)
    real = rows.dropna(subset=["val_acc"]).sort_values("timestamp").drop_duplicates("arch_hash", keep="last")
    assert calib["calibration_n"] == len(real) >= 1  # the calibration is what the leaderboard holds
    assert (exp / "curriculum.png").read_bytes()[:4] == b"\x89PNG"
    # no stored teacher matched: the teacher stage meta-trained one and filed it for the next search

    assert find_teacher(cfg) is not None and (exp / "teacher.pt").read_bytes() == open(find_teacher(cfg), "rb").read()
    # every trial's core-seconds by phase, and where the search's cores went
    last = rows.sort_values("iteration").groupby("trial_id").last()
    assert (last["cs_score"] > 0).all() and (last["cs_startup"] > 0).all()
    assert (last.loc[last["val_acc"].notna(), ["cs_train", "cs_eval"]] > 0).all().all()
    split = final.attrs["phases"]
    assert split["cores"] == 2 and 0 <= split["idle_share"] < 1 and split["cells_screened"] == cfg.search.num_samples
    assert sum(split["core_seconds"].values()) <= split["cores"] * split["wall_seconds"] * 1.01
    assert b"gtnnas.phases" in meta
    # a guard against pathological slowness, not a benchmark: ~60 s alone on 2 cores, 127 s once on shared ones
    assert took < 300, f"smoke search took {took:.0f}s"


@pytest.mark.e2e
def test_every_score_component_lands_in_the_final_table(ray_session, tmp_path):
    """The one list of components (search.components): a search scored by each finds its column, filled, in the
    final table (data-free ones in benchmark mode, the others in a tiny real search with one real rung)."""
    from cluster.search_run import run_search  # noqa: PLC0415  (lazy: Ray after conftest's environment)
    from search.components import COMPONENTS, DATA_FREE  # noqa: PLC0415
    from search.config import load_config  # noqa: PLC0415

    free = "+".join(DATA_FREE)
    data = "+".join(c.name for c in COMPONENTS if c.name not in DATA_FREE)
    runs = {
        free: load_config(
            "configs/nb201_bench.yaml",
            [f"storage={tmp_path}", "name=free", f"search.score={free}", "search.seed_proxy=null"]
            + ["search.num_samples=6"],
        ),
        data: load_config(
            "configs/smoke.yaml",
            [f"storage={tmp_path}", "name=data", f"search.score={data}", "search.num_samples=3", "search.real_rungs=1"],
        ),
    }
    for score, cfg in runs.items():
        final, _, _ = run_search(cfg)
        for part in score.split("+"):
            c = next(c for c in COMPONENTS if c.name == part)
            for col in (c.column, *c.extra):
                assert col in final and final[col].notna().all(), f"{score}: final table lacks {col}"
        assert final["rung1_score"].notna().all()
