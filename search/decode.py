"""Untrusted images into uint8 N x C x H x W arrays: checked, converted, resized, in parallel, with a progress line.

Each image is bounded before its pixels are decoded: at most :data:`MAX_FILE_BYTES` encoded and
:data:`MAX_PIXELS` pixels (Pillow's decompression-bomb limit, its warning turned into an error). A file
Pillow cannot read, or one whose size differs from the first image's when no ``data.image_size`` resizes
them, is one :class:`~search.errors.DataError` line naming the file (and the first one). Work is cut into
:class:`Task` chunks; :func:`run` decodes them in this process or a pool of spawned ones, never holding
more than a few chunks at once, and hands each result to a callback that writes it where it belongs.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .errors import DataError, first_line

MAX_PIXELS = 40_000_000  # pixels of one image (Pillow's decompression-bomb limit while we decode)
MAX_FILE_BYTES = 64 << 20  # encoded bytes of one image
ONE_CHANNEL = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
POOL_MIN = 2_000  # fewer images decode in this process: a pool's start costs more than it saves
CHUNK_BYTES = 16 << 20  # decoded bytes per task (the tasks' image count follows the image size)


@dataclass(frozen=True)
class Task:
    """Images ``start`` ... of a source, in its order: files to read, encoded bytes, or a uint8 array."""

    start: int
    names: tuple[str, ...]  # one per image (an array's: its first)
    paths: tuple[str, ...] = ()
    blobs: tuple[bytes, ...] = ()
    array: np.ndarray | None = None  # N x H x W [x C]
    fs: Any = None  # a pyarrow filesystem for ``paths``; None: local files

    def __len__(self) -> int:
        return len(self.array) if self.array is not None else len(self.paths) or len(self.blobs)


@dataclass(frozen=True)
class Target:
    """What every image becomes; ``resize`` False: images of another size are refused, naming ``first``."""

    channels: int
    height: int
    width: int
    resize: bool
    first: str


def channels_of(mode: str) -> int:
    return 1 if mode in ONE_CHANNEL else 3


def _read(task: Task, i: int) -> bytes:
    name, path = task.names[i], task.paths[i]
    try:
        if task.fs is None:
            with open(path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        else:
            with task.fs.open_input_file(path) as f:
                data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise DataError(f"{name}: cannot read it ({first_line(e)})") from None
    return data


def open_image(data: bytes, name: str) -> Image.Image:
    """The decoded image, refused (one line naming it) when too big, a bomb, or not readable by Pillow."""
    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"{name}: more than the {MAX_FILE_BYTES:,} bytes an image may have")
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise DataError(f"{name}: {w}x{h} pixels, more than the {MAX_PIXELS:,} an image may have")
            im.load()
        except DataError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
            raise DataError(
                f"{name}: more than the {MAX_PIXELS:,} pixels an image may have ({first_line(e)})"
            ) from None
        except Exception as e:  # anything Pillow raises on a corrupt file
            raise DataError(f"{name}: not an image Pillow can read ({first_line(e)})") from None
    return im


def to_array(im: Image.Image, name: str, target: Target) -> np.ndarray:
    """C x H x W uint8 of ``im`` in ``target``'s channels and size."""
    try:
        mode = "L" if target.channels == 1 else "RGB"
        if im.mode != mode:
            im = im.convert(mode)
        if im.size != (target.width, target.height):
            if not target.resize:
                raise DataError(
                    f"{name} is {im.size[0]}x{im.size[1]}, {target.first} {target.width}x{target.height}; "
                    "set data.image_size to resize them all"
                )
            im = im.resize((target.width, target.height), Image.Resampling.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{name}: cannot convert it ({first_line(e)})") from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def decode_task(task: Task, target: Target) -> tuple[int, np.ndarray]:
    """(``task.start``, its images as N x C x H x W uint8)."""
    out = np.empty((len(task), target.channels, target.height, target.width), np.uint8)
    if task.array is not None:
        a = task.array if task.array.ndim == 4 else task.array[..., None]
        if a.shape[1:] == (target.height, target.width, target.channels):
            out[:] = a.transpose(0, 3, 1, 2)
        else:
            for i, img in enumerate(a):
                pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
                out[i] = to_array(pil, task.names[i], target)
        return task.start, out
    for i, name in enumerate(task.names):
        data = task.blobs[i] if task.blobs else _read(task, i)
        out[i] = to_array(open_image(data, name), name, target)
    return task.start, out


def probe(task: Task) -> tuple[int, int, int]:
    """(channels, height, width) of ``task``'s first image, as the source has it."""
    if task.array is not None:
        a = task.array
        return (a.shape[3] if a.ndim == 4 else 1), a.shape[1], a.shape[2]
    im = open_image(task.blobs[0] if task.blobs else _read(task, 0), task.names[0])
    return channels_of(im.mode), im.size[1], im.size[0]


class Bar:
    """A progress line on stderr, redrawn with \\r at most 4 times a second, once a run has taken a second."""

    def __init__(self, label: str, total: int, enabled: bool | None = None, stream: Any = None):
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)()) if enabled is None else enabled
        self.label, self.total, self.done = label, total, 0
        self.start = self.last = time.monotonic()
        self.shown = False

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and now - self.start >= 1.0 and (now - self.last >= 0.25 or self.done >= self.total):
            rate = self.done / max(now - self.start, 1e-9)
            filled = int(20 * self.done / max(self.total, 1))
            line = f"\r{self.label} [{'#' * filled}{'.' * (20 - filled)}] {self.done:,}/{self.total:,} {rate:,.0f}/s"
            print(line, end="", file=self.stream, flush=True)
            self.last, self.shown = now, True

    def close(self) -> None:
        if self.shown:
            print(file=self.stream, flush=True)
            self.shown = False


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run(
    tasks: Iterable[Task],
    target: Target,
    on_chunk: Callable[[int, np.ndarray], None],
    *,
    total: int,
    workers: int | None = None,
    bar: Bar | None = None,
) -> None:
    """Decode every task, calling ``on_chunk(start, images)`` in task order; at most 2 tasks per worker
    are in flight, so memory stays a few chunks whatever the source's size. The first error raises."""
    workers = default_workers() if workers is None else max(1, workers)
    if workers == 1 or total < POOL_MIN:
        for t in tasks:
            on_chunk(*decode_task(t, target))
            if bar is not None:
                bar.update(len(t))
        return
    pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
    pending: deque[tuple[Future[tuple[int, np.ndarray]], int]] = deque()

    def finish_one() -> None:
        future, n = pending.popleft()
        on_chunk(*future.result())
        if bar is not None:
            bar.update(n)

    try:
        for t in tasks:
            pending.append((pool.submit(decode_task, t, target), len(t)))
            if len(pending) >= 2 * workers:
                finish_one()
        while pending:
            finish_one()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
