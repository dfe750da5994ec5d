"""The latency table: each cell's measured latency, kept under the storage and shared by every search and node.

Layout: ``<storage>/latency/part-*.parquet`` (any pyarrow.fs URI: a local folder, s3://, gs://), append-only,
one row per measurement: the key (:data:`search.latency.KEY_FIELDS`: the cell's equivalence class, the
network's shape, the input's shape and classes, the device and its model, torch's version, threads and batch)
plus ``latency_ms`` (median), ``latency_iqr_ms``, ``runs``, ``measured`` (a timestamp) and ``node``. A key
measured twice (two searches at once) keeps its newest row. Every search with the same storage reads and
extends the same table, so a cell is measured once per key, whichever node or search asks.

:func:`latency_ms` answers for a list of cells: what the table has, and the rest measured in one Ray task
placed where ``search.latency``'s device is, which adds its rows to the table. A CPU measurement asks Ray
for no CPU: the searcher asks for latencies while trials may hold every CPU, and a task waiting for one
would wait on the very loop that frees them; it runs with ``threads`` torch threads beside the trials, so
a latency measured mid-search can read high (never low) against an idle machine's. A cuda measurement
asks for a whole GPU (``num_gpus=1``) and waits for one. The measuring machine's identity (CPU or GPU
model, torch version) is part of the key and known only there: the first call of a process lets the task
look the table up, later calls look it up here.

:func:`exported_latency` measures what ``gtnnas retrain`` exported the same way, where the device is: the
network and the ``torch.export`` program, whose per-call cost from Python the search's table does not see.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import ray

from cluster.entry import Entered, enter, naming_the_node, one_line
from results.storage import check_rows, join, local_copy, part_name, resolve, storage_path, write_parquet
from search.config import ExperimentConfig
from search.errors import ClusterError, InputError, first_line
from search.latency import DeviceIdentity, LatencyKey, LatencySpec, latency_key, representative
from search.shapes import Inputs, InputSpec, NetSettings, NetSpec
from search.space import Arch, parse

FOLDER = "latency"
VALUES = (("latency_ms", pa.float64()), ("latency_iqr_ms", pa.float64()), ("runs", pa.int64()))
SCHEMA = pa.schema(
    [
        ("arch_hash", pa.string()),
        ("arch", pa.string()),  # the class's representative, the cell measured
        ("channels", pa.int64()),
        ("cells", pa.int64()),
        ("norm", pa.string()),
        ("in_channels", pa.int64()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("classes", pa.int64()),
        ("device", pa.string()),
        ("device_name", pa.string()),
        ("torch", pa.string()),
        ("threads", pa.int64()),
        ("batch", pa.int64()),
        *VALUES,
        ("measured", pa.float64()),
        ("node", pa.string()),
    ]
)
WAIT_S = 900.0  # how long latency_ms waits for its task (a CPU or GPU may first have to come free)


def folder(storage: str) -> str:
    """The latency table's folder under ``storage``."""
    return join(storage, FOLDER)


class LatencyTable:
    """The rows under ``<storage>/latency/``, read once and cached; a lookup that misses reads new parts only."""

    def __init__(self, storage: str):
        self.root = folder(storage)
        self.rows: dict[LatencyKey, tuple[float, float]] = {}  # key -> (measured, latency_ms)
        self.seen: set[str] = set()  # part files already read

    def lookup(self, keys: Iterable[LatencyKey]) -> dict[LatencyKey, float]:
        """The latency (ms) of each key the table has; keys it lacks are left out."""
        wanted = set(keys)
        if not wanted <= self.rows.keys():
            self.refresh()
        return {k: self.rows[k][1] for k in wanted if k in self.rows}

    def refresh(self) -> None:
        """Read the part files written since the last read (by this table, another search or another node)."""
        fs, base = resolve(self.root)
        try:
            infos = fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        except (OSError, pa.ArrowInvalid):
            return
        new = sorted(
            i.path
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.startswith("part-")
            and i.base_name.endswith(".parquet")
            and i.path not in self.seen
        )
        if not new:
            return
        try:
            ds = pads.dataset(new, format="parquet", filesystem=fs, schema=SCHEMA)
            check_rows(ds.count_rows(), self.root, InputError)
            rows = ds.to_table().to_pylist()
        except (OSError, pa.ArrowInvalid) as e:
            raise InputError(f"{self.root}: an unreadable latency part file ({first_line(e)})") from None
        self.remember(rows)
        self.seen.update(new)

    def remember(self, rows: Iterable[dict[str, Any]]) -> None:
        """Take ``rows`` into the cache (the newest measurement of a key wins)."""
        for r in rows:
            key = LatencyKey(*(r[f] for f in LatencyKey._fields))
            when = float(r["measured"] or 0.0)
            if key not in self.rows or when >= self.rows[key][0]:
                self.rows[key] = (when, float(r["latency_ms"]))

    def add(self, rows: list[dict[str, Any]]) -> str | None:
        """Write ``rows`` as one new part file (whole or not at all) and cache them; its path, or None if empty."""
        if not rows:
            return None
        path = write_parquet(pa.Table.from_pylist(rows, schema=SCHEMA), join(self.root, part_name()))
        self.remember(rows)
        self.seen.add(path)
        return path


_TABLES: dict[str, LatencyTable] = {}  # by storage: one cache per process
_IDENTITIES: dict[tuple[str, str], DeviceIdentity] = {}  # (device, placement) -> the identity a task reported


def table(storage: str) -> LatencyTable:
    """This process's :class:`LatencyTable` of ``storage``."""
    return _TABLES.setdefault(folder(storage), LatencyTable(storage))


def task_resources(spec: LatencySpec, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Ray options of the measuring task: no CPU (see the module docstring), ``num_gpus=1`` for cuda, plus
    ``options`` (e.g. ``{"resources": {"node_a": 0.1}}`` to place it on a labelled node)."""
    wanted: dict[str, Any] = {"num_cpus": 0, "num_gpus": 1 if spec.device == "cuda" else 0}
    return {**wanted, **(options or {})}


def check_device(spec: LatencySpec, options: dict[str, Any]) -> None:
    """Refuse (one line) a device or thread count that no alive node of this Ray cluster has."""
    if spec.device == "cuda" and ray.cluster_resources().get("GPU", 0.0) < 1:
        raise InputError("search.latency: device cuda, but no node of this Ray cluster has a GPU")
    need = {"CPU": float(spec.threads), "GPU": float(options["num_gpus"]), **options.get("resources", {})}
    for node in ray.nodes():
        have = node.get("Resources", {})
        if node.get("Alive") and all(have.get(k, 0.0) >= v for k, v in need.items() if v > 0):
            return
    wants = ", ".join(f"{v:g} {k}" for k, v in need.items() if v > 0)
    raise InputError(f"search.latency: {spec} needs a node with {wants}, but no node of this Ray cluster has them")


def latency_ms(
    archs: Sequence[Arch],
    cfg: ExperimentConfig,
    inputs: Inputs,
    *,
    net: NetSettings | None = None,
    options: dict[str, Any] | None = None,
    timeout_s: float = WAIT_S,
) -> list[float]:
    """Each cell's latency (ms) on ``cfg.search.latency``'s device, for ``net`` (default: ``cfg.net``) on
    ``inputs``: looked up in the table under ``cfg.storage``, the missing classes measured (once each) in one
    Ray task whose rows join the table. ``options``: extra Ray options for that task (placement)."""
    spec = cfg.search.latency_spec
    shape = net if net is not None else cfg.net
    plain = NetSpec(int(shape.channels), int(shape.cells), str(shape.norm))
    c, h, w = inputs.shape
    given = InputSpec((int(c), int(h), int(w)), int(inputs.num_classes))
    cells = {a.equiv_hash(): representative(a) for a in archs}
    wanted = task_resources(spec, options)
    placement = repr(sorted((wanted.get("resources") or {}).items()))
    storage = storage_path(cfg.storage)  # absolute: the task's working folder may differ
    tab = table(storage)
    found: dict[str, float] = {}
    ident = _IDENTITIES.get((spec.device, placement))
    if ident is not None:
        keys = {h: latency_key(a, plain, given, spec, ident) for h, a in cells.items()}
        have = tab.lookup(keys.values())
        found = {h: have[k] for h, k in keys.items() if k in have}
    missing = [str(a) for h, a in cells.items() if h not in found]
    if missing:
        check_device(spec, wanted)
        ref = _measure_remote.options(**wanted).remote(cfg.to_dict(), storage, missing, plain, given, spec)
        ident, values, rows, part = _answer(ref, wanted, timeout_s)
        _IDENTITIES[(spec.device, placement)] = ident
        tab.remember(rows)
        if part is not None:
            tab.seen.add(part)
        found.update(values)
    return [found[a.equiv_hash()] for a in archs]


def _answer(ref: Any, wanted: dict[str, Any], timeout_s: float) -> Any:
    """A measuring task's result; a task no node could start in time, or bad input inside it, as one line."""
    try:
        return ray.get(ref, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise ClusterError(
            f"search.latency: no node could run the measurement within {timeout_s:g} s "
            f"(it asks for {wanted}); is every GPU held by trials?"
        ) from None
    except ray.exceptions.RayTaskError as e:
        said = one_line(e)
        if said is not None:
            raise said from None
        raise


def _enter_device(experiment: dict[str, Any], spec: LatencySpec) -> tuple[Entered, DeviceIdentity]:
    """In a measuring task: this process set up for ``spec`` (threads, the GPU Ray granted) and the measuring
    machine's identity; a device Ray did not grant is one line naming the node."""
    from search.latency import device_identity  # noqa: PLC0415  (torch is imported here)

    with naming_the_node("search.latency"):
        me = enter(experiment, "latency", threads=spec.threads, gpu_share=1.0 if spec.device == "cuda" else None)
        if spec.device == "cuda" and me.device != "cuda":
            raise InputError("search.latency: device cuda, but Ray granted this task no GPU that torch sees")
        return me, device_identity(spec.device)


def _measure_task(
    experiment: dict[str, Any], storage: str, archs: list[str], net: NetSpec, inputs: InputSpec, spec: LatencySpec
) -> tuple[DeviceIdentity, dict[str, float], list[dict[str, Any]], str | None]:
    """In Ray, where the device is: (this machine's identity, each class's latency, the rows it measured, the
    part file they went to).

    Looks the table up again first (another search or node may have measured since the driver looked), measures
    only what is still missing, and adds those rows to the table as one part file.
    """
    from search.latency import measure  # noqa: PLC0415  (torch is imported here)

    me, ident = _enter_device(experiment, spec)
    cells = [parse(a) for a in archs]
    keys = {a.equiv_hash(): latency_key(a, net, inputs, spec, ident) for a in cells}
    tab = table(storage)
    have = tab.lookup(keys.values())
    values = {h: have[k] for h, k in keys.items() if k in have}
    rows = []
    for a in cells:
        h = a.equiv_hash()
        if h in values:
            continue
        m = measure(a, net, inputs, spec)
        rows.append({**keys[h]._asdict(), "arch": str(a), **m, "measured": time.time(), "node": me.node})
        values[h] = float(m["latency_ms"])
    return ident, values, rows, tab.add(rows)


_measure_remote = ray.remote(max_retries=1)(_measure_task)


def exported_latency(
    cfg: ExperimentConfig, root: str, *, options: dict[str, Any] | None = None, timeout_s: float = WAIT_S
) -> dict[str, Any]:
    """The exported model's latency on ``cfg.search.latency``'s device, measured in one Ray task where that
    device is: its network in PyTorch (as the search measured every cell) and its ``torch.export`` program
    run from Python (``best_model.pt`` and ``best_model.pt2`` under ``root``), which adds a fixed cost per
    call; so the user sees what the deployed file costs beside what the search held to its bound."""
    spec = cfg.search.latency_spec
    wanted = task_resources(spec, options)
    check_device(spec, wanted)
    ref = _exported_remote.options(**wanted).remote(cfg.to_dict(), storage_path(root), spec)
    return dict(_answer(ref, wanted, timeout_s))


def _exported_task(experiment: dict[str, Any], root: str, spec: LatencySpec) -> dict[str, Any]:
    """In Ray, where the device is: :func:`exported_latency`'s figures, with the device and node they are of."""
    import torch  # noqa: PLC0415  (lazy: the driver of a lookup-only search never imports torch here)

    from search.latency import time_forward, torch_device  # noqa: PLC0415
    from search.nets import net_from  # noqa: PLC0415

    me, ident = _enter_device(experiment, spec)
    device = torch_device(spec.device)
    with naming_the_node("search.latency"):
        with local_copy(join(root, "best_model.pt")) as path:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        with local_copy(join(root, "best_model.pt2")) as path:
            program = torch.export.load(path)
    c, h, w = (int(v) for v in saved["input_shape"][1:])
    net = net_from(parse(saved["arch"]), me.cfg.net, InputSpec((c, h, w), int(saved["num_classes"])), device=device)
    net.load_state_dict(saved["state_dict"])
    if device != "cpu":
        from torch.export.passes import move_to_device_pass  # noqa: PLC0415

        program = move_to_device_pass(program, device)
    network = time_forward(net.eval(), (c, h, w), spec)
    exported = time_forward(program.module(), (c, h, w), spec)
    return {
        "device": spec.device,
        "device_name": ident.device_name,
        "torch": ident.torch,
        "threads": spec.threads,
        "batch": spec.batch,
        "node": me.node,
        "network_ms": float(network["latency_ms"]),
        "network_iqr_ms": float(network["latency_iqr_ms"]),
        "program_ms": float(exported["latency_ms"]),
        "program_iqr_ms": float(exported["latency_iqr_ms"]),
    }


_exported_remote = ray.remote(max_retries=1)(_exported_task)
