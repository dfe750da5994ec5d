"""Paths and URIs through pyarrow.fs, so local disks, file://, s3:// and gs:// all work the same.

Every file the project writes goes through one writer, :func:`search.files.atomic_write` (re-exported
here with its helpers): a temporary name, then a rename or a move, so a reader or a crash never sees
half a file. :func:`write_parquet` and :func:`upload` are built on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from search.files import atomic_write, resolve, write_bytes, write_json, write_text  # noqa: F401  (re-exported)

MAX_ROWS = 20_000_000  # rows a results file handed to us may have: 2,000 times a 10,000-trial search's


def check_rows(rows: int, path: str, error: type[Exception]) -> None:
    """Refuse a table with more rows than :data:`MAX_ROWS`, counted from its files' footers before any data
    is read: a hostile or mistaken file must not take the machine's memory."""
    if rows > MAX_ROWS:
        raise error(f"{path}: {rows:,} rows, more than the {MAX_ROWS:,} a results table may have")


def storage_path(uri: str) -> str:
    """What Tune takes as ``storage_path``: a URI as it is, a local path made absolute."""
    return uri if "://" in uri else os.path.abspath(uri)


def part_name() -> str:
    """A part file's name: sortable by time, unique across writers."""
    return f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts]) if "://" in uri else str(Path(uri).absolute().joinpath(*parts))


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def is_dir(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type == pafs.FileType.Directory


def with_metadata(table: pa.Table, metadata: dict[str, Any]) -> pa.Table:
    """``table`` with ``gtnnas.<key>`` JSON entries added to its schema metadata."""
    extra = {f"gtnnas.{k}".encode(): json.dumps(v, default=str).encode() for k, v in metadata.items()}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})


def read_metadata(raw: dict[bytes, bytes] | None) -> dict[str, Any]:
    """The ``gtnnas.*`` entries of a Parquet schema's metadata, decoded."""
    return {
        k.decode()[len("gtnnas.") :]: json.loads(v) for k, v in (raw or {}).items() if k.decode().startswith("gtnnas.")
    }


def write_parquet(table: pa.Table, uri: str, metadata: dict[str, Any] | None = None) -> str:
    """Write ``table`` (plus ``gtnnas.*`` metadata) to ``uri``, whole or not at all."""
    with atomic_write(uri) as f:
        pq.write_table(with_metadata(table, metadata or {}), f)
    return resolve(uri)[1]


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path with the file's bytes for the ``with`` block: the path itself when local, else a
    downloaded temporary copy that is deleted afterwards."""
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        yield path
        return
    fd, local = tempfile.mkstemp(suffix=os.path.basename(path))
    try:
        with fs.open_input_stream(path, compression=None) as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        yield local
    finally:
        os.remove(local)


def upload(local: str, uri: str) -> None:
    """Copy a local file to ``uri``, whole or not at all."""
    with open(local, "rb") as src, atomic_write(uri) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def remove(uri: str) -> None:
    """Delete a file if it is there."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)
