"""Paths and URIs through pyarrow.fs, so local disks, file://, s3:// and gs:// all work the same.

Every file the project writes goes through a temporary name and a move (:func:`write_parquet`,
:func:`upload`), so a reader or a crash never sees half a file.
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

from search.errors import InputError, first_line


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or any URI pyarrow understands."""
    if "://" in uri:
        try:
            return pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise InputError(f"{uri}: not a storage URI pyarrow can open ({first_line(e)})") from None
    return pafs.LocalFileSystem(), str(Path(uri).absolute())


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
    return {k.decode()[len("gtnnas."):]: json.loads(v) for k, v in (raw or {}).items()
            if k.decode().startswith("gtnnas.")}


def write_parquet(table: pa.Table, uri: str, metadata: dict[str, Any] | None = None) -> str:
    """Write ``table`` (plus ``gtnnas.*`` metadata) to ``uri``: temporary name in the same folder, then move."""
    fs, path = resolve(uri)
    folder, name = os.path.split(path)
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(with_metadata(table, metadata or {}), tmp, filesystem=fs)
    fs.move(tmp, path)
    return path


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
        with fs.open_input_stream(path) as src, os.fdopen(fd, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        yield local
    finally:
        os.remove(local)


def upload(local: str, uri: str) -> None:
    """Copy a local file to ``uri`` (temporary name, then move, so readers never see half a file)."""
    fs, path = resolve(uri)
    fs.create_dir(os.path.dirname(path), recursive=True)
    tmp = path + ".tmp"
    with open(local, "rb") as src, fs.open_output_stream(tmp) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    fs.move(tmp, path)


def remove(uri: str) -> None:
    """Delete a file if it is there."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type == pafs.FileType.File:
        fs.delete_file(path)
