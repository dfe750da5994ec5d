"""The functional unroll against a hand-written one, gradients, first-order mode, learning."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from search.config import ExperimentConfig, GTNConfig, load_config
from search.gtn import Generator, Teacher, soft_cross_entropy
from search.inner_loop import draw_meta_batches, make_learner, meta_batch_count, unroll
from search.nets import Norm2d, build_net
from search.outer_loop import meta_gradient, train_teacher
from search.space import parse

SHAPE = (1, 8, 8)


def _teacher(curriculum="full", t=3, b=6, soft=False):
    cfg = GTNConfig(
        curriculum=curriculum,
        inner_steps=t,
        inner_batch=b,
        noise_dim=4,
        soft_labels=soft,
        init_lr=0.05,
        init_momentum=0.5,
    )
    return Teacher(cfg, SHAPE, 10, torch.Generator().manual_seed(1)).double()


def _learner():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 6), Norm2d(6, mean_only=True, momentum=1.0), nn.ReLU(), nn.Linear(6, 10)
    ).double()


def _meta_batches(n):
    g = torch.Generator().manual_seed(2)
    return [
        (torch.randn(5, *SHAPE, generator=g, dtype=torch.float64), torch.randint(10, (5,), generator=g))
        for _ in range(n)
    ]


def _hand_unroll(teacher, learner, plan, batches, every=0, first_order=False):
    """The same maths with raw tensors: linear -> mean-only BN -> ReLU -> linear, momentum SGD."""
    w1, b1, beta, w2, b2 = (
        p.detach().clone().requires_grad_()
        for p in (learner[1].weight, learner[1].bias, learner[2].bias, learner[4].weight, learner[4].bias)
    )
    theta = [w1, b1, beta, w2, b2]
    vel = [torch.zeros_like(p) for p in theta]
    running = torch.zeros(6, dtype=torch.float64)

    def fwd(th, x, train, run):
        h = x.flatten(1) @ th[0].T + th[1]
        mu = h.mean(0) if train else run
        return F.relu(h - mu + th[2]) @ th[3].T + th[4], h.mean(0)

    losses, extra = [], iter(batches[:-1])
    for t, step in enumerate(plan):
        x, y = teacher.batch(step)
        at = [p.detach().requires_grad_() for p in theta] if first_order else theta
        logits, running = fwd(at, x, True, running)
        grads = torch.autograd.grad(soft_cross_entropy(logits, y), at, create_graph=True)
        lr, m = teacher.log_lr[t].exp(), teacher.log_momentum[t].exp()
        vel = [m * v + g for v, g in zip(vel, grads, strict=True)]
        theta = [p - lr * v for p, v in zip(theta, vel, strict=True)]
        if every and (t + 1) % every == 0 and t + 1 < len(plan):
            xb, yb = next(extra)
            losses.append(F.cross_entropy(fwd(theta, xb, False, running)[0], yb))
    xb, yb = batches[-1]
    losses.append(F.cross_entropy(fwd(theta, xb, False, running)[0], yb))
    return torch.stack(losses).mean()


def _grads(teacher, loss):
    params = [p for p in teacher.parameters() if p.requires_grad]
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("every", [0, 1])
@pytest.mark.parametrize("curriculum, soft", [("full", False), ("full", True), ("pixels", False)])
def test_functional_unroll_equals_hand_written(checkpointing, every, curriculum, soft):
    teacher, learner = _teacher(curriculum, soft=soft), _learner()
    plan = teacher.plan(torch.Generator().manual_seed(0))
    batches = _meta_batches(3 if every else 1)
    ours = unroll(
        learner, teacher, plan, batches, meta_loss_every=every, checkpointing=checkpointing, eval_bn="running"
    ).meta_loss
    ref = _hand_unroll(teacher, learner, plan, batches, every)
    assert torch.allclose(ours, ref, rtol=1e-10, atol=1e-12)
    for a, b in zip(_grads(teacher, ours), _grads(teacher, ref), strict=True):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)


def test_first_order_matches_detached_reference():
    teacher, learner = _teacher(), _learner()
    plan = teacher.plan(torch.Generator().manual_seed(0))
    batches = _meta_batches(1)
    ours = unroll(learner, teacher, plan, batches, first_order=True, eval_bn="running").meta_loss
    ref = _hand_unroll(teacher, learner, plan, batches, first_order=True)
    exact = _hand_unroll(teacher, learner, plan, batches)
    assert torch.allclose(ours, ref, rtol=1e-10)  # the forward pass is the same maths...
    g_ours, g_ref, g_exact = _grads(teacher, ours), _grads(teacher, ref), _grads(teacher, exact)
    for a, b in zip(g_ours, g_ref, strict=True):
        assert torch.allclose(a, b, rtol=1e-8, atol=1e-12)
    # ...but the gradient drops the Hessian terms, so it differs from the exact one
    assert any(not torch.allclose(a, b, rtol=1e-6) for a, b in zip(g_ours, g_exact, strict=True))


def test_every_teacher_part_gets_gradient_through_an_nb201_learner():
    cfg = GTNConfig(inner_steps=3, inner_batch=8, noise_dim=8, soft_labels=True)
    teacher = Teacher(cfg, (1, 8, 8), 10, torch.Generator().manual_seed(0))
    learner = build_net(
        parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"),
        channels=2,
        cells=1,
        in_channels=1,
        image_size=8,
        norm="gtn",
    )
    batches = [(torch.randn(6, 1, 8, 8), torch.randint(10, (6,)))]
    res = unroll(learner, teacher, teacher.plan(torch.Generator()), batches, eval_bn="running")
    res.meta_loss.backward()
    for name, p in teacher.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert {"curriculum", "log_lr", "log_momentum", "soft_labels"} <= {n for n, _ in teacher.named_parameters()}


def test_generator_shapes():
    for shape in [(1, 28, 28), (3, 32, 32)]:
        g = Generator(128, 10, shape)
        x = g(torch.randn(5, 128), torch.arange(5))
        assert x.shape == (5, *shape) and x.abs().max() <= 2.0
    with pytest.raises(ValueError, match="divisible by 4"):
        Generator(8, 10, (1, 30, 30))


def test_curricula_plans():
    for mode in ("shuffled_batches", "none"):
        cfg = GTNConfig(curriculum=mode, inner_steps=5, inner_batch=4, noise_dim=4)
        t = Teacher(cfg, SHAPE, 10)
        plan = t.plan(torch.Generator().manual_seed(0))
        assert len(plan) == 5
        x, y = t.batch(plan[0])
        assert x.shape == (4, *SHAPE) and y.shape == (4, 10) and torch.allclose(y.sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="needs real training data"):
        Teacher(GTNConfig(curriculum="real", inner_steps=2, inner_batch=2), SHAPE, 10).plan(torch.Generator())
    labels = Teacher(GTNConfig(inner_steps=2, inner_batch=20, noise_dim=4), SHAPE, 10).labels
    assert torch.bincount(labels[0]).tolist() == [2] * 10  # balanced


def test_meta_steps_lower_the_meta_loss(fashion):
    """A few Adam steps on a tiny real subset lower the meta-loss of a fixed learner.

    One thread: the trajectory is chaotic enough that another thread count's reduction order (left
    behind by an earlier test) changes it.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _meta_steps_lower_the_meta_loss(fashion)
    finally:
        torch.set_num_threads(threads)


def _meta_steps_lower_the_meta_loss(fashion):
    torch.manual_seed(0)
    cfg = GTNConfig(inner_steps=8, inner_batch=20, noise_dim=16)
    teacher = Teacher(cfg, (1, 28, 28), 10, torch.Generator().manual_seed(0))
    learner = build_net(
        parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"),
        channels=4,
        cells=1,
        in_channels=1,
        image_size=28,
        norm="gtn",
        seed=0,
    )
    batches = draw_meta_batches(fashion.train.head(500), 1, 200, torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(teacher.parameters(), lr=0.002)  # 0.005 oscillates on one thread
    plan = teacher.plan(torch.Generator())
    losses = []
    for _ in range(15):
        res = unroll(learner, teacher, plan, batches, checkpointing=False, eval_bn="running")
        losses.append(res.meta_loss.item())
        opt.zero_grad()
        res.meta_loss.backward()
        opt.step()
    assert sum(losses[-3:]) / 3 < 0.9 * losses[0], losses


def test_learners_per_step_averages_the_learners_meta_gradients(fashion):
    """meta_gradient with L=2 equals the mean of two unrolls built by hand from the same seeds."""
    data = replace(fashion, train=fashion.train.head(300))
    g = GTNConfig(
        seed=3,
        inner_steps=2,
        inner_batch=10,
        noise_dim=8,
        meta_batch=20,
        learner_channels=2,
        learners_per_step=2,
        checkpointing=False,
    )
    cfg = ExperimentConfig(seed=99, gtn=g)  # meta-training follows the teacher's own seed, not the search's
    teacher = Teacher(g, data.shape, 10, torch.Generator().manual_seed(0))
    loss, _, _ = meta_gradient(teacher, cfg, data, np.random.default_rng(3), torch.Generator().manual_seed(3), 5)
    got = {n: p.grad.clone() for n, p in teacher.named_parameters() if p.grad is not None}

    rng, gen = np.random.default_rng(3), torch.Generator().manual_seed(3)
    want, losses, names = {}, [], set()
    for j in range(2):
        learner, name = make_learner(g, data.shape, 10, rng, seed=3 * 1_000_003 + 5 + 7_919 * j)
        names.add(name)
        plan = teacher.plan(gen, data.train)
        res = unroll(
            learner,
            teacher,
            plan,
            draw_meta_batches(data.train, meta_batch_count(g), 20, gen),
            checkpointing=False,
            eval_bn=g.eval_bn,
        )
        losses.append(res.meta_loss)
        for (n, _), gr in zip(
            teacher.named_parameters(),
            torch.autograd.grad(res.meta_loss, list(teacher.parameters()), allow_unused=True),
            strict=True,
        ):
            if gr is not None:
                want[n] = want.get(n, 0) + gr / 2
    assert loss == pytest.approx(float(sum(losses).detach()) / 2, rel=1e-6)
    assert set(got) == set(want) and {"curriculum", "log_lr"} <= set(got)
    for n in got:
        torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=1e-7)
    single = Teacher(g, data.shape, 10, torch.Generator().manual_seed(0))  # one learner differs from the mean
    meta_gradient(
        single,
        ExperimentConfig(gtn=replace(g, learners_per_step=1)),
        data,
        np.random.default_rng(3),
        torch.Generator().manual_seed(3),
        5,
    )
    assert not torch.allclose(single.log_lr.grad, got["log_lr"])


def test_generator_meta_lr_sets_the_generators_step_alone(fashion):
    """With gtn.generator_meta_lr, Adam's first outer step (|step| = lr for every parameter with a
    gradient) moves the generator's weights by that rate and the latents and schedule by meta_lr."""
    data = replace(fashion, train=fashion.train.head(300), val=fashion.val.head(50))
    cfg = load_config(
        None,
        [
            "gtn.inner_steps=2",
            "gtn.inner_batch=10",
            "gtn.noise_dim=8",
            "gtn.meta_batch=20",
            "gtn.learner_channels=2",
            "gtn.outer_steps=1",
            "gtn.checkpointing=false",
            "gtn.meta_lr=0.01",
            "gtn.generator_meta_lr=0.0001",
            "gtn.validate_size=50",
            "net.channels=2",
            "net.cells=1",
            "gtn.seed=4",
        ],
    )
    before = Teacher(cfg.gtn, data.shape, 10, torch.Generator().manual_seed(4)).state_dict()
    after = train_teacher(cfg, data).state_dict()
    step = {k: (after[k] - before[k]).abs().max().item() for k in before if before[k].is_floating_point()}
    gen = [k for k in step if k.startswith("generator.")]
    assert gen and max(step[k] for k in gen) == pytest.approx(1e-4, rel=1e-3)  # tiny gradients step less (eps)
    assert all(step[k] <= 1.001e-4 for k in gen), {k: step[k] for k in gen}
    for k in ("curriculum", "log_lr", "log_momentum"):
        assert step[k] == pytest.approx(1e-2, rel=1e-3), (k, step[k])


def test_train_teacher_runs_the_warm_start_and_steps_pixels_at_meta_lr(fashion, monkeypatch):
    """train_teacher fits the generator first exactly when generator_init is real (and that fit, not
    the tiny meta step, is what moves its weights); a pixels teacher (no generator, one Adam group)
    steps its images and schedule at meta_lr."""
    calls = []
    fit = Teacher.fit_generator_to
    monkeypatch.setattr(Teacher, "fit_generator_to", lambda self, *a, **k: calls.append(a[2]) or fit(self, *a, **k))
    data = replace(fashion, train=fashion.train.head(300), val=fashion.val.head(50))
    base = [
        "gtn.inner_steps=2",
        "gtn.inner_batch=10",
        "gtn.noise_dim=8",
        "gtn.meta_batch=20",
        "gtn.learner_channels=2",
        "gtn.outer_steps=1",
        "gtn.checkpointing=false",
        "gtn.validate_size=50",
        "net.channels=2",
        "net.cells=1",
    ]
    gen = ["gtn.meta_lr=0.01", "gtn.generator_meta_lr=0.00001"]
    warm = train_teacher(
        load_config(None, base + gen + ["gtn.generator_init=real", "gtn.generator_init_steps=5"]), data
    )
    assert calls == [5]
    cold = train_teacher(load_config(None, base + gen), data)
    assert calls == [5]
    w, c = warm.state_dict(), cold.state_dict()
    assert (
        max((w[k] - c[k]).abs().max().item() for k in w if k.startswith("generator.") and w[k].is_floating_point())
        > 1e-3
    )
    cfg = load_config(None, base + ["gtn.curriculum=pixels", "gtn.meta_lr=0.01"])
    before = Teacher(cfg.gtn, data.shape, 10, torch.Generator().manual_seed(0)).state_dict()
    after = train_teacher(cfg, data).state_dict()
    for k in ("pixels", "log_lr"):
        assert (after[k] - before[k]).abs().max().item() == pytest.approx(0.01, rel=1e-3), k


def test_bf16_autocast_keeps_the_meta_gradient(fashion):
    """gtn.autocast: bf16 runs the learner's forwards in bfloat16; the meta-gradient must stay the same one."""
    cfg = GTNConfig(curriculum="pixels", inner_steps=6, inner_batch=32, learner_norm="gtn_bn")
    arch = parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|")
    batches = draw_meta_batches(fashion.train, 1, 128, torch.Generator().manual_seed(0))

    def meta_grad(autocast):
        teacher = Teacher(cfg, (1, 28, 28), 10, torch.Generator().manual_seed(0))
        learner = build_net(arch, channels=8, cells=1, in_channels=1, image_size=28, norm="gtn_bn", seed=0)
        res = unroll(
            learner,
            teacher,
            teacher.plan(torch.Generator()),
            batches,
            checkpointing=True,
            eval_bn="batch",
            autocast=autocast,
        )
        res.meta_loss.backward()
        return torch.cat([p.grad.flatten() for p in teacher.parameters()]), float(res.meta_loss.detach())

    full, loss_full = meta_grad(None)
    half, loss_half = meta_grad(torch.bfloat16)
    assert abs(loss_half - loss_full) < 0.01 * loss_full
    assert torch.nn.functional.cosine_similarity(full, half, dim=0) > 0.99
    assert not torch.equal(full, half)  # bfloat16 really ran
