import pytest
import torch
from torch import nn
from torch.func import functional_call

from search.nets import AvgPool3x3, Norm2d, build_net, count_flops, count_params, functional_forward
from search.space import parse

CONV = parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|")
NONE = parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")


@pytest.mark.parametrize("norm", ["bn", "gtn"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_forward_shapes(norm, shape):
    net = build_net(CONV, channels=4, cells=2, in_channels=shape[0], image_size=shape[1], num_classes=7, norm=norm)
    out = net(torch.randn(5, *shape))
    assert out.shape == (5, 7) and torch.isfinite(out).all()


def test_build_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_net(CONV, channels=4, cells=1, seed=1), build_net(CONV, channels=4, cells=1, seed=1)
    c = build_net(CONV, channels=4, cells=1, seed=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_flops_and_params_by_hand():
    c, h = 4, 28
    net = build_net(NONE, channels=c, cells=1, in_channels=1, image_size=h)
    flops = (
        h * h * c * 9  # stem
        + 14 * 14 * 2 * c * 9 * c
        + 14 * 14 * 2 * c * 9 * 2 * c
        + 14 * 14 * 2 * c * c  # reduction 1
        + 7 * 7 * 4 * c * 9 * 2 * c
        + 7 * 7 * 4 * c * 9 * 4 * c
        + 7 * 7 * 4 * c * 2 * c  # reduction 2
        + 4 * c * 10
    )  # classifier
    assert count_flops(net) == flops
    convs = 9 * c + (9 * c * 2 * c + 9 * 4 * c * c + 2 * c * c) + (9 * 2 * c * 4 * c + 9 * 16 * c * c + 8 * c * c)
    norms = 2 * (c + 2 * c + 2 * c + 4 * c + 4 * c + 4 * c)  # stem, 2 per reduction block, last
    assert count_params(net) == convs + norms + 4 * c * 10 + 10
    big = build_net(CONV, channels=c, cells=1, in_channels=1, image_size=h)
    assert count_flops(big) > flops and count_params(big) > count_params(net)


@pytest.mark.parametrize("norm", ["bn", "gtn"])
def test_functional_forward_matches_module_and_returns_new_stats(norm):
    net = build_net(CONV, channels=4, cells=1, in_channels=1, image_size=12, norm=norm)
    x = torch.randn(8, 1, 12, 12)
    params = {k: v.detach().clone() for k, v in net.named_parameters()}
    buffers = {k: v.detach().clone() for k, v in net.named_buffers()}
    out_f, new_buffers = functional_forward(net, params, buffers, x)
    # buffers passed in are not modified in place
    assert all(torch.equal(buffers[k], v) for k, v in net.named_buffers())
    out_m = net(x)  # updates the module's own buffers in place
    assert torch.allclose(out_f, out_m, atol=1e-5)
    for k, v in net.named_buffers():
        assert torch.allclose(new_buffers[k], v, atol=1e-5), k
    changed = [k for k in buffers if not torch.equal(buffers[k], new_buffers[k])]
    assert changed, "training-mode forward must produce new running statistics"
    net.eval()
    assert torch.allclose(functional_call(net, (params, new_buffers), (x,)), net(x), atol=1e-5)


def test_gtn_running_mean_is_differentiable():
    net = build_net(CONV, channels=4, cells=1, in_channels=1, image_size=12, norm="gtn")
    params = {k: v.detach().clone().requires_grad_() for k, v in net.named_parameters()}
    buffers = dict(net.named_buffers())
    _, new_buffers = functional_forward(net, params, buffers, torch.randn(8, 1, 12, 12))
    net.eval()
    loss = functional_call(net, (params, new_buffers), (torch.randn(4, 1, 12, 12),)).sum()
    stem_w = params["stem.0.weight_v"]
    g = torch.autograd.grad(new_buffers["stem.1.running_mean"].sum(), stem_w, retain_graph=True)[0]
    assert g.abs().sum() > 0
    assert torch.autograd.grad(loss, stem_w)[0].abs().sum() > 0


def test_mean_only_norm_tracks_last_batch():
    n = Norm2d(3, mean_only=True, momentum=1.0)
    x = torch.randn(4, 3, 5, 5) + 2
    y = n(x)
    assert torch.allclose(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(n.running_mean, x.mean(dim=(0, 2, 3)))
    assert n.weight is None and torch.allclose(y.std(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)), atol=1e-5)


@pytest.mark.parametrize("hw", [(28, 28), (7, 5), (2, 2), (1, 1), (1, 4)])
def test_avg_pool_as_depthwise_conv_equals_torchs_avg_pool(hw):
    """The fast 3x3 average pool gives nn.AvgPool2d's values and gradients (padding not counted)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, *hw, generator=g, dtype=torch.float64, requires_grad=True)
    ref = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)(x)
    out = AvgPool3x3()(x)
    torch.testing.assert_close(out, ref)
    w = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    (gr,) = torch.autograd.grad((ref * w).sum(), x)
    (go,) = torch.autograd.grad((out * w).sum(), x)
    torch.testing.assert_close(go, gr)
