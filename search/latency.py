"""Latency on a named device: how ``search.latency`` is spelled, and what a measurement is keyed by.

``search.latency`` says where and how a cell's forward pass is timed: ``device=cpu,batch=1,threads=1``
(``device``: ``cpu``, or ``cuda`` for a GPU node's first GPU; ``batch``: images per forward pass;
``threads``: torch CPU threads). A measurement depends on the cell's equivalence class, the network's
shape, the device, the torch version and the threads, and is kept under that key in the latency table
(:mod:`cluster.latency`), so it is measured once. Free of torch (it is imported to measure):
:func:`key_fields` says what a measurement is keyed by, :func:`measure` times one cell's network.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .errors import InputError
from .shapes import Inputs, NetSettings
from .space import Arch, parse

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


# --------------------------------------------------------------------------- what a measurement is keyed by

KEY_FIELDS = (
    "arch_hash",  # the cell's equivalence class (search.space.Arch.equiv_hash)
    "channels",  # the network's shape: C, N cells per stage, normalisation
    "cells",
    "norm",
    "in_channels",  # one image's (C, H, W) and the classes
    "height",
    "width",
    "classes",
    "device",  # cpu or cuda (search.latency's device)
    "device_name",  # which CPU or GPU: device_identity()
    "torch",  # torch's version
    "threads",
    "batch",
)


class LatencyKey(NamedTuple):
    """What one latency measurement is keyed by (:data:`KEY_FIELDS`, in order)."""

    arch_hash: str
    channels: int
    cells: int
    norm: str
    in_channels: int
    height: int
    width: int
    classes: int
    device: str
    device_name: str
    torch: str
    threads: int
    batch: int


@dataclass(frozen=True)
class DeviceIdentity:
    """The part of a key only the measuring machine knows: which CPU or GPU model, which torch."""

    device_name: str
    torch: str


def cpu_name() -> str:
    """``"<machine> <model>"``, the model from /proc/cpuinfo where there is one (Linux), else the platform's."""
    machine = platform.machine() or "cpu"
    model = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("model name", "Model", "cpu model", "Hardware"):
                    model = " ".join(value.split())
                    break
    model = model or (platform.processor() if platform.processor() != machine else "")
    return f"{machine} {model}".strip()[:80]


def device_identity(device: str) -> DeviceIdentity:
    """This machine's :class:`DeviceIdentity` for ``device`` (``cpu`` or ``cuda``: its first GPU)."""
    import torch  # noqa: PLC0415  (lazy: this module stays torch-free until something is measured)

    if device == "cuda":
        if not torch.cuda.is_available():
            raise InputError("search.latency: device cuda, but torch sees no GPU on this machine")
        return DeviceIdentity(torch.cuda.get_device_name(0), torch.__version__)
    return DeviceIdentity(cpu_name(), torch.__version__)


def key_fields(
    arch: Arch, net: NetSettings, inputs: Inputs, spec: LatencySpec, identity: DeviceIdentity | None = None
) -> dict[str, Any]:
    """What a measurement of ``arch`` at ``net``'s settings on ``inputs`` under ``spec`` is keyed by, as the
    latency table's key columns (``identity``: the measuring machine's; None: this machine's)."""
    ident = identity if identity is not None else device_identity(spec.device)
    c, h, w = inputs.shape
    return {
        "arch_hash": arch.equiv_hash(),
        "channels": int(net.channels),
        "cells": int(net.cells),
        "norm": str(net.norm),
        "in_channels": int(c),
        "height": int(h),
        "width": int(w),
        "classes": int(inputs.num_classes),
        "device": spec.device,
        "device_name": ident.device_name,
        "torch": ident.torch,
        "threads": int(spec.threads),
        "batch": int(spec.batch),
    }


def latency_key(
    arch: Arch, net: NetSettings, inputs: Inputs, spec: LatencySpec, identity: DeviceIdentity | None = None
) -> LatencyKey:
    return LatencyKey(**key_fields(arch, net, inputs, spec, identity))


def representative(arch: Arch) -> Arch:
    """The cell a class's latency is measured on: its canonical cell (dead edges removed), so the value does
    not depend on which member of the class was asked for first. A network built from a member with dead
    edges also runs them: measure the representative to compare with the table."""
    return parse(arch.canonical())


# --------------------------------------------------------------------------- measuring


def torch_device(device: str) -> str:
    """``search.latency``'s device as torch names it: ``cpu``, or ``cuda:0`` (the first GPU Ray granted)."""
    return "cuda:0" if device == "cuda" else "cpu"


def measure(
    arch: Arch,
    net: NetSettings,
    inputs: Inputs,
    spec: LatencySpec,
    *,
    min_run_time: float = 0.2,
    repeats: int = 10,
    warmup: int = 10,
) -> dict[str, float | int]:
    """Time ``arch``'s network (``net``'s settings, built for ``inputs``, eval mode, inference mode) on a batch
    of ``spec.batch`` images on ``spec.device`` with torch at ``spec.threads`` threads (restored afterwards).

    After ``warmup`` passes, each forward pass is timed on its own (``perf_counter_ns``, the GPU synchronised
    before and after, garbage collection off) until ``min_run_time`` seconds and at least ``repeats`` passes
    have gone by: ``{"latency_ms": median, "latency_iqr_ms": interquartile range, "runs": timed passes}``.
    A C=8, N=1 network on 28x28 images (about 1 ms a pass on one CPU core) takes about 0.25 s in all.
    """
    import torch  # noqa: PLC0415  (lazy: this module stays torch-free until something is measured)

    from .nets import net_from  # noqa: PLC0415  (lazy: it imports torch)

    device = torch_device(spec.device)
    if device != "cpu" and not torch.cuda.is_available():
        raise InputError(f"search.latency: device {spec.device}, but torch sees no GPU on this machine")
    threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    try:
        model = net_from(arch, net, inputs, device=device).eval()
    finally:
        torch.set_num_threads(threads)
    return time_forward(model, inputs.shape, spec, min_run_time=min_run_time, repeats=repeats, warmup=warmup)


def time_forward(
    model: Any,
    shape: tuple[int, int, int],
    spec: LatencySpec,
    *,
    min_run_time: float = 0.2,
    repeats: int = 10,
    warmup: int = 10,
) -> dict[str, float | int]:
    """:func:`measure`'s timing of any callable taking a ``(batch, *shape)`` tensor (a network, or an exported
    program's module), on ``spec``'s device and threads."""
    import torch  # noqa: PLC0415  (lazy: as in measure)

    device = torch_device(spec.device)
    threads = torch.get_num_threads()
    gc_was_on = gc.isenabled()
    torch.set_num_threads(spec.threads)
    try:
        x = torch.randn((spec.batch, *shape), generator=torch.Generator().manual_seed(0)).to(device)
        sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
        times: list[int] = []
        with torch.inference_mode():
            for _ in range(max(0, warmup)):
                model(x)
            sync()
            gc.collect()
            gc.disable()
            end = time.perf_counter_ns() + int(min_run_time * 1e9)
            while len(times) < max(1, repeats) or time.perf_counter_ns() < end:
                sync()
                t0 = time.perf_counter_ns()
                model(x)
                sync()
                times.append(time.perf_counter_ns() - t0)
    finally:
        if gc_was_on:
            gc.enable()
        torch.set_num_threads(threads)
    q1, median, q3 = np.percentile(np.asarray(times, dtype=np.float64) / 1e6, [25, 50, 75])
    return {"latency_ms": float(median), "latency_iqr_ms": float(q3 - q1), "runs": len(times)}
