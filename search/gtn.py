"""Generative Teaching Networks (Such et al. 2019, arXiv 1912.07768): the teacher and its curricula.

A :class:`Teacher` owns everything that is meta-learned: the generator (as in uber-research/GTN),
the curriculum (one learned noise tensor per inner step, ``T x B x noise_dim``), optional soft
labels, and a learning rate and momentum per inner step (log-parameterised). Five curricula:

- ``full`` (default): learned noise, used in fixed order, with fixed balanced labels;
- ``shuffled_batches``: the same learned batches, drawn in random order with replacement;
- ``none``: fresh noise (and random labels) every step, no curriculum;
- ``real``: real training batches with the meta-learned optimiser (a baseline);
- ``pixels``: the images themselves are learned, as in dataset distillation (a baseline); they start
  as noise or, with ``pixels_init: real``, as real images of their labels (as dataset condensation
  methods start), so meta-training begins from real data's few-step accuracy instead of chance.

The generator can start warm the same way (``generator_init: real``, :meth:`Teacher.fit_generator_to`).

The functional inner loop lives in :mod:`search.inner_loop`, the outer loop in :mod:`search.outer_loop`,
its checkpoints in :mod:`search.teacher_files`, and scoring with a frozen curriculum in
:mod:`search.curriculum`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import GTNConfig
from .data import Split
from .errors import InputError
from .nets import WNConv2d, WNLinear, weight_norm_init


class Generator(nn.Module):
    """noise + one-hot label -> image in normalised-data space (official GTN generator).

    WN-linear 1024 -> BN -> LeakyReLU(0.1) -> WN-linear 128 x H/4 x W/4 -> BN -> LeakyReLU, then two
    blocks of 2x nearest upsampling, reflection padding and a WN 3x3 conv (128 -> 64 with BN and
    LeakyReLU, then 64 -> C), and ``2 * tanh``. BatchNorm always uses the batch's own statistics.
    """

    def __init__(
        self, noise_dim: int, num_classes: int, shape: tuple[int, int, int], generator: torch.Generator | None = None
    ):
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise InputError(
                f"gtn.curriculum: the generator needs image sides divisible by 4, the data's are {h}x{w} "
                "(set data.image_size to a multiple of 4, or gtn.curriculum: pixels)"
            )
        self.num_classes, self.hw = num_classes, (h // 4, w // 4)
        self.fc = nn.Sequential(
            WNLinear(noise_dim + num_classes, 1024, bias=False),
            nn.BatchNorm1d(1024, track_running_stats=False),
            nn.LeakyReLU(0.1),
            WNLinear(1024, 128 * (h // 4) * (w // 4), bias=False),
            nn.BatchNorm1d(128 * (h // 4) * (w // 4), track_running_stats=False),
            nn.LeakyReLU(0.1),
        )
        self.deconv = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReflectionPad2d(1),
            WNConv2d(128, 64, 3),
            nn.BatchNorm2d(64, track_running_stats=False),
            nn.LeakyReLU(0.1),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.ReflectionPad2d(1),
            WNConv2d(64, c, 3, bias=True),
        )
        self.reset_parameters(generator if generator is not None else torch.Generator().manual_seed(0))

    @torch.no_grad()
    def reset_parameters(self, g: torch.Generator) -> None:
        """He-normal directions with g = ||v|| (so the first effective weights are He-normal)."""
        for m in self.modules():
            if isinstance(m, (WNConv2d, WNLinear)):
                weight_norm_init(m, g)

    def forward(self, noise: Tensor, labels: Tensor) -> Tensor:
        onehot = F.one_hot(labels, self.num_classes).to(noise.dtype)
        h = self.fc(torch.cat([noise, onehot], dim=1)).view(-1, 128, *self.hw)
        return 2.0 * torch.tanh(self.deconv(h))


@dataclass
class StepInput:
    """What one inner step consumes; fixed before the unroll so a recomputation gives the same batch."""

    index: int  # which learned batch (curriculum row) to use, or -1
    noise: Tensor | None = None  # `none`: fresh noise
    labels: Tensor | None = None  # `none`/`real`: labels of this batch
    images: Tensor | None = None  # `real`: real images


class Teacher(nn.Module):
    """The meta-learned part: generator, curriculum, (soft) labels, per-step lr and momentum."""

    labels: Tensor  # buffer: T x B class of each curriculum slot

    def __init__(
        self,
        cfg: GTNConfig,
        shape: tuple[int, int, int],
        num_classes: int = 10,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        t, b = cfg.inner_steps, cfg.inner_batch
        c, h, w = shape
        self.cfg, self.shape, self.num_classes = cfg, (c, h, w), num_classes
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        self.generator = Generator(cfg.noise_dim, num_classes, self.shape, g) if cfg.curriculum != "pixels" else None
        if cfg.curriculum in ("full", "shuffled_batches"):
            self.curriculum = nn.Parameter(torch.randn(t, b, cfg.noise_dim, generator=g))
        if cfg.curriculum == "pixels":
            self.pixels = nn.Parameter(torch.randn(t, b, *self.shape, generator=g))
        self.register_buffer("labels", (torch.arange(t * b) % num_classes).view(t, b))
        if cfg.soft_labels:
            self.soft_labels = nn.Parameter(F.one_hot(self.labels, num_classes).float())
        self.log_lr = nn.Parameter(torch.full((t,), math.log(cfg.init_lr + 1e-6)))
        self.log_momentum = nn.Parameter(torch.full((t,), math.log(cfg.init_momentum + 1e-6)))

    @property
    def steps(self) -> int:
        return self.cfg.inner_steps

    def _real_picks(self, real: Split, gen: torch.Generator) -> Tensor:
        """A random real training image of each curriculum slot's label, as a T x B x C x H x W tensor."""
        labels, ys = self.labels.flatten().cpu(), real.y.cpu()
        picks = torch.empty_like(labels)
        for c in range(self.num_classes):
            pool, where = (ys == c).nonzero().flatten(), (labels == c).nonzero().flatten()
            if len(where) and not len(pool):
                raise InputError(f"gtn: init from real images: no training image of class {c}")
            if len(where):
                picks[where] = pool[torch.randint(len(pool), (len(where),), generator=gen)]
        return real.x[picks.to(real.x.device)].reshape(*self.labels.shape, *self.shape)

    @torch.no_grad()
    def init_pixels_from(self, real: Split, gen: torch.Generator) -> None:
        """Set every learned image to a random real image of its label (``pixels_init: real``)."""
        if self.cfg.curriculum != "pixels":
            raise ValueError("pixels_init: real needs curriculum: pixels")
        self.pixels.copy_(self._real_picks(real, gen))

    def fit_generator_to(self, real: Split, gen: torch.Generator, steps: int, lr: float = 1e-3) -> float:
        """Warm start (``generator_init: real``): fit generator and curriculum noise to real images.

        Each slot of the curriculum gets a random real image of its label; Adam then minimises the
        squared error between the generated batch of one random inner step and its images (jointly
        over generator weights and latent codes, as in GLO, Bojanowski et al. 2018). Meta-training then
        starts from images that look like the data instead of from noise, which is what makes learned
        images (``pixels_init: real``) rank cells after a few CPU minutes. Returns the last step's MSE.
        Targets brighter than the generator's ``2 tanh`` range (normalised MNIST strokes reach 2.8)
        are fitted as far as it goes: those output pixels saturate.
        """
        if self.cfg.curriculum not in ("full", "shuffled_batches"):
            raise ValueError("generator_init: real needs a learned curriculum (full or shuffled_batches)")
        target = self._real_picks(real, gen).to(self.labels.device)
        opt = torch.optim.Adam(list(self._generator().parameters()) + [self.curriculum], lr=lr)
        loss = torch.tensor(float("nan"))
        for _ in range(steps):
            i = int(torch.randint(self.steps, (1,), generator=gen))
            loss = F.mse_loss(self._generator()(self.curriculum[i], self.labels[i]), target[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    def _generator(self) -> Generator:
        if self.generator is None:  # curriculum "pixels" learns images directly
            raise ValueError(f"curriculum {self.cfg.curriculum!r} has no generator")
        return self.generator

    def lr(self) -> Tensor:
        return self.log_lr.exp()

    def momentum(self) -> Tensor:
        return self.log_momentum.exp()

    def plan(self, gen: torch.Generator, real: Split | None = None) -> list[StepInput]:
        """The T step inputs of one unroll (random parts drawn from ``gen`` now, not later)."""
        t, b, mode = self.cfg.inner_steps, self.cfg.inner_batch, self.cfg.curriculum
        if mode in ("full", "pixels"):
            return [StepInput(i) for i in range(t)]
        if mode == "shuffled_batches":
            return [StepInput(int(i)) for i in torch.randint(t, (t,), generator=gen)]
        if mode == "none":
            return [
                StepInput(
                    -1,
                    torch.randn(b, self.cfg.noise_dim, generator=gen),
                    torch.randint(self.num_classes, (b,), generator=gen),
                )
                for _ in range(t)
            ]
        if real is None:
            raise ValueError("the 'real' curriculum needs real training data")
        idx = torch.randint(len(real), (t, b), generator=gen)
        return [StepInput(-1, labels=real.y[i], images=real.x[i]) for i in idx.to(real.x.device)]

    def batch(self, step: StepInput) -> tuple[Tensor, Tensor]:
        """Images and target distributions (B x K) for one inner step."""
        device = self.log_lr.device
        if step.images is not None:
            assert step.labels is not None  # a real batch carries its labels
            return step.images, F.one_hot(step.labels, self.num_classes).float()
        if step.noise is not None:
            assert step.labels is not None  # so does fresh noise
            x = self._generator()(step.noise.to(device), step.labels.to(device))
            return x, F.one_hot(step.labels.to(device), self.num_classes).float()
        labels = self.labels[step.index]
        if self.cfg.curriculum == "pixels":
            x = self.pixels[step.index]
        else:
            x = self._generator()(self.curriculum[step.index], labels)
        if self.cfg.soft_labels:
            return x, self.soft_labels[step.index]
        return x, F.one_hot(labels, self.num_classes).float()


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy against target distributions (hard labels as one-hot), as in the GTN code."""
    return -(F.log_softmax(logits, dim=1) * target).sum(dim=1).mean()
