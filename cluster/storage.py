"""Paths and URIs through pyarrow.fs, so local disks, file://, s3:// and gs:// all work the same."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow.fs as pafs


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) for a local path or any URI pyarrow understands."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).absolute())


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts]) if "://" in uri else str(Path(uri).absolute().joinpath(*parts))


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def fetch_to_local(uri: str) -> str:
    """A local path with the file's bytes: the path itself when local, else a downloaded temp copy."""
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        return path
    fd, local = tempfile.mkstemp(suffix=os.path.basename(path))
    with fs.open_input_stream(path) as src, os.fdopen(fd, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    return local


def upload(local: str, uri: str) -> None:
    """Copy a local file to ``uri`` (temporary name, then move, so readers never see half a file)."""
    fs, path = resolve(uri)
    fs.create_dir(os.path.dirname(path), recursive=True)
    tmp = path + ".tmp"
    with open(local, "rb") as src, fs.open_output_stream(tmp) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    fs.move(tmp, path)
