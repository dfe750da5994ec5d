import gzip
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from search import data


def test_fashion_mnist_splits(data_dir):
    t = time.perf_counter()
    ds = data.load_dataset("fashion_mnist", data_dir)
    took = time.perf_counter() - t
    assert (len(ds.train), len(ds.val), len(ds.test)) == (50_000, 10_000, 10_000)
    assert ds.shape == (1, 28, 28) and ds.train.x.dtype == torch.float32 and ds.train.y.dtype == torch.int64
    # normalised with the training-set statistics
    assert abs(ds.train.x.mean().item()) < 0.02 and abs(ds.train.x.std().item() - 1) < 0.02
    assert torch.bincount(ds.test.y).tolist() == [1000] * 10
    assert took < 3.0, f"loading Fashion-MNIST took {took:.2f}s"


def test_split_is_seeded_and_disjoint(data_dir):
    a = data.load_dataset("mnist", data_dir, split_seed=1)
    b = data.load_dataset("mnist", data_dir, split_seed=1)
    c = data.load_dataset("mnist", data_dir, split_seed=2)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.val.y, b.val.y)
    assert not torch.equal(a.val.y, c.val.y)
    # train and validation come from the same 60k without overlap: their union is the full set
    total = a.train.x.sum(dim=(1, 2, 3)).double().sum() + a.val.x.sum(dim=(1, 2, 3)).double().sum()
    total_c = c.train.x.sum(dim=(1, 2, 3)).double().sum() + c.val.x.sum(dim=(1, 2, 3)).double().sum()
    assert torch.allclose(total, total_c)
    sub = data.load_dataset("mnist", data_dir, split_seed=1, train_subset=100, val_subset=50)
    assert len(sub.train) == 100 and len(sub.val) == 50 and torch.equal(sub.val.x, a.val.x[:50])


def _write_idx(path, arr, compress):
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    blob = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(blob)
    else:
        path.write_bytes(blob)


def test_idx_reader_plain_and_gzipped(tmp_path):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "a", arr, False)
    _write_idx(tmp_path / "a.gz", arr, True)
    assert np.array_equal(data.read_idx(tmp_path / "a"), arr)
    assert np.array_equal(data.read_idx(tmp_path / "a.gz"), arr)
    (tmp_path / "t").write_bytes((tmp_path / "a").read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(tmp_path / "t")
    (tmp_path / "f").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="not an unsigned-byte IDX"):
        data.read_idx(tmp_path / "f")


def test_uncompressed_layout_is_found(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for stem, n in [("train", 20_000), ("t10k", 30)]:
        _write_idx(raw / f"{stem}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)), False)
        _write_idx(raw / f"{stem}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), False)
    ds = data.load_dataset("mnist", tmp_path)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (10_000, 10_000, 30)


def test_debian_folder_works_as_the_root(data_dir, monkeypatch):
    # search.fetch returns /usr/share/datasets/fashion-mnist as the root to load Fashion-MNIST from;
    # it holds the files themselves, which is accepted for that folder and that data set only
    flat = data_dir / "FashionMNIST" / "raw"
    monkeypatch.setattr(data, "DEBIAN_FASHION", flat)
    data.check_available("fashion_mnist", flat)
    tx, ty, ex, ey = data._load_raw("fashion_mnist", str(flat))
    assert (len(tx), len(ex)) == (60_000, 10_000) and tx.shape[1:] == (1, 28, 28)
    with pytest.raises(data.DataNotFoundError, match="mnist not found"):
        data.check_available("mnist", flat)  # same file names, but not MNIST: never read as such


def test_missing_data_names_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("GTNNAS_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nor in the user's cache
    with pytest.raises(data.DataNotFoundError) as e:
        data.load_dataset("fashion_mnist")
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "FashionMNIST" / "raw") in msg
    assert str(tmp_path / "cache" / "gtnnas" / "data" / "FashionMNIST" / "raw") in msg
    assert "/usr/share/datasets/fashion-mnist" in msg and "gtnnas data fetch fashion_mnist" in msg
    assert "package registries" in msg
    assert "\n" not in msg
    with pytest.raises(data.DataNotFoundError, match="cifar10 not found"):
        data.load_dataset("cifar10")
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_dataset("svhn")


def test_finding_data_does_not_import_torch():
    # `gtnnas data fetch` and check_available stay fast: torch only comes with tensors
    code = (
        "import sys, search.data, search.fetch; assert 'torch' not in sys.modules, 'torch imported'; "
        "search.data.check_available('fashion_mnist'); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_search_package_never_imports_ray():
    code = (
        "import sys, search, search.config, search.data, search.space, search.nets, search.train; "
        "import importlib, pkgutil; [importlib.import_module('search.' + m.name) "
        "for m in pkgutil.iter_modules(search.__path__)]; assert 'ray' not in sys.modules, 'ray imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
