"""The functional inner loop and the exact meta-gradient of a GTN.

The learner is trained for T steps of momentum SGD written functionally
(``torch.func.functional_call``): its parameters, BatchNorm statistics and velocity are plain
tensors carried from step to step, with the teacher's learned learning rate and momentum for each
step. The meta-loss (cross-entropy of the trained learner on real data, in eval mode, optionally
also after every k-th step) is differentiated through all T steps: second order by default, with
each step checkpointed (recomputed in the backward pass) so the autograd graph held in memory does
not grow with T; ``first_order`` drops the learner's Hessian terms (each step's gradient is taken at
detached parameters) but keeps the path from the synthetic data to the update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .config import GTNConfig
from .data import Split
from .gtn import StepInput, Teacher, soft_cross_entropy
from .nets import PaperLearner, functional_forward, init_weights, net_from
from .shapes import InputSpec
from .space import Arch, parse, sample

State = tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]  # params, buffers, velocity
Body = Callable[[list[Tensor], bool], tuple[Tensor, ...]]  # one inner step on the flat state (create_graph)


def make_learner(
    cfg: GTNConfig, shape: tuple[int, int, int], num_classes: int, rng: np.random.Generator, seed: int
) -> tuple[nn.Module, str]:
    """The learner of one outer step: a freshly sampled NB201 cell (default) or the fixed learner."""
    c, h, _ = shape
    if cfg.learner == "fixed":
        if cfg.learner_arch is None:
            with torch.random.fork_rng(devices=[]):
                paper = PaperLearner(c, h, num_classes)
            return init_weights(paper, torch.Generator().manual_seed(seed)), "paper_conv"
        arch = parse(cfg.learner_arch)
    else:
        arch = _sample_live(rng)
    channels = cfg.learner_channels
    if cfg.random_width:
        channels = int(rng.integers(max(1, channels // 2), 2 * channels + 1))
    net = net_from(arch, replace(cfg.learner_net, channels=channels), InputSpec(shape, num_classes), seed=seed)
    return net, str(arch)


def learner_seed(seed: int, outer_step: int, j: int) -> int:
    """The weights of outer step ``outer_step``'s ``j``-th learner, from the meta-training seed."""
    return seed * 1_000_003 + outer_step + 7_919 * j


def _sample_live(rng: np.random.Generator) -> Arch:
    """A uniformly sampled cell whose output depends on its input (dead cells teach nothing)."""
    while True:
        a = sample(rng)
        if a.canonical() != str(Arch(("none",) * 6)):
            return a


def initial_state(learner: nn.Module) -> State:
    params = {k: v.detach().clone().requires_grad_() for k, v in learner.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in learner.named_buffers()}
    velocity = {k: torch.zeros_like(v) for k, v in params.items()}
    return params, buffers, velocity


def autocast_dtype(cfg: GTNConfig) -> torch.dtype | None:
    """``gtn.autocast`` as a dtype (None: full precision)."""
    return torch.bfloat16 if cfg.autocast == "bf16" else None


def amp(x: Tensor, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``x``'s device (None: full precision)."""
    return torch.autocast(x.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def inner_step(
    learner: nn.Module,
    teacher: Teacher,
    step: StepInput,
    t: int,
    state: State,
    first_order: bool = False,
    create_graph: bool = True,
    autocast: torch.dtype | None = None,
) -> State:
    """One momentum-SGD step: v <- m_t v + g;  theta <- theta - lr_t v (as in the GTN code).

    With ``autocast`` the learner's forward runs in that precision (parameters and the update stay float32).
    """
    params, buffers, velocity = state
    x, y = teacher.batch(step)
    at = {k: v.detach().requires_grad_() for k, v in params.items()} if first_order else params
    with amp(x, autocast):
        logits, new_buffers = functional_forward(learner, at, buffers, x)
    loss = soft_cross_entropy(logits.float() if autocast is not None else logits, y)
    grads = torch.autograd.grad(loss, list(at.values()), create_graph=create_graph, allow_unused=True)
    new_p, new_v = momentum_step(
        params, velocity, dict(zip(params, grads, strict=True)), teacher.lr()[t], teacher.momentum()[t]
    )
    return new_p, new_buffers, new_v


def momentum_step(
    params: Mapping[str, Tensor],
    velocity: Mapping[str, Tensor],
    grads: Mapping[str, Tensor | None],
    lr: Tensor | float,
    momentum: Tensor | float,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The learners' update, out of place (differentiable): v <- m v + g;  theta <- theta - lr v, as in the GTN
    code; a parameter without a gradient keeps its momentum. Meta-training and scoring share it."""
    new_v = {}
    for k in params:
        g = grads[k]
        new_v[k] = momentum * velocity[k] + (g if g is not None else 0.0)
    return {k: p - lr * new_v[k] for k, p in params.items()}, new_v


def eval_loss(learner: nn.Module, state: State, x: Tensor, y: Tensor, eval_bn: str) -> tuple[Tensor, Tensor]:
    """(cross-entropy, accuracy) of the learner on real data.

    ``eval_bn="running"`` is the official code's eval mode (BatchNorm uses the statistics carried
    from the last synthetic batch); ``"batch"`` normalises with the real batch's own statistics.
    """
    params, buffers, _ = state
    if eval_bn == "batch":
        logits, _ = functional_forward(learner, params, buffers, x)
    else:
        learner.eval()
        try:
            logits = functional_call(learner, (params, buffers), (x,), strict=False)
        finally:
            learner.train()
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()


def _flat(state: State) -> tuple[list[str], list[str], list[str], list[Tensor]]:
    p, b, v = state
    return list(p), list(b), list(v), [*p.values(), *b.values(), *v.values()]


def _unflat(keys: tuple[list[str], list[str], list[str]], tensors: Sequence[Tensor]) -> State:
    kp, kb, kv = keys
    i, j = len(kp), len(kp) + len(kb)
    return (
        dict(zip(kp, tensors[:i], strict=True)),
        dict(zip(kb, tensors[i:j], strict=True)),
        dict(zip(kv, tensors[j:], strict=True)),
    )


class _CheckpointedStep(torch.autograd.Function):
    """One inner step that keeps only its input state; the backward pass recomputes it.

    Forward runs the step without a second-order graph (the learner's own gradient is taken with
    ``create_graph=False``) and returns detached state. Backward re-runs it with the full graph and
    back-propagates into the incoming state and the teacher's parameters, which are passed in as
    inputs so autograd routes their gradients. Memory for T steps is T small learner states plus one
    step's graph, instead of T graphs (the official code's gradient_checkpointing, block size 1).
    """

    @staticmethod
    def forward(ctx: Any, body: Body, n_state: int, *inputs: Tensor) -> tuple[Tensor, ...]:
        ctx.body, ctx.teacher_params = body, inputs[n_state:]
        ctx.save_for_backward(*inputs[:n_state])
        with torch.enable_grad():
            state = [x.detach().requires_grad_(x.is_floating_point()) for x in inputs[:n_state]]
            out = body(state, False)
        return tuple(o.detach() for o in out)

    @staticmethod
    def backward(ctx: Any, *grad_out: Tensor) -> tuple[Tensor | None, ...]:
        with torch.enable_grad():
            state = [x.detach().requires_grad_(x.is_floating_point()) for x in ctx.saved_tensors]
            out = ctx.body(state, True)
        pairs = [(o, g) for o, g in zip(out, grad_out, strict=True) if g is not None and o.requires_grad]
        wrt = [x for x in state if x.requires_grad] + [p for p in ctx.teacher_params if p.requires_grad]
        grads = iter(
            torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs], allow_unused=True)
            if pairs
            else [None] * len(wrt)
        )
        state_grads = [next(grads) if x.requires_grad else None for x in state]
        teacher_grads = [next(grads) if p.requires_grad else None for p in ctx.teacher_params]
        return (None, None, *state_grads, *teacher_grads)


def checkpointed_step(
    learner: nn.Module,
    teacher: Teacher,
    step: StepInput,
    t: int,
    state: State,
    first_order: bool = False,
    autocast: torch.dtype | None = None,
) -> State:
    keys = _flat(state)[:3]

    def body(tensors: list[Tensor], create_graph: bool) -> tuple[Tensor, ...]:
        new = inner_step(learner, teacher, step, t, _unflat(keys, tensors), first_order, create_graph, autocast)
        return tuple(_flat(new)[3])

    tensors = _flat(state)[3]
    out = _CheckpointedStep.apply(body, len(tensors), *tensors, *teacher.parameters())
    return _unflat(keys, out)


@dataclass
class UnrollResult:
    meta_loss: Tensor  # differentiable w.r.t. the teacher
    final_loss: float
    final_acc: float
    state: State


def unroll_as(
    g: GTNConfig, learner: nn.Module, teacher: Teacher, plan: list[StepInput], meta_batches: list[tuple[Tensor, Tensor]]
) -> UnrollResult:
    """:func:`unroll` with the teacher settings' meta-loss schedule, order, checkpointing, BN and precision."""
    return unroll(
        learner,
        teacher,
        plan,
        meta_batches,
        meta_loss_every=g.meta_loss_every,
        first_order=g.first_order,
        checkpointing=g.checkpointing,
        eval_bn=g.eval_bn,
        autocast=autocast_dtype(g),
    )


def unroll(
    learner: nn.Module,
    teacher: Teacher,
    plan: list[StepInput],
    meta_batches: list[tuple[Tensor, Tensor]],
    *,
    meta_loss_every: int = 0,
    first_order: bool = False,
    checkpointing: bool = True,
    eval_bn: str,
    autocast: torch.dtype | None = None,
) -> UnrollResult:
    """Train ``learner`` through ``plan`` and return the meta-loss on real data.

    ``meta_batches`` holds the real batches of the meta-loss: the last is used after the final step,
    the others after every ``meta_loss_every``-th step (k, k*2, ...; the official code uses k=1 on
    MNIST and k=16 on CIFAR-10). The terms are averaged.
    """
    learner.train()
    state = initial_state(learner)
    losses: list[Tensor] = []
    extra = iter(meta_batches[:-1])
    for t, step in enumerate(plan):
        if checkpointing and torch.is_grad_enabled():
            state = checkpointed_step(learner, teacher, step, t, state, first_order, autocast)
        else:
            state = inner_step(learner, teacher, step, t, state, first_order, autocast=autocast)
        if meta_loss_every and (t + 1) % meta_loss_every == 0 and t + 1 < len(plan):
            xb, yb = next(extra)
            losses.append(eval_loss(learner, state, xb, yb, eval_bn)[0])
    final, acc = eval_loss(learner, state, *meta_batches[-1], eval_bn)
    losses.append(final)
    return UnrollResult(torch.stack(losses).mean(), float(final.detach()), float(acc), state)


def meta_batch_count(cfg: GTNConfig) -> int:
    k = cfg.meta_loss_every
    return 1 + ((cfg.inner_steps - 1) // k if k else 0)


def draw_meta_batches(real: Split, n: int, size: int, gen: torch.Generator) -> list[tuple[Tensor, Tensor]]:
    idx = torch.randint(len(real), (n, size), generator=gen).to(real.x.device)
    return [(real.x[i], real.y[i]) for i in idx]
