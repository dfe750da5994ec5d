"""Preparing a user source: Fashion-MNIST's 70,000 images as a PNG folder, decoded once into the cache.

Writes the images (train/<label>/<i>.png, test/<label>/<i>.png) into a temporary folder, then for 1 and
2 decoding processes prepares the cache from scratch, each in a fresh process: wall time, images per
second, peak resident memory (the preparing process, its largest decoding worker, all together). Then
the cache's size on disk, that its pixels and labels are exactly the built-in loader's, and the time to
load it (cache found: memory-map, normalise) against the built-in loader's (read the IDX files,
normalise), best of 3 each.
Targets (issue #27): prepared in at most 60 s on 2 cores; loading at most 1.5x the built-in loader's time.

    python -m benchmarks.data_prepare [--images 70000] [--workers 1,2] [--draft]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks import provenance
from benchmarks._common import table, write
from search import data
from search.datasets import STATS
from search.fetch import LOCAL, fetch


def write_pngs(folder: Path, n: int, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """``n`` of Fashion-MNIST's 70,000 images, its train and test sets in their official proportion (the
    first of each), as PNG files; the images and labels written (train's, then test's)."""
    tx, ty, ex, ey = data._load_raw("fashion_mnist", str(root))
    n_train = round(n * len(ty) / (len(ty) + len(ey)))  # both splits in the official proportion
    x, y = np.concatenate([tx[:n_train], ex[: n - n_train]]), np.concatenate([ty[:n_train], ey[: n - n_train]])
    split = np.where(np.arange(n) < n_train, "train", "test")
    for s, label in {(s, label) for s, label in zip(split, y, strict=True)}:
        (folder / s / str(label)).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(x[i, 0]).save(folder / split[i] / str(y[i]) / f"{i:05d}.png", compress_level=6)
    return x, y


CHILD = """
import json, sys, threading, time
import psutil
from search.prepared import ensure

me, peak, stop = psutil.Process(), {"total": 0, "main": 0, "worker": 0}, threading.Event()

def sample():
    while not stop.is_set():
        try:
            kids = [c.memory_info().rss for c in me.children(recursive=True)]
        except psutil.Error:
            kids = []
        main = me.memory_info().rss
        peak.update(total=max(peak["total"], main + sum(kids)), main=max(peak["main"], main),
                    worker=max([peak["worker"], *kids]))
        time.sleep(0.02)

threading.Thread(target=sample, daemon=True).start()
t = time.perf_counter()
prep = ensure(sys.argv[1], sys.argv[2], workers=int(sys.argv[3]))
seconds = time.perf_counter() - t
stop.set()
mb = {k + "_peak_mb": v / 2**20 for k, v in peak.items()}
print(json.dumps({"seconds": seconds, **mb, "how": prep.how}))
"""


def prepare_fresh(source: str, root: Path, workers: int) -> dict[str, Any]:
    """Prepare ``source`` from scratch in a fresh process (as ``gtnnas data prepare`` would): its time and
    peak memory (resident, sampled every 20 ms: the process, its largest worker, and all of them together)."""
    shutil.rmtree(root / "prepared", ignore_errors=True)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, source, str(root), str(workers)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _multiset(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(label, pixels) rows as one sorted array of raw bytes: equal exactly when the multisets are."""
    rows = np.ascontiguousarray(np.concatenate([y[:, None].astype(np.uint8), x.reshape(len(x), -1)], axis=1))
    return np.sort(rows.view(np.dtype((np.void, rows.shape[1]))).ravel())


def best_of(fn: Any, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=70_000, help="how many of Fashion-MNIST's 70,000 images")
    ap.add_argument("--workers", default="1,2", help="decoding processes to measure, comma-separated")
    ap.add_argument("--keep", default=None, help="write the PNG folder and cache here and keep them")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    builtin_root = fetch("fashion_mnist", sources=LOCAL)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gtnnas-data-prepare-"))
    try:
        t = time.perf_counter()
        x, y = write_pngs(work / "fashion", args.images, builtin_root)
        written = time.perf_counter() - t
        source = f"folder:{work / 'fashion'}"
        rows = []
        for w in (int(v) for v in args.workers.split(",")):
            r = prepare_fresh(source, work / "root", w)
            rows.append({"workers": w, **r, "images_per_second": args.images / r["seconds"]})
        from search.prepared import ensure  # noqa: PLC0415  (lazy: after the fresh processes measured theirs)

        prep = ensure(source, work / "root")
        cache_mb = sum(f.stat().st_size for f in prep.folder.iterdir()) / 2**20
        # the cache holds the built-in's pixels and labels: folder order is test/ then train/, class by class;
        # val is carved from train, so train and val together are compared as a multiset of (label, pixels)
        n_train = round(args.images * 6 / 7)
        test_idx, train_idx = np.arange(n_train, args.images), np.arange(n_train)
        test_idx = test_idx[np.lexsort((test_idx, y[test_idx]))]
        exact = bool(np.array_equal(prep.arrays("test")[0], x[test_idx]))
        exact = exact and bool(np.array_equal(prep.arrays("test")[1], y[test_idx]))
        got_x = np.concatenate([np.asarray(prep.arrays(s)[0]) for s in ("train", "val")])
        got_y = np.concatenate([prep.arrays(s)[1] for s in ("train", "val")])
        exact = exact and bool(np.array_equal(_multiset(got_x, got_y), _multiset(x[train_idx], y[train_idx])))

        def load_builtin() -> None:
            data.forget_cached()
            data.load_dataset("fashion_mnist", builtin_root)

        def load_cache() -> None:
            data.load_prepared(found)

        def find_cache() -> None:
            ensure(source, work / "root")

        found = ensure(source, work / "root")
        builtin_s, cache_s, find_s = best_of(load_builtin), best_of(load_cache), best_of(find_cache)
        payload = {
            "images": args.images,
            "png_bytes": prep.meta["bytes"],
            "png_write_seconds": written,
            "prepare": rows,
            "cache_mb": cache_mb,
            "pixels_and_labels_exact": exact,
            "mean": prep.meta["mean"],
            "std": prep.meta["std"],
            "builtin_stats": STATS["fashion_mnist"],
            "load_seconds_cache": cache_s,
            "load_seconds_builtin": builtin_s,
            "load_ratio": cache_s / builtin_s,
            "find_seconds": find_s,  # listing the source and checking its fingerprint (no decoding)
            "find_and_load_ratio": (find_s + cache_s) / builtin_s,
            "targets": {"prepare_seconds_2_workers": 60.0, "load_ratio": 1.5},
        }
        path = write("data_prepare", payload)
        cols = ["workers", "seconds", "images_per_second", "main_peak_mb", "worker_peak_mb", "total_peak_mb"]
        print(table(rows, cols))
        print(f"\ncache {cache_mb:.1f} MB; pixels and labels exact: {exact}")
        print(f"load: cache {cache_s:.3f} s, built-in {builtin_s:.3f} s (x{cache_s / builtin_s:.2f})")
        print(f"finding the cache (listing {args.images:,} files, checking the fingerprint): {find_s:.3f} s")
        print(f"wrote {path}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
