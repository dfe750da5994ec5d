"""The one writer for every file gtnnas writes, local or remote (any pyarrow.fs URI: s3://, gs://).

:func:`atomic_write` hands out a file to write into; only when the ``with`` block ends without an
error does the file take its name: a temporary name beside the target, then a rename (local), or an
upload under a temporary key, then a move (remote). A reader, or a crash at any moment, sees the old
file or none, never half of one. It sits at the bottom of the layers (search <- results <- cluster)
because teacher checkpoints are written here too; :mod:`results.storage` builds on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.fs as pafs

from .errors import InputError, first_line


def resolve(uri: str | Path) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or any URI pyarrow understands."""
    uri = str(uri)
    if "://" in uri:
        try:
            return pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise InputError(f"{uri}: not a storage URI pyarrow can open ({first_line(e)})") from None
    return pafs.LocalFileSystem(), str(Path(uri).absolute())


@contextlib.contextmanager
def atomic_write(uri: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A file to write ``uri``'s new content into (``mode`` "wb" or "w"); it replaces ``uri`` whole, or
    not at all if the block raises."""
    fs, path = resolve(uri)
    folder, name = os.path.split(path)
    tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
    if isinstance(fs, pafs.LocalFileSystem):
        os.makedirs(folder, exist_ok=True)
        try:
            with open(tmp, mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        return
    with tempfile.TemporaryDirectory() as work:
        local = os.path.join(work, name)
        with open(local, mode) as f:
            yield f
        fs.create_dir(folder, recursive=True)
        with open(local, "rb") as src, fs.open_output_stream(tmp, compression=None) as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        fs.move(tmp, path)


def write_bytes(uri: str | Path, data: bytes) -> None:
    with atomic_write(uri) as f:
        f.write(data)


def write_text(uri: str | Path, text: str) -> None:
    with atomic_write(uri, "w") as f:
        f.write(text)


def write_json(uri: str | Path, obj: Any, indent: int | None = 1) -> None:
    write_text(uri, json.dumps(obj, indent=indent, default=str) + "\n")
