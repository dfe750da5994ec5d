"""User data sets: ``folder:``, ``parquet:`` and ``npz:`` sources, at a local path or any pyarrow.fs URI.

``data.dataset`` is a built-in name (:data:`search.datasets.DATASETS`) or ``KIND:PATH_OR_URI``:

- ``folder:`` torchvision's ImageFolder layout, ``<class>/<image>``, optionally under ``train/``, ``val/``
  (or ``validation/``) and ``test/``; any format Pillow reads; hidden files and files beside the class
  folders are ignored;
- ``parquet:`` one file, a folder of them, or one per split (names starting with train/val/validation/test,
  as the Hugging Face layout ``data/train-00000-of-00001.parquet``): an image column of encoded bytes or
  the Hugging Face struct {bytes, path}, a label column of ints or strings, optionally a split column;
- ``npz:`` one ``.npz`` with ``x`` (N, H, W[, C], uint8) and ``y`` (ints or strings), or a folder with
  ``train.npz`` and optionally ``val.npz`` / ``test.npz``.

This module parses a source, lists and checks its files, and reads a folder's labels and splits
(:mod:`search.tabular` reads a table's or an archive's; nothing here decodes a pixel: :mod:`search.decode`
does, and :mod:`search.prepared` caches the result). Untrusted input is bounded: sizes, row counts,
columns and array headers are checked from metadata before any data is read, and every refusal is one
:class:`~search.errors.DataError` line naming the file, column or setting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from .datasets import DATASETS
from .decode import MAX_FILE_BYTES, Task
from .errors import DataError, InputError, first_line
from .files import resolve

KINDS = ("folder", "parquet", "npz")
SPLITS = ("train", "val", "test")
SPLIT_OF = {"train": 0, "val": 1, "validation": 1, "valid": 1, "dev": 1, "test": 2}
MAX_ROWS = 10_000_000  # images in one source
MIN_CLASSES, MAX_CLASSES = 2, 1000
CHUNK = 256  # images per decode task


@dataclass(frozen=True)
class Source:
    kind: str  # one of KINDS
    location: str  # a local path or a pyarrow.fs URI

    def __str__(self) -> str:
        return f"{self.kind}:{self.location}"


def parse_source(text: str) -> Source | None:
    """The source ``text`` names, None for a built-in name; ValueError (one line) for anything else."""
    if text in DATASETS:
        return None
    kind, sep, location = text.partition(":")
    if not sep or kind not in KINDS or not location.strip():
        raise ValueError(
            f"{text!r} is not one of {', '.join(map(repr, DATASETS))} nor a source "
            "(folder:PATH, parquet:PATH or npz:PATH; PATH may be an s3:// or gs:// URI)"
        )
    return Source(kind, location.strip())


def slug(source: Source) -> str:
    """A short, file-name-safe name of a source (its last path component without extension), for keys."""
    stem = source.location.rstrip("/").rsplit("/", 1)[-1].split(".")[0]
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem)[:40].strip("_") or source.kind


def identity(name: str, fingerprint: str | None) -> str:
    """A data set's identity in teacher keys: a built-in's name, or a source's slug and fingerprint (its
    content and the settings that decode it, so the same images moved elsewhere keep their teacher)."""
    source = parse_source(name) if fingerprint is not None else None
    return name if source is None or fingerprint is None else f"{slug(source)}-{fingerprint[:12]}"


@dataclass(frozen=True)
class SourceSettings:
    """What changes the decoded result besides the source's bytes (the ``data.*`` keys of the same names)."""

    channels: int | None = None  # None: the source's (first image: L/1/I -> 1, else 3)
    image_size: int | None = None  # None: the source's own size (all images must share it)
    image_column: str = "image"
    label_column: str = "label"
    split_column: str | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    @classmethod
    def of(cls, d: Any) -> SourceSettings:
        """From a :class:`search.config.DataConfig` (or anything with these attributes)."""
        return cls(**{f.name: getattr(d, f.name) for f in fields(cls) if hasattr(d, f.name)})


@dataclass(frozen=True)
class Entry:
    path: str  # inside the filesystem
    rel: str  # relative to the source's location, '/'-separated
    size: int
    mtime_ns: int | None


@dataclass
class Listing:
    """A source's files, from one listing (no content read): what the fingerprint's quick key covers."""

    source: Source
    fs: Any  # pyarrow.fs.FileSystem
    files: list[Entry]
    split_of_file: list[int]  # per file: 0/1/2, or -1 when the file does not say
    class_dirs: list[tuple[int, str, str]]  # folder sources: (split, class, rel) of every class folder

    @property
    def local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)


@dataclass
class Scan:
    """A source's labels and splits, read before any pixel: one entry per image in source order."""

    listing: Listing
    classes: tuple[str, ...]
    labels: np.ndarray  # int64
    split: np.ndarray  # int8: 0 train, 1 val, 2 test, -1 not given by the source


def _split_token(name: str) -> int:
    return SPLIT_OF.get(re.split(r"[-_.]", name.lower(), maxsplit=1)[0], -1)


def list_source(source: Source) -> Listing:
    """List and check ``source``'s files (names, sizes, mtimes): one line naming what is wrong."""
    location = source.location if "://" in source.location else os.path.expanduser(source.location)
    try:
        fs, root = resolve(location)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.Directory and isinstance(fs, pafs.LocalFileSystem):
            entries, dirs = _walk_local(root)  # a checked cache is found by listing: os.scandir is 3-4x faster
        elif info.type == pafs.FileType.Directory:
            entries, dirs = _entries(fs.get_file_info(pafs.FileSelector(root, recursive=True)), root)
        else:
            entries, dirs = _entries([info], os.path.dirname(info.path.rstrip("/")))
    except (OSError, InputError, pa.ArrowException) as e:
        raise DataError(f"{source}: cannot read it ({first_line(e)})") from None
    if info.type == pafs.FileType.NotFound:
        raise DataError(f"{source}: no such file or folder")
    single = info.type == pafs.FileType.File
    entries.sort(key=lambda e: e.rel)
    lister = {"folder": _list_folder, "parquet": _list_parquet, "npz": _list_npz}[source.kind]
    listing = lister(source, fs, entries, sorted(dirs), single)
    if not listing.files:
        raise DataError(f"{source}: no {'images' if source.kind == 'folder' else source.kind + ' files'} in it")
    return listing


def _entries(infos: Iterable[Any], root: str) -> tuple[list[Entry], list[str]]:
    """Files (as entries) and folders under ``root`` from pyarrow's file infos; hidden ones left out."""
    entries, dirs = [], []
    for i in infos:
        rel = i.path[len(root.rstrip("/")) :].lstrip("/")
        if not rel or any(p.startswith(".") for p in rel.split("/")):
            continue
        if i.type == pafs.FileType.File:
            entries.append(Entry(i.path, rel, int(i.size), i.mtime_ns))
        elif i.type == pafs.FileType.Directory:
            dirs.append(rel)
    return entries, dirs


def _walk_local(root: str) -> tuple[list[Entry], list[str]]:
    """:func:`_entries` of a local folder by ``os.scandir`` (the same names, sizes and mtimes)."""
    entries: list[Entry] = []
    dirs: list[str] = []
    todo = [("", root)]
    while todo:
        rel_dir, path = todo.pop()
        with os.scandir(path) as it:
            for d in it:
                if d.name.startswith("."):
                    continue
                rel = f"{rel_dir}/{d.name}" if rel_dir else d.name
                if d.is_dir(follow_symlinks=True):
                    dirs.append(rel)
                    todo.append((rel, d.path))
                elif d.is_file(follow_symlinks=True):
                    st = d.stat()
                    entries.append(Entry(d.path, rel, int(st.st_size), int(st.st_mtime_ns)))
    return entries, dirs


def _list_folder(source: Source, fs: Any, entries: list[Entry], dirs: list[str], single: bool) -> Listing:
    if single:
        raise DataError(f"{source}: a file, not a folder of <class>/<image> (or train/<class>/<image>)")
    tops = sorted({e.rel.split("/")[0] for e in entries if "/" in e.rel} | {d.split("/")[0] for d in dirs})
    named = [t for t in tops if t.lower() in SPLIT_OF]
    if named and len(named) < len(tops):
        other = next(t for t in tops if t.lower() not in SPLIT_OF)
        raise DataError(f"{source}: has split folders ({', '.join(named)}) beside {other}/; put every class under one")
    seen: dict[int, str] = {}
    for t in named:
        if SPLIT_OF[t.lower()] in seen:
            raise DataError(f"{source}: {seen[SPLIT_OF[t.lower()]]}/ and {t}/ are the same split")
        seen[SPLIT_OF[t.lower()]] = t
    depth = 2 if named else 1  # folders above an image: [split/]class/

    def split_of(rel: str) -> int:
        return SPLIT_OF[rel.split("/")[0].lower()] if named else -1

    class_dirs = sorted(
        {
            (split_of(d), d.split("/")[depth - 1], "/".join(d.split("/")[:depth]))
            for d in dirs
            if d.count("/") >= depth - 1
        }
    )
    files = [e for e in entries if e.rel.count("/") >= depth]
    for e in files:
        if e.size > MAX_FILE_BYTES:
            raise DataError(f"{source}: {e.rel}: {e.size:,} bytes, more than the {MAX_FILE_BYTES:,} an image may have")
    if len(files) > MAX_ROWS:
        raise DataError(f"{source}: {len(files):,} images, more than the {MAX_ROWS:,} a source may have")
    return Listing(source, fs, files, [split_of(e.rel) for e in files], class_dirs)


def _list_parquet(source: Source, fs: Any, entries: list[Entry], dirs: list[str], single: bool) -> Listing:
    files = entries if single else [e for e in entries if e.rel.endswith(".parquet")]
    splits = []
    for e in files:
        parts = e.rel.split("/")
        split = _split_token(parts[-1])
        if split < 0 and len(parts) > 1:
            split = SPLIT_OF.get(parts[-2].lower(), -1)
        splits.append(split)
    if any(s >= 0 for s in splits) and any(s < 0 for s in splits):
        odd = files[splits.index(-1)].rel
        raise DataError(f"{source}: {odd}: its name does not say its split (train, val, validation or test)")
    return Listing(source, fs, files, splits, [])


def _list_npz(source: Source, fs: Any, entries: list[Entry], dirs: list[str], single: bool) -> Listing:
    if single:  # one set: the source's splits are fractions of it
        return Listing(source, fs, entries, [-1], [])
    files = [e for e in entries if e.rel.lower().endswith(".npz") and "/" not in e.rel]
    splits = [SPLIT_OF.get(e.rel[:-4].lower(), -1) for e in files]
    if -1 in splits:
        raise DataError(f"{source}: {files[splits.index(-1)].rel}: expected train.npz, val.npz or test.npz")
    if files and 0 not in splits:
        raise DataError(f"{source}: no train.npz beside {', '.join(e.rel for e in files)}")
    if len(set(splits)) < len(splits):
        raise DataError(f"{source}: two files for one split ({', '.join(e.rel for e in files)})")
    return Listing(source, fs, files, splits, [])


# --------------------------------------------------------------------------- labels and splits


def _classes_checked(source: Source, classes: list[str], counts: np.ndarray, where: str) -> tuple[str, ...]:
    if len(classes) > MAX_CLASSES:
        raise DataError(f"{source}: {len(classes):,} classes, more than the {MAX_CLASSES:,} supported")
    for name, n in zip(classes, counts, strict=True):
        if n == 0:
            raise DataError(f"{source}: class {name!r} has no images ({where})")
    if len(classes) < MIN_CLASSES:
        only = f" ({classes[0]!r})" if classes else ""
        raise DataError(f"{source}: a single class{only}; a data set needs {MIN_CLASSES} to {MAX_CLASSES:,}")
    return tuple(classes)


def scan_folder(listing: Listing, settings: SourceSettings) -> Scan:
    depth = 2 if any(s >= 0 for s in listing.split_of_file) else 1
    of_file = [e.rel.split("/")[depth - 1] for e in listing.files]
    classes = sorted(set(of_file) | {c for _, c, _ in listing.class_dirs})
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[c] for c in of_file], np.int64)
    counts = np.bincount(labels, minlength=len(classes))
    empty = [rel for _, c, rel in listing.class_dirs if counts[index[c]] == 0]
    checked = _classes_checked(listing.source, classes, counts, f"{empty[0]}/ is empty" if empty else "")
    return Scan(listing, checked, labels, np.array(listing.split_of_file, np.int8))


def open_file(listing: Listing, e: Entry) -> Any:
    try:
        return listing.fs.open_input_file(e.path)
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{listing.source}: {e.rel}: cannot read it ({first_line(err)})") from None


def labelled(listing: Listing, parts: list[Any], split: np.ndarray, names: list[str] | None) -> Scan:
    """Class names and int labels from per-file label arrays (ints) or lists (strings)."""
    source = listing.source
    if parts and not isinstance(parts[0], np.ndarray):
        values = [v for p in parts for v in p]
        classes = sorted(set(values))
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index[v] for v in values], np.int64)
    else:
        labels = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        top = int(labels.max()) + 1 if len(labels) else 0
        classes = names if names is not None else [str(i) for i in range(top)]
        if len(labels) and (labels.min() < 0 or top > len(classes)):
            bad = int(labels[(labels < 0) | (labels >= len(classes))][0])
            raise DataError(f"{source}: label {bad} is outside the {len(classes)} classes (0..{len(classes) - 1})")
    counts = np.bincount(labels, minlength=len(classes))
    return Scan(listing, _classes_checked(source, classes, counts, "no label has its value"), labels, split)


def folder_tasks(found: Scan, chunk: int = CHUNK) -> Iterator[Task]:
    """A folder source's images in source order, ``chunk`` at a time, for :func:`search.decode.decode_task`."""
    listing = found.listing
    fs = None if listing.local else listing.fs
    for i in range(0, len(listing.files), chunk):
        part = listing.files[i : i + chunk]
        yield Task(i, tuple(f.rel for f in part), paths=tuple(f.path for f in part), fs=fs)
