"""The ranking teacher: the pairwise term's gradient, checked against two hand-written unrolls."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from search.config import load_config
from search.gtn import Teacher
from search.inner_loop import draw_meta_batches, eval_loss, meta_batch_count, unroll
from search.nets import build_net
from search.rank import Pool, pairwise_rank_loss, ranking_gradient, sample_pool_cells
from search.space import parse

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
B = "|nor_conv_1x1~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|"


def test_pairwise_loss_has_known_values():
    s, t = torch.tensor([2.0, 1.0, 0.0]), torch.tensor([0.9, 0.5, 0.5])
    # pairs (0,1) and (0,2) are ordered right with margins 1 and 2; (1,2) ties in the target and is left out
    expected = (F.softplus(torch.tensor(-1.0 / 0.5)) + F.softplus(torch.tensor(-2.0 / 0.5))) / 2
    assert pairwise_rank_loss(s, t, 0.5) == pytest.approx(float(expected))
    assert pairwise_rank_loss(s, torch.tensor([0.1, 0.5, 0.9]), 0.5) > 1.0  # the reverse order costs more


@pytest.mark.parametrize("curriculum", ["pixels", "full"])
def test_rank_gradient_equals_two_hand_written_unrolls_and_reaches_every_teacher_part(fashion, curriculum):
    extra = ["gtn.pixels_init=noise"] if curriculum == "pixels" else []
    cfg = load_config(
        None,
        [
            f"gtn.curriculum={curriculum}",
            "gtn.inner_steps=3",
            "gtn.inner_batch=10",
            "gtn.noise_dim=8",
            "gtn.soft_labels=true",
            "gtn.learner_channels=4",
            "gtn.meta_batch=32",
            "gtn.learners_per_step=2",
            "gtn.rank_weight=2.0",
            "gtn.rank_pool=unused",
            "gtn.rank_batch=64",
            "gtn.rank_tau=0.5",
            "gtn.checkpointing=true",
            *extra,
        ],
    )
    g = cfg.gtn
    data = fashion
    teacher = Teacher(g, data.shape, data.num_classes, torch.Generator().manual_seed(0))
    pool = Pool((parse(A), parse(B)), np.array([0.8, 0.6]))
    rng, gen = np.random.default_rng(3), torch.Generator().manual_seed(5)
    rng_copy, gen_copy = copy.deepcopy(rng), torch.Generator().manual_seed(5)
    ranking_gradient(teacher, cfg, data, pool, rng, gen, it=1)
    got = {n: p.grad.clone() for n, p in teacher.named_parameters()}

    # by hand: the same draws, two separate unrolls, the chain rule written out
    picks = rng_copy.choice(2, size=2, replace=False)
    batches = draw_meta_batches(data.train, meta_batch_count(g), g.meta_batch, gen_copy)
    ((rx, ry),) = draw_meta_batches(data.train, 1, g.rank_batch, gen_copy)
    params = list(teacher.parameters())
    dm, ds, s = [], [], []
    for j, k in enumerate(picks):
        learner = build_net(
            pool.archs[k],
            channels=4,
            cells=1,
            in_channels=1,
            image_size=28,
            num_classes=10,
            norm=g.learner_norm,
            seed=cfg.seed * 1_000_003 + 1 + 7_919 * j,
        )
        res = unroll(
            learner, teacher, teacher.plan(gen_copy, data.train), batches, checkpointing=False, eval_bn=g.eval_bn
        )
        score = -eval_loss(learner, res.state, rx, ry, g.eval_bn)[0]
        dm.append(torch.autograd.grad(res.meta_loss, params, retain_graph=True, allow_unused=True))
        ds.append(torch.autograd.grad(score, params, allow_unused=True))
        s.append(float(score.detach()))
    t = pool.targets[picks]
    sign = float(np.sign(t[0] - t[1]))
    coef = -sign * torch.sigmoid(torch.tensor(-sign * (s[0] - s[1]) / g.rank_tau)).item() / g.rank_tau
    for (name, p), m0, m1, s0, s1 in zip(teacher.named_parameters(), *dm, *ds, strict=True):
        z = torch.zeros_like(p)
        m0, m1, s0, s1 = (z if v is None else v for v in (m0, m1, s0, s1))
        assert s0.abs().sum() > 0 and s1.abs().sum() > 0, f"{name}: no gradient through a learner's unroll"
        hand = (m0 + m1) / 2 + g.rank_weight * coef * (s0 - s1)
        assert torch.allclose(got[name], hand, rtol=1e-4, atol=1e-7), name


def test_pool_cells_avoid_excluded_classes():
    cells = sample_pool_cells(50, seed=0, exclude=[A, B])
    hashes = [c.equiv_hash() for c in cells]
    assert len(set(hashes)) == 50 and parse(A).equiv_hash() not in hashes and parse(B).equiv_hash() not in hashes
