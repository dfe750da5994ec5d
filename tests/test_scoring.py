"""The Scorer: one parse of search.score, the components a search computes, the one value it compares."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from search.config import NetConfig, load_config
from search.errors import InputError
from search.proxies import GTNSteps, ProxyContext
from search.proxy_specs import components, make_proxy
from search.scoring import COMPONENTS, Scorer
from search.search_config import SearchConfig
from search.space import parse
from search.teacher_files import load_teacher

ROOT = Path(__file__).resolve().parents[1]
CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]


def test_every_score_name_parses_once_into_what_it_needs():
    none, gtn, cal = Scorer.parse("none"), Scorer.parse("gtn", seeds=2), Scorer.parse("gtn+params+naswot")
    assert none.none and not none.parts and not gtn.none
    assert gtn.uses_gtn and gtn.needs_data and not gtn.combined and gtn.columns == ("gtn_score",)
    assert cal.combined and cal.columns == ("gtn_score", "params", "naswot") and not cal.data_free
    assert Scorer.parse("calibrated:gtn+params+naswot") == cal  # the older spelling, the same score
    assert Scorer.parse("params").data_free and not Scorer.parse("params").needs_data
    assert set(COMPONENTS) == {"gtn", "params", "flops", "synflow", "naswot", "jacob_cov"}
    for bad in ("snipp", "calibrated:", "calibrated:gtn+gtn", "gtn+", "+gtn", "ensemble:gtn+params", "gtn:16"):
        with pytest.raises(InputError):
            Scorer.parse(bad)
    with pytest.raises(InputError, match="metric"):
        Scorer.parse("gtn", metric="f1")
    s = SearchConfig(score="gtn+params", score_seeds=3, score_val=500, score_channels=4)
    assert Scorer.from_config(s) == s.scorer == Scorer.parse("gtn+params", seeds=3, val_size=500, channels=4)


def test_a_cached_score_is_keyed_by_everything_it_depends_on():
    net = NetConfig()
    base = Scorer.parse("gtn", seeds=2).key("h", "cur", net, 0)
    others = [
        Scorer.parse("gtn", seeds=3).key("h", "cur", net, 0),
        Scorer.parse("gtn", seeds=2).key("g", "cur", net, 0),
        Scorer.parse("gtn", seeds=2).key("h", "other", net, 0),
        Scorer.parse("gtn", seeds=2).key("h", "cur", net, 1),
        Scorer.parse("gtn", seeds=2, channels=4).key("h", "cur", net, 0),
        Scorer.parse("gtn", seeds=2, metric="loss").key("h", "cur", net, 0),
        Scorer.parse("gtn", seeds=2).key("h", "cur", NetConfig(channels=4), 0),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_components_are_the_proxies_own_values_and_a_combined_value_ranks_them(fashion, tiny_teacher):
    path, cfg = tiny_teacher
    cur = load_teacher(path).curriculum(real=fashion.train)
    net = NetConfig(channels=4)
    scorer = Scorer.parse("gtn+params+naswot", seeds=2, val_size=300)
    rows = [components(scorer, parse(a), net=net, data=fashion, curriculum=cur, seed=0) for a in CELLS]
    ctx = ProxyContext(net=net, shape=fashion.shape, data=fashion, curriculum=cur, seed=0)
    for a, row in zip(CELLS, rows, strict=True):
        assert row["params"] == make_proxy("params").score_many([parse(a)], ctx)[0][0]
        assert row["naswot"] == pytest.approx(make_proxy("naswot").score_many([parse(a)], ctx)[0][0])
        assert row["gtn_score"] == pytest.approx(GTNSteps(seeds=2, val_size=300).value(parse(a), ctx))
        assert isinstance(row["params"], int) and row["gtn_val_loss"] > 0
    values = scorer.values(rows)  # equal weights on ranks among these cells
    assert values == [scorer.value(r, rows) for r in rows]
    ranks = [np.mean([sorted(r[c] for r in rows).index(row[c]) for c in scorer.columns]) for row in rows]
    assert np.argsort(values).tolist() == np.argsort(ranks, kind="stable").tolist()
    # `gtnnas bench proxies` scores a search's rung-1 score through the same Scorer
    search = replace(load_config(None).search, score_seeds=2, score_val=300)
    bench = make_proxy("calibrated:gtn+params+naswot", search)
    assert bench.score_many([parse(a) for a in CELLS], ctx)[0] == pytest.approx(values)
    assert Scorer.parse("params").value(rows[0]) == rows[0]["params"]


def test_the_gtn_component_reads_loss_or_accuracy_with_learners_of_their_own_width(fashion, tiny_teacher):
    path, _ = tiny_teacher
    cur = load_teacher(path).curriculum(real=fashion.train)
    net = NetConfig(channels=8)
    acc = components(Scorer.parse("gtn", val_size=200), parse(CELLS[0]), net=net, data=fashion, curriculum=cur)
    loss = components(
        Scorer.parse("gtn", val_size=200, metric="loss"), parse(CELLS[0]), net=net, data=fashion, curriculum=cur
    )
    assert loss["gtn_score"] == pytest.approx(-acc["gtn_val_loss"]) and 0 <= acc["gtn_score"] <= 1
    narrow = Scorer.parse("gtn", val_size=200, channels=4)
    assert narrow.gtn_proxy_name() == "gtn:v200:c4"
    assert make_proxy(narrow.gtn_proxy_name()).name == narrow.gtn_proxy_name()
    assert (
        components(narrow, parse(CELLS[0]), net=net, data=fashion, curriculum=cur)["gtn_val_loss"]
        != acc["gtn_val_loss"]
    )


def test_benchmark_mode_reads_components_from_the_tables_as_integers_without_torch():
    code = (
        "import sys; sys.modules.update({m: None for m in ('torch', 'torchvision')}); "
        "from cluster.trainable import components; from search.config import load_config; "
        "from search.space import parse; "
        "cfg = load_config('configs/nb201_bench.yaml', ['search.score=params+synflow']); "
        f"row = components(cfg, cfg.search.scorer, parse({CELLS[0]!r})); "
        "print(type(row['params']).__name__, row['synflow'] > 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["int", "True"]
