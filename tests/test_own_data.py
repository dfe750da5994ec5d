"""Own data end to end (issue #27): scikit-learn's handwritten digits (1,797 real 8x8 images) as a PNG folder
and as a Hugging Face Parquet table with string labels, and CIFAR-10 by name from a few files in
torchvision's cifar-10-batches-py format: each through a smoke-budget search, retraining and export; the
exported program, loaded with torch alone, reproduces the reported test accuracy on the source's test images.
Own pytest process (`pytest -m e2e`, in `make test`): a few minutes of searches on 2 cores."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from search.config import load_config

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TINY = ["search.num_samples=3", "search.real_rungs=1", "search.real_steps=20", "gtn.outer_steps=2"]
TINY += ["data.train_subset=null", "data.val_subset=null"]


def _digits() -> tuple[np.ndarray, np.ndarray]:
    d = load_digits()
    return (d.images * (255.0 / 16.0)).round().astype(np.uint8), d.target.astype(int)


def _png(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict[str, Path]:
    """The digits written twice: folder/{train,test}/<name>/<i>.png and hf/data/{train,test}-00000-of-00001.parquet
    (an image struct of bytes and path, string labels); the last fifth of the images is the test split."""
    x, y = _digits()
    base = tmp_path_factory.mktemp("digits")
    cut = len(y) * 4 // 5
    for split, idx in (("train", range(cut)), ("test", range(cut, len(y)))):
        rows = []
        for i in idx:
            folder = base / "folder" / split / NAMES[y[i]]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.png").write_bytes(_png(x[i]))
            rows.append({"image": {"bytes": _png(x[i]), "path": f"{i}.png"}, "label": NAMES[y[i]]})
        (base / "hf" / "data").mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), base / "hf" / "data" / f"{split}-00000-of-00001.parquet")
    return {"folder": base / "folder", "parquet": base / "hf"}


CHECK = """
import json, sys, numpy as np, torch
model_dir, images, labels = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3])
info = json.load(open(f"{model_dir}/best_model.json"))
net = torch.export.load(f"{model_dir}/best_model.pt2").module()
x = torch.tensor(images, dtype=torch.float32) / 255.0
x = (x - torch.tensor(info["mean"]).view(1, -1, 1, 1)) / torch.tensor(info["std"]).view(1, -1, 1, 1)
assert list(x.shape[1:]) == info["input_shape"][1:], (x.shape, info["input_shape"])
pred = net(x).argmax(1).numpy()
print(json.dumps({"acc": float((pred == labels).mean()), "classes": info["class_names"]}))
"""


def _exported_accuracy(root: Path, images: np.ndarray, labels: np.ndarray, tmp: Path) -> dict:
    """The exported program's test accuracy, computed by a Python with torch alone (no gtnnas import)."""
    np.save(tmp / "x.npy", images)
    np.save(tmp / "y.npy", labels)
    out = subprocess.run(
        [sys.executable, "-I", "-c", CHECK, str(root), str(tmp / "x.npy"), str(tmp / "y.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _search_retrain(cfg, ray_session) -> tuple[Path, pd.DataFrame]:
    from cluster.retrain import run_retrain  # noqa: PLC0415  (lazy: Ray after conftest's environment)
    from cluster.search_run import run_search  # noqa: PLC0415

    _, root, _ = run_search(cfg)
    final = run_retrain(root, top=1, epochs=1, seeds=1)
    return Path(root), final


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["folder", "parquet"])
def test_digits_from_a_source_through_search_retraining_and_export(kind, digits, ray_session, tmp_path):
    cfg = load_config(
        ROOT / "configs" / "smoke.yaml",
        [f"data.dataset={kind}:{digits[kind]}", f"storage={tmp_path}", f"name={kind}", *TINY],
    )
    root, final = _search_retrain(cfg, ray_session)
    info = json.loads((root / "best_model.json").read_text())
    assert info["input_shape"] == [1, 1, 8, 8] and info["class_names"] == sorted(NAMES) and info["num_classes"] == 10
    x, y = _digits()
    test = np.arange(len(y) * 4 // 5, len(y))
    names = info["class_names"]
    labels = np.array([names.index(NAMES[y[i]]) for i in test])
    got = _exported_accuracy(root, x[test][:, None], labels, tmp_path)
    assert got["acc"] == pytest.approx(float(final["test_acc"].iloc[0]), abs=1.5 / len(test))
    assert got["acc"] > 0.3  # it learned something (10 classes: chance is 0.1)
    confusion = json.loads((root / "confusion.json").read_text())
    assert confusion["class_names"] == names and np.asarray(confusion["matrix"]).sum() == len(test)


def _cifar_files(folder: Path, per_batch: int = 300) -> None:
    """torchvision's cifar-10-batches-py: five training batches, a test batch and the meta file (made-up pixels:
    each class a colour, plus noise, so that it can be learned)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    colours = rng.integers(0, 256, (10, 3))

    def batch(n: int) -> dict:
        labels = rng.integers(0, 10, n)
        x = np.clip(colours[labels][:, :, None] + rng.normal(0, 60, (n, 3, 1024)), 0, 255).astype(np.uint8)
        return {b"data": x.reshape(n, 3072), b"labels": labels.tolist()}

    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump(batch(per_batch), f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10}, f)


@pytest.mark.timeout(900)
def test_cifar10_by_name_through_search_retraining_and_export(ray_session, tmp_path):
    _cifar_files(tmp_path / "data" / "cifar-10-batches-py")
    cfg = load_config(
        ROOT / "configs" / "smoke.yaml",
        ["data.dataset=cifar10", f"data.root={tmp_path / 'data'}", f"storage={tmp_path}", "name=cifar", *TINY],
    )
    root, final = _search_retrain(cfg, ray_session)
    info = json.loads((root / "best_model.json").read_text())
    assert info["input_shape"] == [1, 3, 32, 32] and info["class_names"][0] == "airplane"
    with open(tmp_path / "data" / "cifar-10-batches-py" / "test_batch", "rb") as f:
        t = pickle.load(f, encoding="bytes")
    images = np.asarray(t[b"data"], np.uint8).reshape(-1, 3, 32, 32)
    got = _exported_accuracy(root, images, np.asarray(t[b"labels"]), tmp_path)
    assert got["acc"] == pytest.approx(float(final["test_acc"].iloc[0]), abs=1.5 / len(images))
