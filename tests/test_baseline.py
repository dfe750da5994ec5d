from pathlib import Path

from cluster.baseline import run_baseline, sample_archs
from search.config import load_config

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"


def test_sample_archs_distinct_and_seeded():
    cfg = load_config(SMOKE, ["baseline.num_archs=5"])
    a = sample_archs(cfg)
    assert len({x.equiv_hash() for x in a}) == 5 and a == sample_archs(cfg)


def test_baseline_runs_as_tune_trials(ray_session, tmp_path):
    cfg = load_config(SMOKE, [f"storage={tmp_path}", "name=base"])
    table = run_baseline(cfg)
    assert len(table) == 2
    assert list(table["val_acc"]) == sorted(table["val_acc"], reverse=True)
    assert set(table["arch"]) == {str(a) for a in sample_archs(cfg)}
    assert (table["params"] > 0).all() and table["val_acc"].between(0, 1).all()
    assert [p.name.startswith("base-baseline-") for p in tmp_path.iterdir()] == [True]  # Tune's folder, nothing else
