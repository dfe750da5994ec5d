"""Parquet tables and NumPy ``.npz`` archives as data sources (``parquet:``, ``npz:``; see :mod:`search.sources`).

Everything that can be checked from metadata is, before any data is read: a Parquet file's row count,
columns and column types from its footer; an ``.npz`` member's dtype and shape from its ``.npy`` header
(``allow_pickle=False`` throughout). Images are then read a row-group batch, or an array block, at a time.
Labels: strings (classes: their sorted unique values) or ints (classes: the Hugging Face ``ClassLabel``
names in the schema's ``huggingface`` metadata when present, else "0".."K-1").
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import sources
from .decode import MAX_PIXELS, Task
from .errors import DataError, first_line
from .sources import CHUNK, SPLIT_OF, Entry, Listing, Scan, Source, SourceSettings, labelled, open_file


def _class_label_names(schema: Any, column: str) -> list[str] | None:
    """The Hugging Face ``datasets`` ClassLabel names of ``column``, from the schema's metadata."""
    raw = (schema.metadata or {}).get(b"huggingface")
    try:
        feature = json.loads(raw)["info"]["features"][column] if raw else None
    except (ValueError, KeyError, TypeError):
        return None
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and isinstance(feature.get("names"), list):
        return [str(n) for n in feature["names"]]
    return None


def _column_values(source: Source, rel: str, table: Any, name: str, key: str, what: str) -> list[Any] | np.ndarray:
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if column.null_count:
        row = column.is_null().to_numpy(zero_copy_only=False).argmax()
        raise DataError(f"{source}: {rel}: row {row} has no {what} (data.{key})")
    if pa.types.is_integer(column.type):
        return np.asarray(column.to_numpy(zero_copy_only=False), np.int64)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return [str(v) for v in column.to_pylist()]
    raise DataError(f"{source}: {rel}: column {name!r} is {column.type}, not integers or strings (data.{key})")


def parquet_file(listing: Listing, e: Entry, settings: SourceSettings) -> Any:
    """A checked ParquetFile: its row count and the named columns come from its footer, before any data."""
    try:
        pf = pq.ParquetFile(open_file(listing, e))
    except (OSError, pa.ArrowException) as err:
        raise DataError(f"{listing.source}: {e.rel}: not a Parquet file ({first_line(err)})") from None
    names = pf.schema_arrow.names
    wanted = [("image_column", settings.image_column), ("label_column", settings.label_column)]
    if settings.split_column is not None:
        wanted.append(("split_column", settings.split_column))
    for key, column in wanted:
        if column not in names:
            raise DataError(f"{listing.source}: {e.rel}: no column {column!r} (data.{key}; it has {', '.join(names)})")
    kind = pf.schema_arrow.field(settings.image_column).type
    if not (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or (pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0)
    ):
        raise DataError(
            f"{listing.source}: {e.rel}: column {settings.image_column!r} is {kind}, not encoded image bytes"
            " (data.image_column)"
        )
    return pf


def scan_parquet(listing: Listing, settings: SourceSettings) -> Scan:
    source, rows = listing.source, 0
    files = []
    for e in listing.files:  # every footer first: nothing is read from a source that is too big
        pf = parquet_file(listing, e, settings)
        rows += pf.metadata.num_rows
        if rows > sources.MAX_ROWS:
            raise DataError(f"{source}: {rows:,} rows or more, more than the {sources.MAX_ROWS:,} a source may have")
        files.append(pf)
    labels: list[Any] = []
    splits: list[np.ndarray] = []
    names: list[str] | None = None
    for e, pf, file_split in zip(listing.files, files, listing.split_of_file, strict=True):
        names = names or _class_label_names(pf.schema_arrow, settings.label_column)
        columns = [settings.label_column] + ([settings.split_column] if settings.split_column else [])
        table = pf.read(columns=columns)
        part = _column_values(source, e.rel, table, settings.label_column, "label_column", "label")
        if labels and isinstance(part, np.ndarray) != isinstance(labels[0], np.ndarray):
            raise DataError(f"{source}: {e.rel}: its labels are {table.column(0).type}, another file's are not")
        labels.append(part)
        if settings.split_column is not None:
            values = _column_values(source, e.rel, table, settings.split_column, "split_column", "split")
            codes = np.array([SPLIT_OF.get(str(v).lower(), -1) for v in values], np.int8)
            if (codes < 0).any():
                bad = values[int(np.argmax(codes < 0))]
                raise DataError(
                    f"{source}: {e.rel}: split {bad!r} is not train, val, validation or test (data.split_column)"
                )
            splits.append(codes)
        else:
            splits.append(np.full(len(part), file_split, np.int8))
    return labelled(listing, labels, np.concatenate(splits) if splits else np.zeros(0, np.int8), names)


def _npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran order, dtype) of the .npy stream ``f``, read from its header alone (bounded in size)."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format version {version[0]}.{version[1]} is not read")


def npz_header(listing: Listing, e: Entry, member: str) -> tuple[zipfile.ZipFile, tuple[int, ...], np.dtype]:
    """The open archive and ``member``'s checked (shape, dtype), read from the .npy header alone."""
    source = listing.source
    try:
        archive = zipfile.ZipFile(open_file(listing, e))
        with archive.open(member + ".npy") as f:
            shape, fortran, dtype = _npy_header(f)
    except KeyError:
        raise DataError(f"{source}: {e.rel}: no array {member!r}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"{source}: {e.rel}: not a readable .npz ({first_line(err)})") from None
    if fortran:
        raise DataError(f"{source}: {e.rel}: {member} is in Fortran order; save it C-contiguous")
    if dtype.hasobject:
        raise DataError(f"{source}: {e.rel}: {member} holds Python objects, which are not read")
    return archive, shape, dtype


def scan_npz(listing: Listing, settings: SourceSettings) -> Scan:
    source, parts, splits, total = listing.source, [], [], 0
    hint: tuple[int, int] | None = None  # (H, W) of the first file's images
    for e, file_split in zip(listing.files, listing.split_of_file, strict=True):
        archive, shape, dtype = npz_header(listing, e, "x")
        if dtype != np.uint8 or len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] not in (1, 3)):
            raise DataError(f"{source}: {e.rel}: x is {dtype} {shape}; expected uint8 N x H x W [x 1 or 3]")
        total += shape[0]
        if total > sources.MAX_ROWS:
            raise DataError(f"{source}: {total:,} images or more, more than the {sources.MAX_ROWS:,} a source may have")
        if shape[1] * shape[2] > MAX_PIXELS:
            raise DataError(f"{source}: {e.rel}: {shape[2]}x{shape[1]} images, more than {MAX_PIXELS:,} pixels each")
        if hint is None:
            hint = (shape[1], shape[2])
        elif hint != (shape[1], shape[2]) and settings.image_size is None:
            first = listing.files[0].rel
            raise DataError(
                f"{source}: {e.rel} holds {shape[2]}x{shape[1]} images, {first} {hint[1]}x{hint[0]}; "
                "set data.image_size to resize them all"
            )
        _, yshape, ydtype = npz_header(listing, e, "y")
        if yshape != (shape[0],) or ydtype.kind not in "iuU":
            raise DataError(f"{source}: {e.rel}: y is {ydtype} {yshape}; expected {shape[0]} ints or strings")
        try:
            with archive.open("y.npy") as f:
                y = np.lib.format.read_array(f, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise DataError(f"{source}: {e.rel}: y cannot be read ({first_line(err)})") from None
        parts.append(y.astype(np.int64) if ydtype.kind in "iu" else [str(v) for v in y])
        splits.append(np.full(shape[0], file_split, np.int8))
    if any(isinstance(p, np.ndarray) for p in parts) and not all(isinstance(p, np.ndarray) for p in parts):
        raise DataError(f"{source}: some files' y are strings and others' ints")
    return labelled(listing, parts, np.concatenate(splits), None)


def table_tasks(found: Scan, settings: SourceSettings, chunk: int = CHUNK) -> Iterator[Task]:
    """A Parquet or npz source's images in source order, ``chunk`` at a time (a row-group batch of encoded
    images, or a block of the array read from the archive), for :func:`search.decode.decode_task`."""
    listing = found.listing
    start = 0
    for e in listing.files:
        if listing.source.kind == "parquet":
            pf = parquet_file(listing, e, settings)
            row = 0
            for batch in pf.iter_batches(batch_size=chunk, columns=[settings.image_column]):
                values = batch.column(0)
                if pa.types.is_struct(values.type):
                    values = values.field("bytes")
                blobs = values.to_pylist()
                if None in blobs:
                    raise DataError(f"{listing.source}: {e.rel}: row {row + blobs.index(None)} has no image bytes")
                yield Task(start, tuple(f"{e.rel} row {row + i}" for i in range(len(blobs))), blobs=tuple(blobs))
                start, row = start + len(blobs), row + len(blobs)
            continue
        archive, shape, _ = npz_header(listing, e, "x")
        size = int(np.prod(shape[1:]))
        with archive.open("x.npy") as f:
            _npy_header(f)
            for i in range(0, shape[0], chunk):
                n = min(chunk, shape[0] - i)
                try:
                    raw = f.read(n * size)
                except (OSError, zipfile.BadZipFile) as err:
                    raise DataError(f"{listing.source}: {e.rel}: x cannot be read ({first_line(err)})") from None
                if len(raw) < n * size:
                    raise DataError(f"{listing.source}: {e.rel}: x is truncated (image {i + len(raw) // size})")
                block = np.frombuffer(raw, np.uint8).reshape(n, *shape[1:])
                yield Task(start, tuple(f"{e.rel} x[{i + k}]" for k in range(n)), array=block)
                start += n
