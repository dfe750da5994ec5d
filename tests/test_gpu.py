"""On a real GPU only (skipped without CUDA; a fake GPU cannot show a device mix-up): the GPU config's
trials and the teacher stage run on the device Ray granted them, with the default score."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from cluster.search_run import run_search
from cluster.teacher_stage import _meta_train_task
from search.config import load_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "search.num_samples=4",
    "search.real_steps=10",
    "net.channels=4",
    "net.cells=1",
    "data.train_subset=2000",
    "data.val_subset=500",
    "gtn.outer_steps=2",
    "gtn.inner_steps=4",
    "gtn.inner_batch=16",
    "gtn.validate_size=200",
    "search.score=gtn+params+naswot",
    "search.score_val=200",
    "retrain.top=0",
    "search.cpus_per_trial=1",
]


def test_the_gpu_configs_trials_and_teacher_stage_run_on_the_gpu(ray_session, tmp_path):
    cfg = load_config(ROOT / "configs" / "gpu.yaml", [*TINY, f"storage={tmp_path}", "name=gpu", "search.teacher=fresh"])
    assert cfg.search.gpus_per_trial == 0.25 and cfg.search.teacher_gpus == 1
    final, root, _ = run_search(cfg)

    rows = pd.read_parquet(Path(root) / "leaderboard")
    assert set(rows["device"]) == {"cuda"} and rows["gtn_score"].notna().all() and rows["naswot"].notna().all()
    assert len(final) >= 1


def test_the_teacher_stage_task_meta_trains_on_the_granted_gpu(ray_session, tmp_path):
    cfg = load_config(ROOT / "configs" / "gpu.yaml", [*TINY, f"storage={tmp_path}"])
    task = ray_session.remote(num_cpus=1, num_gpus=1)(_meta_train_task)
    done = ray_session.get(task.remote(cfg.to_dict(), str(tmp_path / "teacher.pt"), 1))
    assert done["device"] == "cuda" and (tmp_path / "teacher.pt").is_file()
