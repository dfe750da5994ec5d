"""The built-in data sets (names, folders, shapes, statistics, class names, validation sizes) and where data
directories are: what the config, the fetcher, the data loader and a source's cache all agree on. Free of
torch and of everything that reads data, so each of those can import it without importing the others.
"""

from __future__ import annotations

import os
from pathlib import Path

DATASETS = ("mnist", "fashion_mnist", "cifar10")
FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "cifar-10-batches-py"}
STATS = {  # per-channel mean and std of the training images in [0, 1]
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}  # C, H, W
VAL_SIZE = {"mnist": 10_000, "fashion_mnist": 10_000, "cifar10": 5_000}
CLASSES = {
    "mnist": tuple("0123456789"),
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


def default_roots() -> list[Path]:
    """Where data is looked for, in order: $GTNNAS_DATA_DIR, then ~/.cache/gtnnas/data."""
    roots = []
    if os.environ.get("GTNNAS_DATA_DIR"):
        roots.append(Path(os.environ["GTNNAS_DATA_DIR"]))
    roots.append(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gtnnas" / "data")
    return roots
