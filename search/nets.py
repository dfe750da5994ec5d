"""NAS-Bench-201 networks, built from an :class:`~search.space.Arch`.

Macro skeleton as in NAS-Bench-201: a 3x3 stem conv + norm, three stages of N cells at C, 2C and 4C
channels, a residual reduction block between stages, norm + ReLU, global pooling and a linear
classifier. Three normalisations: ``bn`` (standard BatchNorm, NAS-Bench-201), ``gtn`` (the GTN paper's
learners: weight-normalised convs and linear layers, mean-only BatchNorm) and ``gtn_bn`` (weight
normalisation with full BatchNorm on the latest batch, as the official code's NAS cells).

Every model runs under ``torch.func.functional_call``; :func:`functional_forward` also returns the
updated BatchNorm statistics out-of-place so the GTN inner loop can keep them differentiable.
Building a model has no side effects on global RNG state: weights come from an explicit generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from .shapes import Inputs, NetSettings
from .space import EDGES, NUM_NODES, Arch

NORMS = ("bn", "gtn", "gtn_bn")


class Norm2d(nn.Module):
    """BatchNorm over all dims but channels (or mean-only), reporting new running stats out-of-place.

    ``momentum`` follows PyTorch: ``running = (1 - momentum) * running + momentum * batch``.
    When ``collect`` is set (by :func:`functional_forward`), training-mode calls stash the new
    statistics as tensors still attached to the graph instead of updating buffers in place.
    """

    running_mean: Tensor  # buffers
    running_var: Tensor

    def __init__(self, channels: int, mean_only: bool = False, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.mean_only, self.momentum, self.eps = mean_only, momentum, eps
        self.weight = None if mean_only else nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.collect = False
        self.new_stats: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        m = self.momentum
        if not self.training:
            shape = (-1,) + (1,) * (x.dim() - 2)
            if self.mean_only:
                return x - self.running_mean.view(shape) + self.bias.view(shape)
            if self.running_mean.requires_grad or self.running_var.requires_grad:  # GTN meta-loss
                assert self.weight is not None  # not mean-only
                scale = torch.rsqrt(self.running_var + self.eps) * self.weight
                return (x - self.running_mean.view(shape)) * scale.view(shape) + self.bias.view(shape)
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        if not self.collect and not self.mean_only:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, True, m, self.eps)
        dims = (0, *range(2, x.dim()))
        shape = (-1,) + (1,) * (x.dim() - 2)  # broadcast per channel
        mean = x.mean(dim=dims)
        centred = x - mean.view(shape)
        if self.mean_only:
            y = centred + self.bias.view(shape)
            var = self.running_var
        else:
            assert self.weight is not None  # not mean-only
            var = centred.pow(2).mean(dim=dims)
            y = centred * torch.rsqrt(var + self.eps).view(shape) * self.weight.view(shape) + self.bias.view(shape)
            n = x.numel() / x.shape[1]
            var = var * (n / max(n - 1, 1))  # running stats keep the unbiased variance, as PyTorch does
        new_mean = (1 - m) * self.running_mean + m * mean
        new_var = (1 - m) * self.running_var + m * var
        if self.collect:
            self.new_stats = (new_mean, new_var)
        else:
            with torch.no_grad():
                self.running_mean.copy_(new_mean)
                self.running_var.copy_(new_var)
        return y


class WNConv2d(nn.Module):
    """Conv2d with weight normalisation: ``w = g * v / ||v||`` per output channel (Salimans & Kingma)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0, bias: bool = False):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight_v = nn.Parameter(torch.empty(c_out, c_in, k, k))
        self.weight_g = nn.Parameter(torch.ones(c_out, 1, 1, 1))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight_g * self.weight_v * torch.rsqrt(self.weight_v.pow(2).sum(dim=(1, 2, 3), keepdim=True))
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class WNLinear(nn.Module):
    def __init__(self, c_in: int, c_out: int, bias: bool = True):
        super().__init__()
        self.weight_v = nn.Parameter(torch.empty(c_out, c_in))
        self.weight_g = nn.Parameter(torch.ones(c_out, 1))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight_g * self.weight_v * torch.rsqrt(self.weight_v.pow(2).sum(dim=1, keepdim=True))
        return F.linear(x, w, self.bias)


@dataclass(frozen=True)
class NormSpec:
    """How a network normalises: which conv, which linear, which norm."""

    kind: str  # one of NORMS

    def conv(self, c_in: int, c_out: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
        if self.kind != "bn":
            return WNConv2d(c_in, c_out, k, stride, padding)
        return nn.Conv2d(c_in, c_out, k, stride, padding, bias=False)

    def linear(self, c_in: int, c_out: int) -> nn.Module:
        return nn.Linear(c_in, c_out) if self.kind == "bn" else WNLinear(c_in, c_out)

    def norm(self, c: int) -> nn.Module:
        # GTN learners keep the latest batch's statistics (the official code's momentum 0).
        if self.kind == "gtn":
            return Norm2d(c, mean_only=True, momentum=1.0)
        return Norm2d(c, momentum=1.0) if self.kind == "gtn_bn" else Norm2d(c)


class AvgPool3x3(nn.Module):
    """``nn.AvgPool2d(3, 1, 1, count_include_pad=False)`` as a depthwise convolution divided by the count.

    Same values (to float rounding) and no state, but 2-10x faster on CPU, where PyTorch's average
    pooling is a large share of a small NB201 network's step (45% in one profile).
    """

    def forward(self, x: Tensor) -> Tensor:
        c, h, w = x.shape[1:]
        total = F.conv2d(x, x.new_ones(c, 1, 3, 3), padding=1, groups=c)
        rows, cols = x.new_full((h,), 3.0), x.new_full((w,), 3.0)
        rows[0] -= 1
        rows[-1] -= 1
        cols[0] -= 1
        cols[-1] -= 1
        return total / (rows[:, None] * cols[None, :])


class ReLUConvBN(nn.Sequential):
    def __init__(self, ns: NormSpec, c_in: int, c_out: int, k: int, stride: int = 1):
        super().__init__(nn.ReLU(), ns.conv(c_in, c_out, k, stride, (k - 1) // 2), ns.norm(c_out))


def make_op(name: str, ns: NormSpec, c: int) -> nn.Module | None:
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(ns, c, c, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(ns, c, c, 3)
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    raise ValueError(f"unknown operation {name!r}")


class Cell(nn.Module):
    """node_j = sum over i < j of op_ji(node_i); the output is node 3. ``none`` edges are skipped."""

    def __init__(self, arch: Arch, ns: NormSpec, c: int):
        super().__init__()
        self.edges = nn.ModuleDict()
        for (j, i), name in zip(EDGES, arch.ops, strict=True):
            op = make_op(name, ns, c)
            if op is not None:
                self.edges[f"{j}_{i}"] = op

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        for j in range(1, NUM_NODES):
            terms = [self.edges[f"{j}_{i}"](nodes[i]) for i in range(j) if f"{j}_{i}" in self.edges]
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[-1]


class ResBlock(nn.Module):
    """NAS-Bench-201's reduction block: two ReLU-Conv-Norms (stride 2) plus an avg-pool + 1x1 shortcut."""

    def __init__(self, ns: NormSpec, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(ns, c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(ns, c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), ns.conv(c_in, c_out, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class Network(nn.Module):
    def __init__(
        self,
        arch: Arch,
        channels: int = 16,
        cells: int = 5,
        in_channels: int = 3,
        image_size: int | tuple[int, int] = 32,
        num_classes: int = 10,
        norm: str = "bn",
    ):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
        h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.arch, self.input_shape = arch, (in_channels, h, w)  # what one image is: the input it takes
        ns = NormSpec(norm)
        c = channels
        self.stem = nn.Sequential(ns.conv(in_channels, c, 3, 1, 1), ns.norm(c))
        layers: list[nn.Module] = []
        for stage, width in enumerate((c, 2 * c, 4 * c)):
            if stage > 0:
                layers.append(ResBlock(ns, width // 2, width))
            layers.extend(Cell(arch, ns, width) for _ in range(cells))
        self.layers = nn.Sequential(*layers)
        self.last = nn.Sequential(ns.norm(4 * c), nn.ReLU())
        self.classifier = ns.linear(4 * c, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.last(self.layers(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))


class PaperLearner(nn.Module):
    """The GTN paper's MNIST learner ("base_fc"): two WN convs with max-pooling, a WN hidden layer.

    conv3x3(64) -> maxpool -> mean-only BN -> LeakyReLU(0.1) -> conv3x3(128) -> maxpool -> BN ->
    LeakyReLU -> linear(256) -> BN -> LeakyReLU -> linear(classes). Used by ``gtn.learner: fixed``.
    """

    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, width: int = 64):
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        ns, act = NormSpec("gtn"), nn.LeakyReLU(0.1)
        side = (image_size + 1) // 2
        side = (side + 1) // 2
        self.features = nn.Sequential(
            ns.conv(in_channels, width, 3, 1, 1),
            nn.MaxPool2d(3, 2, 1),
            ns.norm(width),
            act,
            ns.conv(width, 2 * width, 3, 1, 1),
            nn.MaxPool2d(3, 2, 1),
            ns.norm(2 * width),
            act,
        )
        self.head = nn.Sequential(
            ns.linear(2 * width * side * side, 4 * width), ns.norm(4 * width), act, ns.linear(4 * width, num_classes)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


@torch.no_grad()
def weight_norm_init(m: WNConv2d | WNLinear, generator: torch.Generator) -> None:
    """He-normal directions with g = ||v||, so the first effective weights are He-normal; zero bias."""
    nn.init.kaiming_normal_(m.weight_v, nonlinearity="relu", generator=generator)
    m.weight_g.copy_(m.weight_v.pow(2).sum(dim=tuple(range(1, m.weight_v.dim())), keepdim=True).sqrt())
    if m.bias is not None:
        m.bias.zero_()


def init_weights(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Deterministic He initialisation from ``generator``; norms start as the identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (WNConv2d, WNLinear)):
                weight_norm_init(m, generator)
            elif isinstance(m, Norm2d):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
    return model


def build_net(
    arch: Arch,
    *,
    channels: int = 16,
    cells: int = 5,
    in_channels: int = 3,
    image_size: int | tuple[int, int] = 32,
    num_classes: int = 10,
    norm: str = "bn",
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Network:
    """A freshly initialised network; the same arguments always give the same weights."""
    with torch.random.fork_rng(devices=[]):  # module constructors draw from the global RNG
        net = Network(arch, channels, cells, in_channels, image_size, num_classes, norm)
    init_weights(net, torch.Generator().manual_seed(seed))
    return net.to(device)


def net_from(
    arch: Arch, net: NetSettings, inputs: Inputs, *, seed: int = 0, device: str | torch.device = "cpu"
) -> Network:
    """The one way a configured network is built: ``arch`` at ``net``'s settings, for ``inputs``' images and
    classes (searched networks, learners, proxies, retraining and export all come through here)."""
    c, h, w = inputs.shape
    return build_net(
        arch,
        channels=net.channels,
        cells=net.cells,
        in_channels=c,
        image_size=(h, w),
        num_classes=inputs.num_classes,
        norm=net.norm,
        seed=seed,
        device=device,
    )


def functional_forward(
    model: nn.Module, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor
) -> tuple[Tensor, dict[str, Tensor]]:
    """Run ``model`` with the given state; return logits and the new buffers (out-of-place).

    In training mode the new running statistics stay attached to the autograd graph, so the GTN
    meta-gradient flows through them as in the official code.
    """
    norms = [(n, m) for n, m in model.named_modules() if isinstance(m, Norm2d)]
    for _, m in norms:
        m.collect, m.new_stats = True, None
    try:
        out = functional_call(model, (params, buffers), (x,), strict=False)
    finally:
        new_buffers = dict(buffers)
        for name, m in norms:
            if m.new_stats is not None:
                prefix = f"{name}." if name else ""
                new_buffers[prefix + "running_mean"], new_buffers[prefix + "running_var"] = m.new_stats
            m.collect, m.new_stats = False, None
    return out, new_buffers


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: Network) -> int:
    """Multiply-accumulates of convs and linear layers for one image (NB201 reports these as FLOPs)."""
    total = 0

    def conv_hook(mod: nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        assert isinstance(mod, (nn.Conv2d, WNConv2d))  # registered on these only
        w = mod.weight if isinstance(mod, nn.Conv2d) else mod.weight_v
        total += out[0].numel() * w[0].numel()

    def linear_hook(mod: nn.Module, inp: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        assert isinstance(mod, (nn.Linear, WNLinear))  # registered on these only
        w = mod.weight if isinstance(mod, nn.Linear) else mod.weight_v
        total += w.numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, WNConv2d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, (nn.Linear, WNLinear)):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *model.input_shape, device=p.device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def arch_cost(arch: Arch, net: NetSettings, inputs: Inputs) -> tuple[int, int]:
    """(parameters, FLOPs) of ``arch`` at ``net``'s settings for ``inputs``."""
    model = net_from(arch, net, inputs)
    return count_params(model), count_flops(model)
