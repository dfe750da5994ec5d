import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.cli import main
from cluster.cli.search import check_searcher
from search.config import load_config

PAPER = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "cluster.cli", "--help"], capture_output=True, text=True, check=True)
    body = out.stdout.split("positional arguments:", 1)[1].split("options:", 1)[0]
    listed = [line.split()[0] for line in body.splitlines() if line.startswith("    ") and line[4] != " "]
    assert set(listed) == {
        "search",
        "retrain",
        "baseline",
        "gtn",
        "data",
        "arch",
        "truth",
        "bench",
        "leaderboard",
        "report",
        "compare",
    }


def test_arch_info(capsys):
    assert main(["arch", "info", PAPER, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == PAPER and len(info["equiv_hash"]) == 16
    assert info["params"] > 100_000 and info["flops"] > info["params"] and info["input"] == "3x32x32"


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["arch", "info", "|nor_conv_3x3~0|"], "malformed architecture"),
        (["baseline", "--config", "configs/smoke.yaml", "trian.lr=0.1"], "trian: unknown key"),
        (["baseline", "--config", "configs/smoke.yaml", "train.lr=-1"], "train.lr: must be > 0"),
        (["baseline", "--config", "configs/nope.yaml"], "cannot read config"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent if "nope" in argv[-1] else tmp_path.parent)
    argv = [a.replace("configs/", str(_repo() / "configs") + "/") for a in argv] + [f"storage={tmp_path}/s"]
    if argv[:2] == ["arch", "info"]:
        argv = argv[:3]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_missing_dataset_exits_2_and_writes_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GTNNAS_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a user's fetched copy is not "missing"
    assert main(["baseline", "--config", str(_repo() / "configs" / "smoke.yaml"), f"storage={tmp_path}/s"]) == 2
    err = capsys.readouterr().err.strip()
    assert "could not get fashion_mnist" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["search.teacher=/nonexistent/teacher.pt"], "no such teacher checkpoint"),
        (["--address", "127.0.0.1:9"], "cannot connect to Ray at '127.0.0.1:9'"),
        (["search.searcher=no_such_searcher"], "search.searcher: cannot create 'no_such_searcher'"),
        (["search.population=1"], "search.population: must be >= 2"),
        (["search.scheduler=pbt"], "search.scheduler: 'pbt' is not one of"),
    ],
)
def test_search_bad_input_exits_2(extra, needle, capsys, tmp_path):
    argv = ["search", "--config", str(_repo() / "configs" / "smoke.yaml"), f"storage={tmp_path}/s", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_resume_needs_an_experiment_and_new_runs_need_a_fresh_name(capsys, tmp_path):
    smoke = str(_repo() / "configs" / "smoke.yaml")
    assert main(["search", "--config", smoke, f"storage={tmp_path}", "name=x", "--resume"]) == 2
    assert "--resume: no experiment at" in capsys.readouterr().err
    (tmp_path / "x" / "leaderboard").mkdir(parents=True)
    assert main(["search", "--config", smoke, f"storage={tmp_path}", "name=x"]) == 2
    assert "exists; pass --resume" in capsys.readouterr().err


def test_corrupt_teacher_exits_2(capsys, tmp_path):
    bad = tmp_path / "teacher.pt"
    bad.write_bytes(b"not a checkpoint")
    assert (
        main(
            [
                "search",
                "--config",
                str(_repo() / "configs" / "smoke.yaml"),
                f"search.teacher={bad}",
                f"storage={tmp_path}/s",
            ]
        )
        == 2
    )
    assert "not a readable teacher checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def _repo():
    return Path(__file__).resolve().parents[1]


def test_seeded_evolution_passes_the_door_check():
    cfg = load_config(_repo() / "configs" / "nb201_bench.yaml", ["search.seed_proxy=synflow", "search.score=none"])
    searcher = check_searcher(cfg)  # the proxy that scores the first population is only needed once the search runs
    assert searcher.inner.initial and len(searcher.inner.initial) == cfg.search.population  # seeded by the stub


def test_resume_with_another_configuration_is_refused(capsys, tmp_path):
    smoke = str(_repo() / "configs" / "smoke.yaml")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "experiment.json").write_text(json.dumps({"config": {}, "config_hash": "0123456789ab"}))
    assert main(["search", "--config", smoke, f"storage={tmp_path}", "name=x", "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "started with another configuration" in err and len(err.splitlines()) == 1


def test_an_override_that_is_not_yaml_is_one_line(capsys, tmp_path):
    assert (
        main(
            [
                "search",
                "--config",
                str(_repo() / "configs" / "smoke.yaml"),
                "search.num_samples=[",
                f"storage={tmp_path}/s",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "not a YAML value" in err and len(err.splitlines()) == 1


def test_importing_the_cluster_package_sets_rays_environment_before_ray_is_imported():
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    code = (
        "import os, sys, cluster; assert 'ray' not in sys.modules; "
        "print(os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'], os.environ['RAY_USAGE_STATS_ENABLED'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["0", "0"]
