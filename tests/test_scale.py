"""Slow (`pytest -m slow`): a benchmark-mode search of 1,200 trials keeps every row and a driver that does
not grow with the trial count (the full measurement is benchmarks/search_scale.py, 1,000 and 10,000)."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest
from ray import tune

import cluster.search_run as sr
from results.leaderboard import read_parts, read_statuses
from search.config import load_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(1200)
def test_a_long_benchmark_mode_search_keeps_every_row_and_a_bounded_driver(ray_session, tmp_path):
    rss: dict[int, float] = {}

    class Watch(tune.Callback):
        done = 0

        def on_trial_complete(self, iteration, trials, trial, **info):
            self.done += 1
            if self.done in (400, 1200):
                rss[self.done] = psutil.Process().memory_info().rss / 2**20

    cfg = load_config(
        ROOT / "configs" / "nb201_bench.yaml",
        [
            f"storage={tmp_path}",
            "name=scale",
            "search.num_samples=1200",
            "search.searcher=random",
            "search.seed_proxy=null",
            "search.flush_rows=500",
            "search.flush_seconds=30",
        ],
    )
    original = sr.run_config

    def with_watch(*args, **kwargs):
        rc = original(*args, **kwargs)
        rc.callbacks = [*rc.callbacks, Watch()]
        return rc

    sr.run_config = with_watch
    try:
        sr.run_search(cfg)
    finally:
        sr.run_config = original
    rows = read_parts(str(tmp_path / "scale"))
    assert rows["trial_id"].nunique() == 1200 and not rows.duplicated(["trial_id", "iteration"]).any()
    assert set(read_statuses(str(tmp_path / "scale")).values()) == {"TERMINATED"}
    per_1000 = (rss[1200] - rss[400]) / 0.8
    assert per_1000 < 100, f"the driver grew {per_1000:.0f} MB per 1,000 trials (was ~245 before it was bounded)"
