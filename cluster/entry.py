"""One way in for every process Ray starts: its config, threads, device and data, on its own node.

Trials, the teacher task, the shared actor, retraining, truth and baseline trials all begin with
:func:`enter`. A cluster's nodes share no disk, so the data set is found on this node or fetched onto
it (``data.mirror``, Debian, torchvision, the package registries) under a file lock in the node's data
directory: one fetch per node however many processes start at once, and one copy in memory per
process, kept across reused trials. The device is exactly what Ray granted (:mod:`cluster.device`),
and everything that scores or trains follows the data it is given onto that device.

A bad input met inside a Ray process (no data set, a corrupt checkpoint) is re-raised as an
:class:`~search.errors.InputError` whose one line names the node, so the driver can show it as it is
(:func:`one_line`), not as a remote traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import ray
from filelock import FileLock

from cluster.device import granted_device, release
from search.config import DataConfig, ExperimentConfig, config_from_dict
from search.data import load_dataset, load_prepared
from search.datasets import CLASSES, DATASETS, SHAPES, default_roots
from search.errors import DataNotFoundError, InputError, first_line
from search.fetch import LOCAL, configured_sources, fetch
from search.shapes import InputSpec


@dataclass(frozen=True)
class Entered:
    """What a Ray process got at the door: its config, device and node."""

    cfg: ExperimentConfig
    device: str
    node: str  # "<ip> (<first 8 hex digits of the node id>)"

    def data(self) -> Any:
        """The configured data set on this process's device, fetched onto this node if it is not here."""
        return node_dataset(self.cfg.data, self.device)[0]

    def data_origin(self) -> str:
        """Where this process's data came from on this node: "found in DIR" or "fetched into DIR"."""
        return node_dataset(self.cfg.data, self.device)[1]


def node_name() -> str:
    ctx = ray.get_runtime_context()
    return f"{ray.util.get_node_ip_address()} ({ctx.get_node_id()[:8]})"


def enter(
    experiment: dict[str, Any], what: str, *, threads: int = 1, gpu_share: float | None = None, uses_torch: bool = True
) -> Entered:
    """Parse the experiment's config and set this process up: threads, denormals, device.

    ``gpu_share``: the GPUs this process asked Ray for (a fraction caps its CUDA memory at that share).
    ``uses_torch=False`` (benchmark-mode table lookups) leaves torch unimported and the device "cpu".
    """
    cfg = config_from_dict(experiment, f"<{what}>")
    device = "cpu"
    if uses_torch:
        import torch  # noqa: PLC0415  (lazy: benchmark-mode trials run without torch)

        torch.set_num_threads(max(1, int(threads)))
        torch.set_flush_denormal(True)
        device = granted_device(gpu_share)
        release(device)
    return Entered(cfg, device, node_name())


def data_folder(d: DataConfig) -> Path:
    """This machine's data directory for ``d`` (made if missing): ``data.root``, else the first default."""
    folder = Path(d.root) if d.root is not None else default_roots()[0]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prepare_source(d: DataConfig, progress: bool | None = None) -> Any:
    """A user source decoded into this machine's cache, or found there, under the data directory's lock
    (one decode per machine, however many processes ask at once): a :class:`search.prepared.Prepared`."""
    from search.prepared import ensure  # noqa: PLC0415  (lazy: Pillow and pyarrow.parquet only for a source)
    from search.sources import SourceSettings  # noqa: PLC0415  (lazy: as ensure)

    folder = data_folder(d)
    with FileLock(str(folder / ".gtnnas-fetch.lock")):
        return ensure(d.dataset, folder, SourceSettings.of(d), d.split_seed, progress=progress)


def data_inputs(d: DataConfig) -> InputSpec:
    """One image's (C, H, W) and the classes of ``d``'s data, without loading it: a built-in's known shape, or a
    source's prepared description (decoded here first if this machine has not yet)."""
    if d.dataset in DATASETS:
        return InputSpec(SHAPES[d.dataset], len(CLASSES[d.dataset]))
    meta = prepare_source(d).meta
    c, h, w = meta["shape"]
    return InputSpec((int(c), int(h), int(w)), len(meta["classes"]))


@lru_cache(maxsize=2)
def node_dataset(d: DataConfig, device: str) -> tuple[Any, str]:
    """(the data set on ``device``, where it came from); found or fetched on this node under a file lock.

    A user source (``folder:``, ``parquet:``, ``npz:``) is read from its path or URI and decoded into this
    node's cache (``<data root>/prepared/<fingerprint>``) under the same lock, once per node."""
    folder = data_folder(d)
    if d.dataset not in DATASETS:
        prep = prepare_source(d)
        data = load_prepared(
            prep,
            name=d.dataset,
            split_seed=d.split_seed,
            device=device,
            train_subset=d.train_subset,
            val_subset=d.val_subset,
        )
        return data, ("found in " if prep.how == "found" else "prepared into ") + str(prep.folder)
    with FileLock(str(folder / ".gtnnas-fetch.lock")):
        try:
            found = fetch(d.dataset, d.root, sources=[s for s in configured_sources() if s in LOCAL])
            origin = f"found in {found}"
        except DataNotFoundError:
            found = fetch(d.dataset, d.root, mirror=d.mirror)
            origin = f"fetched into {found}"
    data = load_dataset(
        d.dataset, found, split_seed=d.split_seed, device=device, train_subset=d.train_subset, val_subset=d.val_subset
    )
    return data, origin


@contextlib.contextmanager
def naming_the_node(what: str) -> Iterator[None]:
    """Inside a Ray process: an input error leaves as one line that says on which node and in what."""
    try:
        yield
    except InputError as e:
        raise InputError(f"{what} on node {node_name()}: {first_line(e, 300)}") from None


def one_line(error: BaseException) -> InputError | None:
    """The input error a remote failure carries (a RayTaskError, a Tune trial's error), else None.

    Ray wraps an exception raised in a task or actor; its cause is the original one, whose message
    :func:`naming_the_node` already gave the node.
    """
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, InputError) and not isinstance(e, ray.exceptions.RayError):
            return InputError(first_line(e, 400))
        e = getattr(e, "cause", None) or e.__cause__
    return None
