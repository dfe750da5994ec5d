import torch

from search.config import NetConfig, TrainConfig
from search.nets import build_net
from search.space import parse
from search.train import train, train_arch

CONV = parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
NONE = parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_real_data_one_epoch(fashion):
    """An NB201 net (C=8, N=1) with 3x3 convs learns Fashion-MNIST; the all-`none` cell cannot."""
    torch.set_num_threads(2)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.2)
    good = train_arch(CONV, fashion, NetConfig(channels=8, cells=1), cfg, seed=0, with_test=False)
    bad = train_arch(NONE, fashion, NetConfig(channels=8, cells=1), cfg, seed=0, with_test=False)
    assert good["steps"] == 313 and len(fashion.train) == 10_000
    assert good["val_acc"] >= 0.80, good
    assert bad["val_acc"] <= 0.15, bad


def test_training_is_deterministic(fashion):
    cfg = TrainConfig(steps=6, batch_size=16, lr=0.1)
    small = fashion.train.head(200)
    results, states = [], []
    for _ in range(2):
        net = build_net(CONV, channels=4, cells=1, in_channels=1, image_size=28, seed=3)
        results.append(train(net, small, cfg, seed=5, val=fashion.val.head(100)))
        states.append(net.state_dict())
    assert results[0].val_acc == results[1].val_acc and results[0].train_loss == results[1].train_loss
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    net = build_net(CONV, channels=4, cells=1, in_channels=1, image_size=28, seed=3)
    other = train(net, small, cfg, seed=6, val=fashion.val.head(100))
    assert other.train_loss != results[0].train_loss
