"""Proxies on tiny networks and real data, and the rank statistics they are judged by."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from search import nb201
from search.config import NetConfig, TrainConfig
from search.data import Dataset, Split
from search.nets import build_net, count_params
from search.proxies import ProxyContext, ProxyError
from search.proxy_specs import combine_ranks, make_proxy, needs_curriculum, parse_proxies
from search.scoring import DATA_FREE
from search.space import parse, sample
from search.stats import kendall, ranks, spearman, top_half_spearman
from search.teacher_files import load_teacher

NONE_CELL = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
CONV_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
SKIP_CELL = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|"


def test_kendall_and_spearman_against_hand_counts():
    # 7 concordant, 3 discordant pairs of 10: tau = 0.4; rank differences d = (2,-1,-1,1,-1): rho = 1 - 6*8/120.
    assert kendall([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]) == pytest.approx(0.4)
    assert spearman([1, 2, 3, 4, 5], [3, 1, 2, 5, 4]) == pytest.approx(0.6)
    # tau-b with one tie on each side: (4 - 0) / sqrt(5 * 5).
    assert kendall([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)
    assert kendall([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert ranks([10, 30, 20, 20]).tolist() == [0.0, 3.0, 1.5, 1.5]
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def _kendall_by_pairs(a, b):
    """tau-b straight from its definition, O(n^2): the reference for scipy's kendalltau behind kendall()."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    iu = np.triu_indices(len(a), 1)
    da, db = np.sign(a[:, None] - a[None, :])[iu], np.sign(b[:, None] - b[None, :])[iu]
    with np.errstate(invalid="ignore"):  # 0/0 when one side is constant: NaN, like kendall()
        return (da * db).sum() / np.sqrt((da != 0).sum() * (db != 0).sum())


def test_fast_kendall_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(3, 30))
        a, b = rng.integers(0, 4, n).astype(float), rng.integers(0, 5, n).astype(float)
        want = _kendall_by_pairs(a, b)
        assert (math.isnan(want) and math.isnan(kendall(a, b))) or kendall(a, b) == pytest.approx(want, abs=1e-12)
    # -inf (a proxy's "worst") ties with -inf instead of turning the statistic into NaN
    assert kendall([-math.inf, -math.inf, 1, 2, 3], [0.1, 0.2, 0.3, 0.4, 0.5]) == pytest.approx(
        _kendall_by_pairs([-1e300, -1e300, 1, 2, 3], [0.1, 0.2, 0.3, 0.4, 0.5])
    )


def test_top_half_uses_the_best_half_by_proxy_and_minus_inf_ranks_last():
    proxy, truth = [1, 2, 3, 4, 5, 6], [6, 5, 4, 1, 2, 3]
    assert spearman(proxy, truth) < 0
    assert top_half_spearman(proxy, truth) == pytest.approx(1.0)
    assert spearman([-math.inf, 1.0, 2.0], [0.1, 0.5, 0.9]) == pytest.approx(1.0)
    assert spearman([float("nan"), 1.0, 2.0, 3.0], [5, 1, 2, 3]) == pytest.approx(1.0)  # NaN pair dropped


@pytest.fixture(scope="module")
def ctx(fashion):
    return ProxyContext(net=NetConfig(channels=4, cells=1), shape=(1, 28, 28), data=fashion, batch_size=32)


@pytest.mark.parametrize("name", ["synflow", "naswot", "jacob_cov", "snip", "grad_norm"])
def test_proxies_are_deterministic_and_separate_cells(ctx, name):
    proxy = make_proxy(name)
    archs = [parse(CONV_CELL), parse(SKIP_CELL), parse(NONE_CELL)]
    first, secs = proxy.score_many(archs, ctx)
    again, _ = proxy.score_many(archs, ctx)
    assert first == again and len(secs) == 3
    assert len(set(first)) == 3
    assert first[0] > first[2]  # a conv cell beats the cell with no path from input to output


def test_dead_cell_is_worst_not_nan(ctx):
    for name in ("naswot", "jacob_cov"):
        score, _ = make_proxy(name).score_many([parse(NONE_CELL)], ctx)
        assert score == [-math.inf]


def test_synflow_is_data_free(ctx, fashion):
    other = Dataset(
        "other",
        Split(fashion.train.x.flip(0) * 3, fashion.train.y),
        fashion.val,
        fashion.test,
        fashion.mean,
        fashion.std,
    )
    archs = [parse(CONV_CELL), sample(np.random.default_rng(3))]
    with_data = make_proxy("synflow").score_many(archs, ctx)[0]
    other_data = make_proxy("synflow").score_many(archs, ProxyContext(net=ctx.net, data=other))[0]
    no_data = make_proxy("synflow").score_many(archs, ProxyContext(net=ctx.net))[0]
    assert with_data == other_data == no_data
    assert set(DATA_FREE) == {"params", "flops", "synflow"}


def test_data_proxies_change_with_the_batch(ctx, fashion):
    shifted = Dataset(
        "x",
        Split(fashion.train.x.roll(5, 0), fashion.train.y.roll(5, 0)),
        fashion.val,
        fashion.test,
        fashion.mean,
        fashion.std,
    )
    a = [parse(CONV_CELL)]
    assert (
        make_proxy("snip").score_many(a, ctx)[0]
        != make_proxy("snip").score_many(a, ProxyContext(net=ctx.net, data=shifted, batch_size=32))[0]
    )


def test_naswot_rejects_a_batch_smaller_than_needed(fashion):
    tiny = Dataset("t", fashion.train.head(10), fashion.val, fashion.test, fashion.mean, fashion.std)
    with pytest.raises(ProxyError, match="at least 64 images, got 10"):
        make_proxy("naswot").score_many([parse(CONV_CELL)], ProxyContext(data=tiny, batch_size=64))


def test_params_matches_the_network_and_data_proxies_need_data():
    arch = parse(CONV_CELL)
    net = NetConfig(channels=4, cells=1)
    expect = count_params(build_net(arch, channels=4, cells=1, in_channels=1, image_size=28))
    assert make_proxy("params").score_many([arch], ProxyContext(net=net))[0] == [expect]
    for name in ("naswot", "real:4"):
        with pytest.raises(ProxyError, match="needs real data"):
            make_proxy(name).score_many([arch], ProxyContext(net=net))
    with pytest.raises(ProxyError, match="curriculum"):
        make_proxy("gtn:4").score_many([arch], ProxyContext(net=net))


def test_real_steps_trains_and_learns(ctx):
    c = ProxyContext(net=ctx.net, data=ctx.data, train=TrainConfig(lr=0.1, batch_size=64))
    scores, _ = make_proxy("real:60").score_many([parse(CONV_CELL), parse(NONE_CELL)], c)
    assert scores[0] > 0.5 and scores[1] < 0.15  # a conv cell learns in 60 steps; the dead cell is at chance
    assert make_proxy("real:10").score_many([parse(CONV_CELL)], c)[0][0] < scores[0]


def test_gtn_steps_uses_the_curriculum(tiny_teacher, fashion):
    path, cfg = tiny_teacher
    cur = load_teacher(path).curriculum(real=fashion.train)
    c = ProxyContext(net=NetConfig(channels=4, cells=1), data=fashion, curriculum=cur)
    scores, _ = make_proxy("gtn:4").score_many([parse(CONV_CELL)], c)
    assert 0.0 <= scores[0] <= 1.0


def test_ensemble_is_the_mean_rank(ctx):
    archs = [parse(CONV_CELL), parse(SKIP_CELL), parse(NONE_CELL)]
    ens = make_proxy("ensemble:params+synflow")
    p = make_proxy("params").score_many(archs, ctx)[0]
    s = make_proxy("synflow").score_many(archs, ctx)[0]
    assert ens.score_many(archs, ctx)[0] == combine_ranks([p, s])
    assert combine_ranks([[1, 2, 3], [3, 2, 1]]) == [1.0, 1.0, 1.0]
    assert combine_ranks([[float("nan"), 1, 2]]) == [0.0, 1.0, 2.0]  # a NaN score ranks last, never first

    assert needs_curriculum(make_proxy("ensemble:synflow+gtn:8")) and not needs_curriculum(ens)
    assert ens.name == "ensemble:params+synflow"


def test_bad_proxy_names():
    with pytest.raises(ProxyError, match="unknown proxy 'foo'"):
        make_proxy("foo")
    with pytest.raises(ProxyError, match="positive step count"):
        make_proxy("real:abc")
    with pytest.raises(ProxyError, match="no proxies"):
        parse_proxies(" , ")


def test_synflow_and_params_rank_nb201_cifar10_cells():
    """On NB201's own network, data-free proxies agree with the published 12-epoch table (small sample)."""
    table = pd.read_parquet(nb201.TABLE).sample(100, random_state=0)
    archs = [parse(a) for a in table["arch"]]
    c = ProxyContext(net=NetConfig(channels=16, cells=5), shape=(3, 32, 32))
    for name in ("synflow", "params"):
        scores = make_proxy(name).score_many(archs, c)[0]
        assert spearman(scores, table["cifar10_test"].tolist()) > 0.35  # ~0.55 over 1000 cells
