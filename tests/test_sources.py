"""User data sources (folder:, parquet:, npz:): real images (scikit-learn's 1,797 handwritten digits, and
Fashion-MNIST's own files) written in each layout, decoded once into the cache, and every bad input refused
as one line that names the file or key, leaving nothing behind."""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from cluster.cli import main
from cluster.entry import node_dataset
from search import data, decode, prepared, sources
from search.config import DataConfig, load_config
from search.errors import ConfigError, DataError
from search.prepared import DataWarning, ensure
from search.sources import SourceSettings

SPLITS = ("train", "val", "test")


def _png(a: np.ndarray) -> bytes:
    b = io.BytesIO()
    Image.fromarray(a).save(b, "PNG")
    return b.getvalue()


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's digits as uint8 (0..16 scaled to 0..255); test = every 5th image."""
    from sklearn.datasets import load_digits  # noqa: PLC0415  (lazy: only this module needs scikit-learn)

    d = load_digits()
    x = np.round(d.images * 255 / 16).astype(np.uint8)
    return x, d.target.astype(np.int64), np.arange(len(x)) % 5 == 0


def _order(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A split's images in folder order: class by class, then by index (the files' names)."""
    idx = np.flatnonzero(mask)
    return idx[np.lexsort((idx, y[idx]))]


@pytest.fixture(scope="module")
def layouts(digits, tmp_path_factory):
    """The digits as a PNG folder (train/ and test/), a Hugging Face Parquet layout with string labels and
    {bytes, path} images, and train.npz/test.npz: {kind: location}."""
    x, y, test = digits
    base = tmp_path_factory.mktemp("digits")
    (base / "pq" / "data").mkdir(parents=True)
    (base / "npz").mkdir()
    for split, mask in (("train", ~test), ("test", test)):
        idx = _order(y, mask)
        for i in idx:
            p = base / "folder" / split / str(y[i]) / f"{i:04d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_png(x[i]))
        images = pa.array([{"bytes": _png(x[i]), "path": f"{i:04d}.png"} for i in idx])
        table = pa.table({"image": images, "label": [str(y[i]) for i in idx]})
        pq.write_table(table, base / "pq" / "data" / f"{split}-00000-of-00001.parquet", row_group_size=500)
        np.savez(base / "npz" / f"{split}.npz", x=x[idx], y=y[idx])
    (base / "folder" / ".DS_Store").write_bytes(b"hidden: ignored")
    return {"folder": base / "folder", "parquet": base / "pq", "npz": base / "npz"}


def _empty(root: Path) -> bool:
    cache = root / "prepared"
    return not cache.exists() or not any(cache.iterdir())


def test_three_layouts_load_to_the_same_pixels_classes_and_splits(layouts, digits, tmp_path):
    x, y, test = digits
    got = {}
    for kind, where in layouts.items():
        ds = data.load_dataset(f"{kind}:{where}", tmp_path, workers=1)
        prep = ensure(f"{kind}:{where}", tmp_path)
        assert prep.how == "found"
        got[kind] = (ds, {s: np.array(prep.arrays(s)[0]) for s in SPLITS}, prep.meta)
    ds, arrays, meta = got["folder"]
    n_test, n_train = int(test.sum()), int((~test).sum())
    assert (len(ds.train) + len(ds.val), len(ds.test)) == (n_train, n_test)
    assert ds.shape == (1, 8, 8) and ds.num_classes == 10 and ds.class_names == tuple("0123456789")
    assert ds.name == f"folder:{layouts['folder']}" and ds.fingerprint == meta["fingerprint"]
    # the test split is the source's, image for image; val is 10% of each class of train
    assert np.array_equal(arrays["test"][:, 0], x[_order(y, test)])
    train_counts = np.bincount(y[~test], minlength=10)
    assert meta["class_counts"]["val"] == [int(np.floor(0.1 * n + 0.5)) for n in train_counts]
    assert meta["splits"] == {"train": "source", "val": "fraction", "test": "source"}
    # train mean and std in [0, 1], as normalisation used them
    pixels = arrays["train"].astype(np.float64) / 255
    assert meta["mean"][0] == pytest.approx(pixels.mean(), abs=1e-6)
    assert meta["std"][0] == pytest.approx(pixels.std(), abs=1e-6)
    assert torch.allclose(
        ds.train.x, (torch.from_numpy(arrays["train"]) / 255 - pixels.mean()) / pixels.std(), atol=1e-5
    )
    for kind in ("parquet", "npz"):
        other, other_arrays, other_meta = got[kind]
        assert other.class_names == ds.class_names and other_meta["counts"] == meta["counts"]
        for s in SPLITS:
            assert np.array_equal(other_arrays[s], arrays[s]), (kind, s)
            assert torch.equal(getattr(other, s).y, getattr(ds, s).y)
        assert torch.equal(other.train.x, ds.train.x)


def test_the_cache_is_found_without_reading_then_rebuilt_when_an_image_changes(digits, tmp_path, monkeypatch):
    x, y, _ = digits
    src = tmp_path / "src"
    for i in range(60):
        (src / str(y[i])).mkdir(parents=True, exist_ok=True)
        (src / str(y[i]) / f"{i}.png").write_bytes(_png(x[i]))
    root = tmp_path / "root"
    first = ensure(f"folder:{src}", root, workers=1)
    assert first.how == "prepared" and sorted(p.name for p in (root / "prepared").iterdir()) == sorted(
        [first.folder.name, "index.json"]
    )

    def no_reading(*a, **k):
        raise AssertionError("the content was hashed again although no name, size or mtime changed")

    with monkeypatch.context() as m:
        m.setattr(prepared, "content_hash", no_reading)
        again = ensure(f"folder:{src}", root)
    assert again.how == "found" and again.folder == first.folder
    # an mtime alone changes: the content is read again, and the same cache is found
    os.utime(src / str(y[0]) / "0.png", (1, 1))
    assert ensure(f"folder:{src}", root).folder == first.folder
    # one pixel of one image changes: a new key, a new cache; the old one is never served
    changed = x[0].copy()
    changed[0, 0] ^= 0xFF
    (src / str(y[0]) / "0.png").write_bytes(_png(changed))
    new = ensure(f"folder:{src}", root)
    assert new.how == "prepared" and new.meta["fingerprint"] != first.meta["fingerprint"]
    # settings that change the result are part of the key too
    resized = ensure(f"folder:{src}", root, SourceSettings(image_size=16))
    assert resized.folder != new.folder and resized.meta["shape"] == [1, 16, 16]


def test_a_build_that_crashed_is_never_found_and_a_failed_one_leaves_nothing(digits, tmp_path, monkeypatch):
    x, y, _ = digits
    src = _folder(tmp_path / "src", {f"{y[i]}/{i}.png": _png(x[i]) for i in range(40)})
    root = tmp_path / "root"
    fp = ensure(f"folder:{src}", root).meta["fingerprint"]
    shutil.rmtree(root / "prepared" / fp)
    half = root / "prepared" / f".tmp-{fp}-deadbeef"  # what a killed build leaves: a folder under another name
    half.mkdir()
    (half / "x_train.npy").write_bytes(b"half")
    assert ensure(f"folder:{src}", root).how == "prepared"

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepared, "_describe", killed)  # interrupted after every image was written
    with pytest.raises(KeyboardInterrupt):
        ensure(f"folder:{src}", root, SourceSettings(image_size=10))
    assert sorted(p.name for p in (root / "prepared").iterdir()) == sorted([fp, half.name, "index.json"])


def test_fractions_are_seeded_and_stratified(digits, tmp_path):
    x, y, _ = digits
    src = tmp_path / "flat"
    for i in range(400):
        (src / f"digit_{y[i]}").mkdir(parents=True, exist_ok=True)
        (src / f"digit_{y[i]}" / f"{i:03d}.png").write_bytes(_png(x[i]))
    settings = SourceSettings(val_fraction=0.2, test_fraction=0.1)
    a = ensure(f"folder:{src}", tmp_path / "r", settings, split_seed=1)
    b = ensure(f"folder:{src}", tmp_path / "r2", settings, split_seed=1)
    c = ensure(f"folder:{src}", tmp_path / "r", settings, split_seed=2)
    per_class = np.bincount(y[:400], minlength=10)
    assert a.meta["class_counts"]["val"] == [int(np.floor(0.2 * n + 0.5)) for n in per_class]
    assert a.meta["class_counts"]["test"] == [int(np.floor(0.1 * n + 0.5)) for n in per_class]
    assert a.meta["splits"] == {"train": "source", "val": "fraction", "test": "fraction"}
    assert a.meta["fingerprint"] == b.meta["fingerprint"]
    assert all(np.array_equal(a.arrays(s)[0], b.arrays(s)[0]) for s in SPLITS)
    assert c.meta["fingerprint"] != a.meta["fingerprint"] and not np.array_equal(a.arrays("val")[0], c.arrays("val")[0])
    assert c.meta["class_counts"] == a.meta["class_counts"]
    # subsets are seeded draws, not the first images (a cache is in class order)
    sub = data.load_prepared(a, split_seed=1, train_subset=50)
    assert len(sub.train) == 50 and len(torch.unique(sub.train.y)) >= 8


def test_three_channels_and_resizing(digits, layouts, tmp_path):
    x, y, test = digits
    rgb = ensure(f"npz:{layouts['npz']}", tmp_path, SourceSettings(channels=3, image_size=12), workers=1)
    assert rgb.meta["shape"] == [3, 12, 12]
    t = np.array(rgb.arrays("test")[0])
    assert (t[:, 0] == t[:, 1]).all() and (t[:, 1] == t[:, 2]).all()
    first = x[_order(y, test)[0]]
    expected = np.asarray(Image.fromarray(first).convert("RGB").resize((12, 12), Image.Resampling.BILINEAR))
    assert np.array_equal(t[0], expected.transpose(2, 0, 1))
    # a colour folder kept as it is, and turned grey (Pillow's L)
    src = tmp_path / "colour"
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, (6, 5, 7, 3), dtype=np.uint8)  # 7 wide, 5 high: not square
    for i, p in enumerate(pictures):
        (src / ("a" if i % 2 else "b")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(p).save(src / ("a" if i % 2 else "b") / f"{i}.png")
    kept = ensure(f"folder:{src}", tmp_path, SourceSettings(val_fraction=0.5, test_fraction=0.5))
    assert kept.meta["shape"] == [3, 5, 7]
    grey = ensure(f"folder:{src}", tmp_path, SourceSettings(channels=1, val_fraction=0.5, test_fraction=0.5))
    train = np.array(grey.arrays("train")[0])
    assert grey.meta["shape"] == [1, 5, 7] and train.shape[1:] == (1, 5, 7)


def test_parallel_decoding_gives_the_same_cache(layouts, tmp_path, monkeypatch):
    monkeypatch.setattr(decode, "POOL_MIN", 0)  # 1,797 images would otherwise decode in this process
    two = ensure(f"folder:{layouts['folder']}", tmp_path / "two", workers=2, progress=True)
    one = ensure(f"folder:{layouts['folder']}", tmp_path / "one", workers=1)
    assert two.meta["fingerprint"] == one.meta["fingerprint"]
    assert all(np.array_equal(two.arrays(s)[0], one.arrays(s)[0]) for s in SPLITS)


def test_hugging_face_class_label_names_and_a_split_column(digits, tmp_path):
    x, y, _ = digits
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    meta = {"info": {"features": {"label": {"names": names, "_type": "ClassLabel"}}}}
    table = pa.table(
        {
            "img": pa.array([_png(a) for a in x[:200]], pa.binary()),
            "label": pa.array(y[:200], pa.int64()),
            "part": ["test" if i % 4 == 0 else "validation" if i % 4 == 1 else "train" for i in range(200)],
        }
    ).replace_schema_metadata({"huggingface": json.dumps(meta)})
    pq.write_table(table, tmp_path / "digits.parquet")
    ds = data.load_dataset(
        f"parquet:{tmp_path / 'digits.parquet'}",
        tmp_path / "root",
        settings=SourceSettings(image_column="img", split_column="part"),
    )
    assert ds.class_names == tuple(names) and (len(ds.train), len(ds.val), len(ds.test)) == (100, 50, 50)
    assert torch.equal(ds.test.y, torch.from_numpy(y[:200:4]))


def test_a_class_missing_from_a_split_is_a_warning_that_names_it(digits, tmp_path):
    x, y, _ = digits
    src = tmp_path / "src"
    for split, keep in (("train", range(10)), ("test", range(9))):
        for i in np.flatnonzero(np.isin(y, list(keep)))[:80]:
            (src / split / str(y[i])).mkdir(parents=True, exist_ok=True)
            (src / split / str(y[i]) / f"{i}.png").write_bytes(_png(x[i]))
    with pytest.warns(DataWarning, match=r"class '9' has no images in the test split"):
        data.load_dataset(f"folder:{src}", tmp_path / "root")


def _folder(base: Path, files: dict[str, bytes]) -> Path:
    for rel, blob in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith("/"):
            (base / rel).mkdir(exist_ok=True)
        else:
            (base / rel).write_bytes(blob)
    return base


def _bomb() -> bytes:
    """A valid 1x1 PNG whose header says 20000 x 20000 (CRC fixed): Pillow reads the size before pixels."""
    png = bytearray(_png(np.zeros((1, 1), np.uint8)))
    png[16:24] = (20000).to_bytes(4, "big") * 2
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")
    return bytes(png)


def _parquet(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty",
        "empty_class",
        "single_class",
        "corrupt",
        "mixed_sizes",
        "bomb",
        "big_file",
        "no_column",
        "null_label",
        "label_outside",
        "too_many_rows",
        "bad_npz",
        "bad_uri",
    ],
)
def test_bad_input_is_one_line_naming_the_file_and_leaves_nothing(case, digits, tmp_path, monkeypatch):
    x, _, _ = digits
    ok, ok2 = _png(x[0]), _png(x[1])
    src = tmp_path / "src"
    kind, needle = "folder", ""
    if case == "missing":
        needle = f"{src}: no such file or folder"
    elif case == "empty":
        src.mkdir()
        needle = "no images in it"
    elif case == "empty_class":
        _folder(src, {"a/1.png": ok, "b/2.png": ok2, "c/": b""})
        needle = "class 'c' has no images (c/ is empty)"
    elif case == "single_class":
        _folder(src, {"a/1.png": ok, "a/2.png": ok2})
        needle = "a single class ('a')"
    elif case == "corrupt":
        _folder(src, {"a/1.png": ok, "b/2.png": ok2[:40], "b/3.png": ok})
        needle = "b/2.png: not an image Pillow can read"
    elif case == "mixed_sizes":
        _folder(src, {"a/1.png": ok, "b/2.png": _png(np.zeros((9, 8), np.uint8))})
        needle = "b/2.png is 8x9, a/1.png 8x8; set data.image_size"
    elif case == "bomb":
        _folder(src, {"a/1.png": ok, "b/2.png": _bomb()})
        needle = "b/2.png: more than the 40,000,000 pixels an image may have"
    elif case == "big_file":
        monkeypatch.setattr(sources, "MAX_FILE_BYTES", 1000)
        _folder(src, {"a/1.png": ok, "b/2.png": ok2 + bytes(2000)})
        needle = f"b/2.png: {len(ok2) + 2000:,} bytes, more than the 1,000 an image may have"
    elif case in ("no_column", "null_label", "label_outside", "too_many_rows"):
        kind = "parquet"
        images = pa.array([ok, ok2, ok], pa.binary())
        labels = {
            "no_column": pa.array([0, 1, 0]),
            "null_label": pa.array(["a", None, "b"]),
            "label_outside": pa.array([0, 1, 5]),
            "too_many_rows": pa.array([0, 1, 0]),
        }[case]
        columns = {"picture" if case == "no_column" else "image": images, "label": labels}
        _parquet(src / "train.parquet", pa.table(columns))
        if case == "label_outside":
            meta = {"info": {"features": {"label": {"names": ["a", "b"], "_type": "ClassLabel"}}}}
            pq.write_table(
                pa.table(columns).replace_schema_metadata({"huggingface": json.dumps(meta)}), src / "train.parquet"
            )
        if case == "too_many_rows":
            monkeypatch.setattr(sources, "MAX_ROWS", 2)
        needle = {
            "no_column": "train.parquet: no column 'image' (data.image_column; it has picture, label)",
            "null_label": "train.parquet: row 1 has no label (data.label_column)",
            "label_outside": "label 5 is outside the 2 classes",
            "too_many_rows": "3 rows or more, more than the 2",
        }[case]
    elif case == "bad_npz":
        kind = "npz"
        src.mkdir()
        np.savez(src / "train.npz", x=np.zeros((4, 8, 8), np.float32), y=np.arange(4))
        needle = "train.npz: x is float32 (4, 8, 8); expected uint8"
    elif case == "bad_uri":
        src = "nosuchscheme://bucket/digits"  # type: ignore[assignment]
        needle = "nosuchscheme://bucket/digits: cannot read it"
    root = tmp_path / "root"
    with pytest.raises(DataError) as e:
        ensure(f"{kind}:{src}", root, workers=1)
    assert needle in str(e.value) and "\n" not in str(e.value), str(e.value)
    assert _empty(root), sorted(p.name for p in (root / "prepared").iterdir())


def test_npz_headers_are_read_before_the_arrays(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_ROWS", 10)
    np.savez_compressed(tmp_path / "big.npz", x=np.zeros((11, 4, 4), np.uint8), y=np.zeros(11, np.int64))

    def no_loading(*a, **k):
        raise AssertionError("an array was read before its header was checked")

    monkeypatch.setattr(np.lib.format, "read_array", no_loading)
    with pytest.raises(DataError, match="big.npz.*11 images or more, more than the 10"):
        ensure(f"npz:{tmp_path / 'big.npz'}", tmp_path / "root")


def test_fashion_mnist_as_png_files_loads_to_the_built_in_pixels_and_labels(data_dir, tmp_path):
    tx, ty, ex, ey = data._load_raw("fashion_mnist", str(data_dir))
    picks = {"train": (tx, ty, range(0, 300)), "val": (tx, ty, range(300, 400)), "test": (ex, ey, range(0, 100))}
    for split, (images, labels, rows) in picks.items():
        for i in rows:
            p = tmp_path / "fashion" / split / str(labels[i]) / f"{i:05d}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i, 0]).save(p)
    prep = ensure(f"folder:{tmp_path / 'fashion'}", tmp_path / "root")
    ds = data.load_prepared(prep)
    for split, (images, labels, rows) in picks.items():
        idx = np.array(rows)
        idx = idx[np.lexsort((idx, labels[idx]))]  # folder order: class by class, then file name
        x, y = prep.arrays(split)
        assert np.array_equal(x, images[idx]) and np.array_equal(y, labels[idx]), split
        assert torch.equal(getattr(ds, split).y, torch.from_numpy(labels[idx].astype(np.int64)))
    train = tx[:300].astype(np.float64) / 255
    assert prep.meta["mean"][0] == pytest.approx(train.mean(), abs=1e-6)
    assert prep.meta["std"][0] == pytest.approx(train.std(), abs=1e-6)
    builtin = data.load_dataset("fashion_mnist", data_dir)
    assert builtin.class_names[0] == "T-shirt/top" and builtin.num_classes == 10 and builtin.fingerprint is None


def _hash_without_source_settings(cfg, sections):
    """ExperimentConfig.hash as it was before DataConfig had a source's settings."""
    import hashlib  # noqa: PLC0415

    from search.config import UNHASHED  # noqa: PLC0415

    d = cfg.to_dict()
    for k in (
        "image_column",
        "label_column",
        "split_column",
        "channels",
        "image_size",
        "val_fraction",
        "test_fraction",
    ):
        d["data"].pop(k)
    blob = {
        k: {f: v for f, v in d[k].items() if f not in UNHASHED.get(k, ())} if isinstance(d[k], dict) else d[k]
        for k in (sections or tuple(d))
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:12]


def test_config_takes_a_source_and_keeps_built_in_hashes(tmp_path):
    cfg = load_config(None, ["data.dataset=parquet:s3://bucket/digits", "data.image_size=32", "data.channels=3"])
    assert cfg.data.dataset == "parquet:s3://bucket/digits" and cfg.data.image_size == 32
    assert hash(cfg.data)  # node_dataset's lru_cache needs it hashable
    # a source's settings at their defaults are not hashed: every shipped config keeps the hash it had
    # before they existed (the hash of its settings without them), and with it its teacher and truth tables
    for path in sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")):
        cfg = load_config(path)
        for sections in (None, ("data", "gtn"), ("data", "net", "train")):
            assert cfg.hash(sections) == _hash_without_source_settings(cfg, sections), path.name
    plain = load_config(None)
    assert plain.hash() != load_config(None, ["data.dataset=folder:/x"]).hash()
    assert plain.hash() == load_config(None, ["data.val_fraction=0.1"]).hash()
    for overrides, needle in [
        (["data.dataset=imagenet"], "data.dataset: 'imagenet' is not one of"),
        (["data.dataset=tiff:/x"], "nor a source (folder:PATH"),
        (["data.channels=2", "data.dataset=folder:/x"], "data.channels: must be 1 or 3"),
        (["data.image_size=0", "data.dataset=folder:/x"], "data.image_size: must be in [1, 4096]"),
        (["data.val_fraction=0.9", "data.dataset=folder:/x"], "data.val_fraction: must be in (0, 0.5]"),
        (["data.image_size=32"], "data.image_size: applies to a source"),
        (["data.split_column=part", "data.dataset=npz:/x"], "data.split_column: applies to a parquet: source only"),
    ]:
        with pytest.raises(ConfigError) as e:
            load_config(None, overrides)
        assert needle in str(e.value), str(e.value)


def test_cli_prepares_prints_a_summary_and_refuses_bad_input_with_exit_2(layouts, tmp_path, capsys):
    where = f"folder:{layouts['folder']}"
    assert main(["data", "prepare", where, "--root", str(tmp_path), "data.image_size=10", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "(prepared)" in out and "10x10, 1 channel, 10 classes" in out and "test in train 0" in out
    assert out.splitlines()[-1].split() == ["total", "1,294", "143", "360"]
    assert main(["data", "prepare", where, "--root", str(tmp_path), "data.image_size=10"]) == 0
    assert "(found)" in capsys.readouterr().out
    for argv, needle in [
        (["data", "prepare", f"folder:{tmp_path / 'nope'}", "--root", str(tmp_path)], "no such file or folder"),
        (["data", "prepare", "mnist"], "built-in data set"),
        (["data", "prepare", where, "train.lr=1"], "only data.* settings"),
        (["data", "prepare", where, "data.channels=2"], "data.channels: must be 1 or 3"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1, err


def test_a_node_prepares_a_source_once_then_finds_it(layouts, tmp_path):
    d = DataConfig(dataset=f"npz:{layouts['npz']}", root=str(tmp_path), train_subset=200, val_subset=50)
    node_dataset.cache_clear()
    ds, origin = node_dataset(d, "cpu")
    assert origin.startswith("prepared into ") and (len(ds.train), len(ds.val)) == (200, 50)
    node_dataset.cache_clear()
    again, origin = node_dataset(d, "cpu")
    assert origin.startswith("found in ") and torch.equal(again.train.x, ds.train.x)
    assert ds.name == d.dataset and ds.num_classes == 10
    node_dataset.cache_clear()


def test_a_source_on_s3_is_read_from_its_uri(layouts, tmp_path, monkeypatch):
    import boto3  # noqa: PLC0415  (lazy: boto3 and moto for this test only)
    from moto.server import ThreadedMotoServer  # noqa: PLC0415  (lazy: as boto3)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
        client.create_bucket(Bucket="gtnnas")
        for f in sorted(layouts["parquet"].rglob("*.parquet")):
            client.upload_file(str(f), "gtnnas", f"digits/{f.relative_to(layouts['parquet'])}")
        remote = ensure("parquet:s3://gtnnas/digits", tmp_path / "node", workers=1)
        local = ensure(f"parquet:{layouts['parquet']}", tmp_path / "here", workers=1)
        assert remote.meta["content"] == local.meta["content"]  # the same bytes: the same key
        assert all(np.array_equal(remote.arrays(s)[0], local.arrays(s)[0]) for s in SPLITS)
        with pytest.raises(DataError, match="s3://gtnnas/nothing: no such file or folder"):
            ensure("parquet:s3://gtnnas/nothing", tmp_path / "node")
    finally:
        server.stop()


def test_no_warning_for_a_complete_source(layouts, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        data.load_dataset(f"npz:{layouts['npz']}", tmp_path)
