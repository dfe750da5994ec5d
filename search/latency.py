"""Latency on a named device: how ``search.latency`` is spelled, and what a measurement is keyed by.

``search.latency`` says where and how a cell's forward pass is timed: ``device=cpu,batch=1,threads=1``
(``device``: ``cpu``, or ``cuda`` for a GPU node's first GPU; ``batch``: images per forward pass;
``threads``: torch CPU threads). A measurement depends on the cell's equivalence class, the network's
shape, the device, the torch version and the threads, and is kept under that key in the latency table
(:mod:`cluster.latency`), so it is measured once. Free of torch (it is imported to measure).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class LatencySpec:
    device: str = "cpu"
    batch: int = 1
    threads: int = 1

    def __str__(self) -> str:
        return f"device={self.device},batch={self.batch},threads={self.threads}"


def parse_latency(text: str) -> LatencySpec:
    """``device=cpu,batch=1,threads=1`` (any subset, in any order) -> a :class:`LatencySpec`; one line if not."""
    fields: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep or key not in ("device", "batch", "threads") or not value:
            raise InputError(f"latency {part!r}: expected device=NAME, batch=N or threads=N")
        fields[key] = value
    device = fields.get("device", "cpu")
    if device not in DEVICES:
        raise InputError(f"latency device {device!r}: expected one of {', '.join(DEVICES)}")
    try:
        batch, threads = int(fields.get("batch", 1)), int(fields.get("threads", 1))
    except ValueError:
        raise InputError(f"latency {text!r}: batch and threads must be whole numbers") from None
    if batch < 1 or threads < 1:
        raise InputError(f"latency {text!r}: batch and threads must be >= 1")
    return LatencySpec(device, batch, threads)
