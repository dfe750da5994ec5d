"""The HTML report and compare on a real smoke search; the page checked in headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from cluster.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def report(smoke_search, tmp_path_factory):
    _, _, exp, _, _ = smoke_search
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(exp), "--out", str(out)]) == 0
    return exp, out


def test_report_builds_and_every_image_exists(report):
    exp, out = report
    page = (out / "index.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert {
        "progress_trials.png",
        "progress_time.png",
        "pareto_params.png",
        "pareto_flops.png",
        "op_frequency.png",
        "curriculum.png",
        "proxy_vs_real.png",
    } <= set(images)
    for name in images:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000, name
    assert "http://" not in page and "https://" not in page  # self-contained: nothing fetched
    assert "config_hash" in page and "torch" in page  # config and versions
    assert "Pareto" in page and "Spearman rho" in page and "Where the cores went" in page


def test_report_against_a_truth_table(report, tmp_path):
    exp, _ = report
    board = pd.read_parquet(exp / "leaderboard.parquet")
    truth = tmp_path / "truth.parquet"
    pd.DataFrame(
        {
            "arch": list(board["arch"]) * 2,
            "seed": [0] * len(board) + [1] * len(board),
            "val_acc": list(board["params"] / 1e5) * 2,
            "test_acc": 0.5,
        }
    ).to_parquet(truth)
    out = tmp_path / "r"
    assert main(["report", str(exp), "--out", str(out), "--truth", str(truth)]) == 0
    page = (out / "index.html").read_text()
    assert f"{len(board)} of {len(board)} architectures are in" in page
    assert (out / "truth_rung1.png").is_file()


def test_compare_two_runs(smoke_search, capsys):
    _, final, exp, _, _ = smoke_search
    assert main(["compare", str(exp), str(exp), "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["a"]["architectures"] == len(final) and s["a"]["best_val_acc"] == pytest.approx(final["val_acc"].max())
    assert s["a"]["trials"] == 12 and s["a"]["trials_to_best"] >= 1
    assert s["a"]["trials_to_best"] <= s["a"]["trials"]
    assert main(["compare", str(exp), str(exp)]) == 0
    assert "trials_to_best" in capsys.readouterr().out


@pytest.mark.chromium
@pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("GTNNAS_REQUIRE_CHROMIUM"), reason="Debian's chromium is not installed"
)
def test_report_renders_in_headless_chromium(report, tmp_path):
    assert CHROMIUM, "GTNNAS_REQUIRE_CHROMIUM is set but chromium is not installed"
    _, out = report
    url = (out / "index.html").as_uri()
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*common, "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    loaded = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert loaded, "the page's load check did not run"
    assert loaded.group(1) == loaded.group(2) and int(loaded.group(2)) >= 7, loaded.group(0)
    shot = tmp_path / "page.png"
    subprocess.run([*common, "--window-size=1200,2400", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    assert shot.stat().st_size > 20_000
