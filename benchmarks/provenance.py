"""One writer for benchmark results: every JSON file and JSON line a benchmark writes says how it was made.

A benchmark's ``main`` parses its arguments (its parser has :func:`add_common_args`), then calls
:func:`start` before any work: on a working tree with changes outside ``benchmarks/results/`` and ``*.md``
files the run is refused with one line and exit code 2, unless ``--draft`` was given (the results then say
``"draft": true``). Everything it writes goes through :func:`write_result` (a JSON file),
:func:`append_record` (one JSON line) or :func:`parquet_metadata` (a Parquet file's metadata), which add a
``provenance`` block:

- ``commit`` (``git rev-parse HEAD``), ``dirty``, ``draft``;
- ``config`` (the parsed arguments) and ``config_hash`` (sha256 of their sorted JSON, 12 hex digits);
- ``machine`` (CPU, cores, torch threads, torch, Python and Ray versions, CUDA device; no host name);
- ``command`` (as run, ``python -m benchmarks.X ...``), ``started`` and ``ended`` (ISO 8601, UTC);
- ``load``: the 1-minute load average sampled at the start, every 10 s and at the end (min, mean, max).

Score caches are keyed by :func:`code_hash` of the files that compute the scores, so a code change
makes a new cache rather than reusing a stale one.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from search.files import write_json

ROOT = Path(__file__).resolve().parents[1]
LOAD_EVERY_S = 10.0
CLEAN_PREFIXES = ("benchmarks/results/",)  # what a benchmark writes does not make the tree dirty
CLEAN_SUFFIXES = (".md",)  # nor do the docs


def add_common_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags every benchmark takes: ``--draft``."""
    parser.add_argument(
        "--draft",
        action="store_true",
        help="run on a working tree with uncommitted code changes; the results say draft (never reported)",
    )
    return parser


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def commit() -> str | None:
    out = _git("rev-parse", "HEAD")
    return out.strip() if out else None


def changed_paths(outputs: Iterable[str | Path] = ()) -> list[str]:
    """Paths ``git status --porcelain`` lists outside ``benchmarks/results/``, ``*.md`` and ``outputs``."""
    mine = {str(Path(p).resolve().relative_to(ROOT)) for p in outputs if Path(p).resolve().is_relative_to(ROOT)}
    paths = []
    for line in (_git("status", "--porcelain") or "").splitlines():
        path = line[3:].split(" -> ")[-1].strip('"')
        if path.startswith(CLEAN_PREFIXES) or path.endswith(CLEAN_SUFFIXES):
            continue
        if any(path.rstrip("/") == m or path.startswith(m + "/") for m in mine):  # the run's own output
            continue
        paths.append(path)
    return paths


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def code_hash(paths: Iterable[str], n: int = 10) -> str:
    """sha256 over the contents of ``paths`` (relative to the repository), ``n`` hex digits."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.encode() + b"\0" + (ROOT / p).read_bytes() + b"\0")
    return h.hexdigest()[:n]


def machine() -> dict[str, Any]:
    import torch  # noqa: PLC0415  (lazy: the docs' tables and tests read provenance without torch)

    try:
        ray = importlib.metadata.version("ray")  # the installed version, without importing (or starting) Ray
    except importlib.metadata.PackageNotFoundError:
        ray = None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "ray": ray,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def command() -> str:
    """The command as run, as ``python -m benchmarks.X ...`` whatever the interpreter's path."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    head = ["python", "-m", spec.name] if spec is not None else ["python", sys.argv[0]]
    return shlex.join([*head, *sys.argv[1:]])


class LoadSampler:
    """The 1-minute load average, sampled every ``every`` seconds by a daemon thread (and on request)."""

    def __init__(self, every: float = LOAD_EVERY_S):
        self.every = every
        self.samples: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._loop, args=(every,), daemon=True, name="load-sampler")
        self._thread.start()

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            self.sample()

    def sample(self) -> None:
        with self._lock:
            self.samples.append((time.monotonic(), os.getloadavg()[0]))

    def stats(self, since: float = float("-inf")) -> dict[str, Any]:
        """min, mean and max of the samples taken since ``since`` (a monotonic time), one taken now included."""
        self.sample()
        with self._lock:
            loads = [v for t, v in self.samples if t >= since]
        return {
            "min": min(loads),
            "mean": sum(loads) / len(loads),
            "max": max(loads),
            "samples": len(loads),
            "every_s": self.every,
        }

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Segment:
    """Part of a run that one record covers (one search of several): its own start, end and load.

    ``seg = Segment()`` before the work, then ``append_record(path, record, seg)``.
    """

    started: str = field(default_factory=utc_now)
    since: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if _current is not None:  # the load at its start
            _current.load.sample()


@dataclass
class Run:
    config: dict[str, Any]
    draft: bool
    dirty: bool
    commit: str | None
    command: str
    machine: dict[str, Any]
    load: LoadSampler
    whole: Segment = field(default_factory=Segment)

    def provenance(self, segment: Segment | None = None) -> dict[str, Any]:
        part = segment or self.whole
        return {
            "commit": self.commit,
            "dirty": self.dirty,
            "draft": self.draft,
            "config": self.config,
            "config_hash": config_hash(self.config),
            "machine": self.machine,
            "command": self.command,
            "started": part.started,
            "ended": utc_now(),
            "load": self.load.stats(part.since),
        }


_current: Run | None = None


def start(args: argparse.Namespace | dict[str, Any], *, reported: bool = True, outputs: Iterable[Any] = ()) -> Run:
    """Begin this process's run; refuse a reported run on a dirty tree (exit code 2) unless ``draft``.

    ``args`` are the script's parsed arguments (its config); a run that is not ``reported`` (a smoke run)
    is a draft. ``outputs``: files the script itself updates outside ``benchmarks/results/`` (a resumable
    table), which do not make the tree dirty for it.
    """
    global _current
    config = dict(vars(args) if isinstance(args, argparse.Namespace) else args)
    draft = bool(config.get("draft")) or not reported
    changed = changed_paths(str(p) for p in outputs if p is not None)
    head = commit()
    if (changed or head is None) and not draft:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        why = f"uncommitted changes ({', '.join(changed[:3])}{more})" if changed else "no git commit to record"
        print(f"refused: {why}; commit them or run with --draft", file=sys.stderr)
        raise SystemExit(2)
    whole = Segment()  # before the sampler's first sample, so the run's load includes it
    settings = {k: v for k, v in config.items() if k != "draft"}  # draft is recorded apart, not hashed
    _current = Run(
        config=json.loads(json.dumps(settings, default=str)),
        draft=draft,
        dirty=bool(changed),
        commit=head,
        command=command(),
        machine=machine(),
        load=LoadSampler(),
        whole=whole,
    )
    return _current


def current() -> Run:
    if _current is None:
        raise RuntimeError("no benchmark run started: call benchmarks.provenance.start(args) before writing results")
    return _current


def _plain(obj: Any) -> Any:
    """JSON-ready: numpy scalars and the like as floats, paths as strings."""
    return json.loads(json.dumps(obj, default=lambda v: float(v) if hasattr(v, "__float__") else str(v)))


def write_result(path: str | Path, payload: dict[str, Any], *, indent: int | None = 2) -> Path:
    """Write ``payload`` plus its ``provenance`` as a JSON file, whole or not at all."""
    write_json(path, _plain({**payload, "provenance": current().provenance()}), indent=indent)
    return Path(path)


def append_record(path: str | Path, record: dict[str, Any], segment: Segment | None = None) -> dict[str, Any]:
    """Append ``record`` plus its ``provenance`` (of ``segment`` if given) as one JSON line, flushed and synced."""
    out = _plain({**record, "provenance": current().provenance(segment)})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(out) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return out


def parquet_provenance(path: str | Path) -> list[dict[str, Any]]:
    """The provenance of the runs that wrote the Parquet file at ``path`` so far (none if it does not exist)."""
    if not Path(path).exists():
        return []
    import pyarrow.parquet as pq  # noqa: PLC0415  (lazy: only the Parquet writers need it)

    from results.storage import read_metadata  # noqa: PLC0415  (lazy: as pyarrow)

    return list(read_metadata(pq.read_schema(path).metadata).get("provenance") or [])


def parquet_metadata(before: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Metadata for a Parquet result (``gtnnas.provenance``): the runs that wrote it, ``before`` and this one.

    A resumable table keeps the provenance of every run that added rows (:func:`parquet_provenance`).
    """
    return {"provenance": [*(before or []), current().provenance()]}
