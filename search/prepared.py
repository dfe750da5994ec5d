"""A user source decoded once into a uint8 cache in the data directory, found (not rebuilt) by every later run.

``<data root>/prepared/<fingerprint>/`` holds ``x_train.npy`` (N x C x H x W uint8), ``y_train.npy``
(int64), the same for ``val`` and ``test``, and ``meta.json`` (classes, shape, counts per split and class,
the training split's mean and std per channel in [0, 1], exact duplicates across splits, the source, the
settings, the fingerprint, when). The **fingerprint** is a hash of the source's content (every file's
relative name, size and sha256) and of the settings that change the decoded result (channels, image size,
columns, split seed and fractions): a changed source is a new key, never a stale cache. Moving the source
keeps its key. So as not to read every byte again on each run, ``prepared/index.json`` maps a quick key
(the files' names, sizes and mtimes) to the content hash, used only when all of them match.

A cache is built in ``prepared/.tmp-*`` and renamed into place whole: an error or a crash never leaves a
half cache that a later run would find, and an error leaves nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from . import decode
from .datasets import default_roots
from .decode import Task
from .errors import DataError
from .files import write_json
from .sources import (
    SPLITS,
    Entry,
    Listing,
    Scan,
    Source,
    SourceSettings,
    folder_tasks,
    list_source,
    parse_source,
    scan_folder,
)
from .tabular import scan_npz, scan_parquet, table_tasks

FORMAT = "gtnnas-prepared"
VERSION = 1  # bump when a code change alters what a cache holds: every old key is then new
MAX_CACHE_BYTES = 64 << 30  # decoded bytes of one source (N x C x H x W)
INDEX_SIZE = 256  # quick keys remembered


def scan(listing: Listing, settings: SourceSettings) -> Scan:
    """A listed source's labels and splits, checked (no image is decoded)."""
    return {"folder": scan_folder, "parquet": scan_parquet, "npz": scan_npz}[listing.source.kind](listing, settings)


def tasks(found: Scan, settings: SourceSettings, chunk: int) -> Iterator[Task]:
    """The source's images in source order, ``chunk`` at a time, as :mod:`search.decode` tasks."""
    if found.listing.source.kind == "folder":
        return folder_tasks(found, chunk)
    return table_tasks(found, settings, chunk)


class DataWarning(UserWarning):
    """A usable but doubtful source (a class missing from a split)."""


@dataclass(frozen=True)
class Prepared:
    folder: Path
    meta: dict[str, Any]
    how: str  # "found" or "prepared"

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(x memory-mapped uint8 N x C x H x W, y int64) of ``split``."""
        return np.load(self.folder / f"x_{split}.npy", mmap_mode="r"), np.load(self.folder / f"y_{split}.npy")


def cache_root(root: str | Path | None) -> Path:
    return Path(root if root is not None else default_roots()[0]) / "prepared"


def _quick_key(listing: Listing) -> str | None:
    if any(e.mtime_ns is None for e in listing.files):
        return None
    h = hashlib.sha256(f"{listing.source}\n{listing.fs.type_name}\n".encode())
    h.update("\n".join(f"{e.rel}\t{e.size}\t{e.mtime_ns}" for e in listing.files).encode())
    return h.hexdigest()


def _sha256(listing: Listing, e: Entry) -> str:
    h = hashlib.sha256()
    try:
        with listing.fs.open_input_stream(e.path) as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    except OSError as err:
        raise DataError(f"{listing.source}: {e.rel}: cannot read it ({err})") from None
    return h.hexdigest()


def content_hash(listing: Listing, threads: int = 8) -> str:
    """sha256 over every file's relative name, size and content hash (read in a few threads)."""
    with ThreadPoolExecutor(threads) as pool:
        digests = list(pool.map(lambda e: _sha256(listing, e), listing.files))
    lines = "".join(f"{e.rel}\t{e.size}\t{d}\n" for e, d in zip(listing.files, digests, strict=True))
    return hashlib.sha256(f"{listing.source.kind}\n{lines}".encode()).hexdigest()


def fingerprint(kind: str, content: str, settings: SourceSettings, split_seed: int) -> str:
    used = asdict(settings)
    if kind != "parquet":
        for k in ("image_column", "label_column", "split_column"):
            used.pop(k)
    blob = {"format": FORMAT, "version": VERSION, "kind": kind, "content": content, "split_seed": split_seed, **used}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _content(listing: Listing, croot: Path) -> tuple[str | None, str]:
    """(the listing's quick key, its content hash): the hash remembered under the quick key when names,
    sizes and times all match, else computed from the bytes."""
    quick = _quick_key(listing)
    known = _index(croot).get(quick or "", {}).get("content")
    return quick, known if isinstance(known, str) else content_hash(listing)


def source_fingerprint(source: Source, root: str | Path | None, settings: SourceSettings, split_seed: int = 0) -> str:
    """The cache key :func:`ensure` would use, without decoding anything (the bytes are read only when the
    stat index does not know the files yet)."""
    listing, croot = list_source(source), cache_root(root)
    quick, content = _content(listing, croot)
    _remember(croot, quick, content)
    return fingerprint(source.kind, content, settings, split_seed)


def _index(root: Path) -> dict[str, Any]:
    try:
        found = json.loads((root / "index.json").read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(root: Path, quick: str | None, content: str) -> None:
    if quick is None:
        return
    index = _index(root)
    index[quick] = {"content": content, "used": time.time()}
    newest = sorted(index.items(), key=lambda kv: -float(kv[1].get("used", 0)))[:INDEX_SIZE]
    write_json(root / "index.json", dict(newest))


def _meta(folder: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("format") == FORMAT else None


def ensure(
    source: str | Source,
    root: str | Path | None,
    settings: SourceSettings | None = None,
    split_seed: int = 0,
    *,
    workers: int | None = None,
    progress: bool | None = None,
) -> Prepared:
    """Find ``source``'s cache under ``root`` or build it (decode in ``workers`` processes); one
    :class:`DataError` line for bad input, and then nothing is left behind."""
    if isinstance(source, str):
        parsed = parse_source(source)
        if parsed is None:
            raise DataError(f"{source}: a built-in data set, not a source to prepare (`gtnnas data fetch {source}`)")
        source = parsed
    settings = settings or SourceSettings()
    listing, croot = list_source(source), cache_root(root)
    quick, content = _content(listing, croot)
    fp = fingerprint(source.kind, content, settings, split_seed)
    final = croot / fp
    meta = _meta(final)
    if meta is not None:
        _remember(croot, quick, content)
        return Prepared(final, meta, "found")
    found = scan(listing, settings)
    split, origin = assign_splits(found, settings, split_seed)
    _sweep(croot)
    tmp = croot / f".tmp-{fp}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        meta = _build(tmp, found, split, settings, workers, progress)
        meta.update(
            source=str(source),
            kind=source.kind,
            settings={**asdict(settings), "split_seed": split_seed},
            splits=origin,
            fingerprint=fp,
            content=content,
            files=len(listing.files),
            bytes=sum(e.size for e in listing.files),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        write_json(tmp / "meta.json", meta)
        try:
            os.rename(tmp, final)
        except OSError:  # another process put the same cache in place first
            if _meta(final) is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            meta = _meta(final) or meta
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            croot.rmdir()  # only when nothing else is there
        except OSError:
            pass
        raise
    _remember(croot, quick, content)
    return Prepared(final, meta, "prepared")


def _sweep(root: Path, age_s: float = 86_400.0) -> None:
    """Remove the temporary folders of builds that crashed more than a day ago."""
    if not root.is_dir():
        return
    for p in root.glob(".tmp-*"):
        try:
            if time.time() - p.stat().st_mtime > age_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def assign_splits(found: Scan, settings: SourceSettings, seed: int) -> tuple[np.ndarray, dict[str, str]]:
    """Each image's split (0 train, 1 val, 2 test): the source's, else seeded, stratified fractions of
    the training images (per class, in class order, from ``default_rng(seed)``)."""
    split = found.split.copy()
    split[split < 0] = 0
    if not (split == 0).any():
        raise DataError(f"{found.listing.source}: no training images (only {', '.join(_present(split))})")
    carve = {s: not (split == s).any() for s in (1, 2)}
    origin = {name: "fraction" if carve.get(s) else "source" for s, name in enumerate(SPLITS)}
    if any(carve.values()):
        rng = np.random.default_rng(seed)
        for c in range(len(found.classes)):
            idx = rng.permutation(np.flatnonzero((split == 0) & (found.labels == c)))
            n = len(idx)
            n_test = int(np.floor(n * settings.test_fraction + 0.5)) if carve[2] else 0
            n_val = int(np.floor(n * settings.val_fraction + 0.5)) if carve[1] else 0
            while n_val + n_test >= n and n_val + n_test > 0:  # every class keeps a training image
                if n_val >= n_test and n_val > 0:
                    n_val -= 1
                else:
                    n_test -= 1
            split[idx[:n_test]] = 2
            split[idx[n_test : n_test + n_val]] = 1
    return split, origin


def _present(split: np.ndarray) -> list[str]:
    return [name for s, name in enumerate(SPLITS) if (split == s).any()]


def _build(
    folder: Path, found: Scan, split: np.ndarray, settings: SourceSettings, workers: int | None, progress: bool | None
) -> dict[str, Any]:
    """Decode every image into ``folder``'s x_*.npy (preallocated, written chunk by chunk) and y_*.npy."""
    first = next(tasks(found, settings, chunk=1))
    try:
        c0, h0, w0 = decode.probe(first)
    except DataError as e:
        raise DataError(f"{found.listing.source}: {e}") from None
    channels = settings.channels or c0
    h, w = (settings.image_size, settings.image_size) if settings.image_size else (h0, w0)
    target = decode.Target(channels, h, w, settings.image_size is not None, first.names[0])
    counts = [int((split == s).sum()) for s in range(3)]
    need = sum(counts) * channels * h * w
    if need > MAX_CACHE_BYTES:
        raise DataError(
            f"{found.listing.source}: {need / 2**30:,.1f} GiB decoded, more than the {MAX_CACHE_BYTES >> 30} GiB "
            "a prepared source may take; set data.image_size smaller"
        )
    pos = np.zeros(len(split), np.int64)  # each image's place in its split, in source order
    for s in range(3):
        pos[split == s] = np.arange(counts[s])
        np.save(folder / f"y_{SPLITS[s]}.npy", found.labels[split == s])
    files, offsets = [], []
    for s in range(3):
        path = folder / f"x_{SPLITS[s]}.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(counts[s], channels, h, w))
        offsets.append(mm.offset)
        del mm
        files.append(open(path, "r+b"))  # noqa: SIM115  (closed below)
    item = channels * h * w

    def write(start: int, images: np.ndarray) -> None:
        sp, ps = split[start : start + len(images)], pos[start : start + len(images)]
        for s in range(3):
            mask = sp == s
            if mask.any():  # a split's images in a chunk are consecutive in it
                files[s].seek(offsets[s] + int(ps[mask][0]) * item)
                files[s].write(np.ascontiguousarray(images[mask]).tobytes())

    chunk = max(1, min(decode.CHUNK_BYTES // max(item, c0 * h0 * w0), 256))
    bar = decode.Bar(f"preparing {found.listing.source}", len(split), progress)
    try:
        decode.run(tasks(found, settings, chunk), target, write, total=len(split), workers=workers, bar=bar)
    except DataError as e:
        source = str(found.listing.source)
        raise (e if str(e).startswith(source) else DataError(f"{source}: {e}")) from None
    finally:
        bar.close()
        for f in files:
            f.close()
    return _describe(folder, found, split, counts, (channels, h, w))


def _blocks(path: Path, n: int, item: int, rows: int = 4096) -> Any:
    """``path``'s images as (k, item) uint8 blocks read from the file (not mapped: memory stays flat)."""
    with open(path, "rb") as f:
        f.seek(int(np.load(path, mmap_mode="r").offset))
        for i in range(0, n, rows):
            k = min(rows, n - i)
            yield np.frombuffer(f.read(k * item), np.uint8).reshape(k, item)


def _describe(
    folder: Path, found: Scan, split: np.ndarray, counts: list[int], shape: tuple[int, int, int]
) -> dict[str, Any]:
    c, h, w = shape
    item = c * h * w
    total = np.zeros(c, np.float64)
    squares = np.zeros(c, np.float64)
    hashes = []
    for s in range(3):
        digests = np.zeros(counts[s], np.uint64)
        i = 0
        for block in _blocks(folder / f"x_{SPLITS[s]}.npy", counts[s], item):
            digests[i : i + len(block)] = [
                int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8).digest(), "little") for row in block
            ]
            i += len(block)
            if s == 0:
                per = block.reshape(len(block), c, h * w)
                total += per.sum(axis=(0, 2), dtype=np.int64)
                squares += np.einsum("ncp,ncp->c", per, per, dtype=np.int64)
        hashes.append(np.sort(digests))
    pixels = counts[0] * h * w
    mean = total / pixels
    std = np.sqrt(np.maximum(squares / pixels - mean**2, 0.0))
    k = len(found.classes)
    return {
        "format": FORMAT,
        "version": VERSION,
        "classes": list(found.classes),
        "shape": [c, h, w],
        "counts": {SPLITS[s]: counts[s] for s in range(3)},
        "class_counts": {SPLITS[s]: np.bincount(found.labels[split == s], minlength=k).tolist() for s in range(3)},
        "mean": (mean / 255).round(6).tolist(),
        "std": (std / 255).round(6).tolist(),
        "duplicates": {
            "val_in_train": int(np.isin(hashes[1], hashes[0]).sum()),
            "test_in_train": int(np.isin(hashes[2], hashes[0]).sum()),
            "test_in_val": int(np.isin(hashes[2], hashes[1]).sum()),
        },
    }


def missing(meta: dict[str, Any]) -> list[str]:
    """One line for every class with no image in a (non-empty) split."""
    lines = []
    for split, counts in meta["class_counts"].items():
        if meta["counts"][split] == 0:
            continue
        for name, n in zip(meta["classes"], counts, strict=True):
            if n == 0:
                lines.append(f"{meta['source']}: class {name!r} has no images in the {split} split")
    return lines


def warn_missing(meta: dict[str, Any]) -> list[str]:
    """Warn (:class:`DataWarning`) about every class with no image in a split; the warnings' lines."""
    lines = missing(meta)
    for line in lines:
        warnings.warn(line, DataWarning, stacklevel=3)
    return lines


def summary(meta: dict[str, Any]) -> dict[str, Any]:
    """What ``gtnnas data prepare`` prints: images per split and class, size, channels, mean and std,
    class balance (smallest and largest class's share of the training split), duplicates across splits."""
    train = np.asarray(meta["class_counts"]["train"], np.float64)
    share = train / max(train.sum(), 1)
    c, h, w = meta["shape"]
    return {
        "source": meta["source"],
        "fingerprint": meta["fingerprint"],
        "classes": meta["classes"],
        "images": meta["counts"],
        "per_class": meta["class_counts"],
        "size": [h, w],
        "channels": c,
        "mean": meta["mean"],
        "std": meta["std"],
        "balance": {"min_share": float(share.min()), "max_share": float(share.max())},
        "duplicates": meta["duplicates"],
        "splits": meta["splits"],
        "missing": missing(meta),
    }
