"""A teacher trained to rank (ours; the GTN paper optimises how well a learner is taught, not ranking).

Each outer step unrolls ``gtn.learners_per_step`` learners drawn from a *rank pool*: cells whose
real-data quality was measured once on the training split (:func:`pool_target`, run over the cells of
:func:`sample_pool_cells` by ``benchmarks/rank_pool.py``: ``steps`` SGD steps on
most of the training split, accuracy on a held-out slice of it; never the validation split, and never
cells of a truth table's evaluation split). Besides the paper's meta-loss (mean over the learners),
a pairwise logistic term asks the learners' post-curriculum losses on one shared real batch to order
the way the pool's targets do. The gradient of that term flows through every learner's unroll.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import ExperimentConfig
from .data import Dataset, Split
from .errors import InputError, first_line
from .gtn import Teacher
from .inner_loop import draw_meta_batches, eval_loss, learner_seed, meta_batch_count, unroll_as
from .nets import net_from
from .space import Arch, parse, sample
from .train import train

HELD_OUT = 5_000  # training images the pool's targets are measured on (the rest are trained on)


@dataclass(frozen=True)
class Pool:
    archs: tuple[Arch, ...]
    targets: np.ndarray  # real-data accuracy on the held-out slice of the training split


def pairwise_rank_loss(scores: Tensor, targets: Tensor, tau: float) -> Tensor:
    """Mean logistic loss over pairs whose targets differ: score order should follow target order."""
    first, second = zip(*itertools.combinations(range(len(scores)), 2), strict=True)
    i, j = torch.tensor(first), torch.tensor(second)
    sign = torch.sign(targets[i] - targets[j])
    keep = sign != 0
    if not keep.any():
        return scores.sum() * 0.0
    return F.softplus(-sign[keep] * (scores[i] - scores[j])[keep] / tau).mean()


def ranking_gradient(
    teacher: Teacher,
    cfg: ExperimentConfig,
    data: Dataset,
    pool: Pool,
    rng: np.random.Generator,
    gen: torch.Generator,
    it: int,
) -> tuple[float, float, str, float]:
    """Set the teacher's .grad to the paper's meta-loss plus ``rank_weight`` x the pairwise term.

    Returns (meta-loss, mean learner accuracy, the learners, share of pairs ordered right).
    """
    g = cfg.gtn
    teacher.zero_grad(set_to_none=True)
    picks = rng.choice(len(pool.archs), size=g.learners_per_step, replace=False)
    batches = draw_meta_batches(data.train, meta_batch_count(g), g.meta_batch, gen)  # shared: a fair comparison
    ((rx, ry),) = draw_meta_batches(data.train, 1, g.rank_batch, gen)
    losses, scores, accs = [], [], []
    for j, k in enumerate(picks):
        learner = net_from(
            pool.archs[k], g.learner_net, data, seed=learner_seed(g.seed, it, j), device=data.train.x.device
        )
        res = unroll_as(g, learner, teacher, teacher.plan(gen, data.train), batches)
        losses.append(res.meta_loss)
        scores.append(-eval_loss(learner, res.state, rx, ry, g.eval_bn)[0])
        accs.append(res.final_acc)
    s, t = torch.stack(scores), torch.as_tensor(pool.targets[picks], dtype=torch.float32, device=scores[0].device)
    paper = torch.stack(losses).mean()
    rank = pairwise_rank_loss(s, t, g.rank_tau)
    total = paper + g.rank_weight * rank
    value = float(total.detach())
    if not math.isfinite(value):
        raise ArithmeticError(f"meta-loss is {value} at outer step {it}")
    total.backward()
    pairs = [(a, b) for a, b in itertools.combinations(range(len(picks)), 2) if t[a] != t[b]]
    right = np.mean([float((s[a] - s[b]) * (t[a] - t[b]) > 0) for a, b in pairs]) if pairs else float("nan")
    names = " ".join(str(pool.archs[k]) for k in picks)
    return float(paper.detach()), float(np.mean(accs)), names, float(right)


# --------------------------------------------------------------------------- the pool


def held_out_split(data: Dataset) -> tuple[Split, Split]:
    """(trained on, measured on): the training split without and with its last HELD_OUT images."""
    n = len(data.train) - HELD_OUT
    if n < 1:
        raise InputError(f"the rank pool needs more than {HELD_OUT} training images, got {len(data.train)}")
    return Split(data.train.x[:n], data.train.y[:n]), Split(data.train.x[n:], data.train.y[n:])


def sample_pool_cells(n: int, seed: int, exclude: Iterable[str] = ()) -> list[Arch]:
    """``n`` cells of distinct classes whose output depends on the input, none equivalent to ``exclude``."""
    rng = np.random.default_rng(seed)
    seen = {parse(a).equiv_hash() for a in exclude} | {Arch(("none",) * 6).equiv_hash()}
    out: list[Arch] = []
    while len(out) < n:
        a = sample(rng)
        h = a.equiv_hash()
        if h not in seen and a.canonical() != str(Arch(("none",) * 6)):
            seen.add(h)
            out.append(a)
    return out


def pool_target(arch: Arch, cfg: ExperimentConfig, data: Dataset, steps: int, seed: int = 0) -> float:
    """Accuracy on the training split's held-out slice after ``steps`` real-data SGD steps on the rest."""
    fit, held = held_out_split(data)
    model = net_from(arch, cfg.net, data, seed=seed, device=data.train.x.device)
    return train(model, fit, replace(cfg.train, steps=steps), seed=seed, val=held).val_acc


def load_pool(path: str | Path | None) -> Pool:
    """A rank pool written by ``benchmarks/rank_pool.py`` (columns arch, target)."""
    if path is None:
        raise InputError("gtn.rank_pool: not set (a ranking teacher, gtn.rank_weight > 0, needs one)")
    try:
        t = pq.read_table(path, columns=["arch", "target"]).to_pydict()
    except (OSError, pa.ArrowException, KeyError) as e:  # missing, unreadable, wrong columns
        raise InputError(f"gtn.rank_pool: cannot read {path} ({first_line(e, 120)})") from None
    if len(t["arch"]) < 2:
        raise InputError(f"gtn.rank_pool: {path} holds fewer than 2 cells")
    return Pool(tuple(parse(a) for a in t["arch"]), np.asarray(t["target"], float))
