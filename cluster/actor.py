"""The shared actor: one per experiment, serving the frozen curriculum and remembering scores.

:class:`ExperimentServer` is a plain class (testable without Ray). With a GTN score (``gtn`` alone or in a
combination) it loads the teacher checkpoint (any pyarrow.fs URI), materialises the curriculum once and
puts it into the object store as numpy arrays, so every trial on a node maps the same shared-memory copy
instead of receiving its own; only the curriculum goes there (each trial reads the validation split from
its own node's data). It also keeps the rung-1 score cache (key from :meth:`search.scoring.Scorer.key`),
the components of every class scored (a combined score ranks each among them), in benchmark mode the
first table result of each equivalence class, and the (rung-1 score, real accuracy) pairs behind the
live rho.

The leaderboard is its memory: a (re)started server rebuilds all of them from the experiment's
leaderboard parts (:meth:`ExperimentServer.rebuild`), so an actor restart or a driver resume keeps them.
:func:`start_teacher_actor` wraps it for Ray in one place: named, namespaced, no CPU, no GPU,
restarted forever.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import ray

from cluster.entry import enter, naming_the_node, node_dataset
from results.leaderboard import calibration_pairs, live_calibration, read_parts
from results.storage import local_copy
from search.config import config_from_dict
from search.errors import LeaderboardError
from search.scoring import COMPONENTS, EXTRA_COLUMNS

ACTOR_NAME = "gtn-teacher"
RUNG1_FIELDS = (*COMPONENTS.values(), *EXTRA_COLUMNS)  # what a cached rung-1 score holds


def curriculum_to_arrays(cur: Any) -> dict[str, Any]:
    """Numpy arrays (shared-memory in Ray's object store) plus the small metadata."""
    d = cur.to_dict()
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in d.items()}


def curriculum_from_arrays(d: dict[str, Any]) -> Any:
    """A :class:`search.curriculum.Curriculum` over the arrays; tensors share their memory (read-only)."""
    import torch  # noqa: PLC0415  (lazy: benchmark-mode trials and the actor run without torch)

    from search.curriculum import Curriculum  # noqa: PLC0415  (lazy: torch, as above)

    with warnings.catch_warnings():  # object-store arrays are read-only; nothing writes to them
        warnings.simplefilter("ignore", UserWarning)
        tensors = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in d.items()}
    return Curriculum.from_dict(tensors)


def fetch_curriculum(actor: Any) -> Any:
    """The curriculum behind the actor's object-store ref. Ray retries the call across the actor's restarts,
    but an object the actor put dies with it: a ref handed out before a restart is asked for once more."""
    try:
        return curriculum_from_arrays(ray.get(ray.get(actor.refs.remote())[0]))
    except ray.exceptions.ObjectLostError:  # OwnerDiedError among them
        return curriculum_from_arrays(ray.get(ray.get(actor.refs.remote())[0]))


class ExperimentServer:
    """The experiment's shared state: the curriculum's ref (GTN score only), the rung-1 score cache, the
    components of every class scored, first table results and the live rho's (score, accuracy) pairs."""

    def __init__(
        self,
        experiment: dict[str, Any],
        teacher_uri: str | None,
        root: str | None = None,
        data: Callable[[], Any] | None = None,
    ):
        """``data``: how to get the data set (default: found or fetched here, on the CPU)."""
        self.cfg = config_from_dict(experiment, "<actor>")
        self.scorer = self.cfg.search.scorer
        self.curriculum: Any = None
        self.class_names: list[str] = []
        self._arrays: dict[str, Any] | None = None
        self.where: dict[str, str] = {}
        if self.cfg.search.uses_gtn:
            if teacher_uri is None:  # cluster.teacher_stage.ensure_teacher gives every GTN search one
                raise ValueError("a GTN-scored search needs its teacher's URI")
            self._load(teacher_uri, data or (lambda: node_dataset(self.cfg.data, "cpu")[0]))
        self._ref: Any = None
        self.cache: dict[str, dict[str, float]] = {}
        self.first: dict[str, dict[str, Any]] = {}
        self.pairs: dict[str, tuple[float, float]] = {}
        self.parts: dict[str, dict[str, float]] = {}  # combined score: class -> its components
        self.rebuilt = self.rebuild(root) if root else 0

    def _load(self, teacher_uri: str, get_data: Callable[[], Any]) -> None:
        from search.teacher_files import load_teacher  # noqa: PLC0415  (lazy: torch only with a GTN teacher)

        data = get_data()
        self.class_names = list(data.class_names)
        with local_copy(teacher_uri) as path:
            loaded = load_teacher(path, expect_dataset=data.identity)
        self.curriculum = loaded.curriculum(real=data.train)
        self._arrays = curriculum_to_arrays(self.curriculum)

    def rebuild(self, root: str) -> int:
        """Refill cache, first table results and calibration pairs from the leaderboard; returns rows read.

        Only rows of this configuration (``config_hash``) count, and no rows of LOST trials.
        """
        try:
            df = read_parts(root)
        except LeaderboardError:
            return 0
        df = df[df["config_hash"] == self.cfg.hash()]
        first = df[df["rung"] == 1].dropna(subset=["rung1_score"]) if not self.scorer.none else df.iloc[:0]
        for row in first.to_dict("records"):
            key = self.scorer.key(row["arch_hash"], row["curriculum"], self.cfg.net, self.cfg.seed)
            self.cache.setdefault(key, {k: row[k] for k in RUNG1_FIELDS if row.get(k) == row.get(k)})
        if self.cfg.search.evaluation.looks_up:
            real = df.dropna(subset=["val_acc"]).sort_values("timestamp", kind="mergesort")
            for row in real.drop_duplicates("arch_hash").to_dict("records"):
                self.first[row["arch_hash"]] = {
                    "val_acc": row["val_acc"],
                    "test_acc": row["test_acc"],
                    "sim_epochs": row["sim_epochs"],
                }
        self.pairs = {h: p for h, p in calibration_pairs(df, "rung1_score").items()}
        if self.scorer.combined:
            for row in first.drop_duplicates("arch_hash").to_dict("records"):
                self.parts[row["arch_hash"]] = {c: row[c] for c in self.scorer.columns}
        return len(df)

    def info(self) -> dict[str, Any]:
        base = {"cached_scores": len(self.cache), "calibration_n": len(self.pairs), "rebuilt_rows": self.rebuilt}
        c = self.curriculum
        if c is None:
            return {**base, "content_hash": None}
        return {
            **base,
            "content_hash": c.content_hash,
            "steps": c.steps,
            "batch": int(c.images.shape[1]),
            "dataset": c.dataset,
            "norm": c.norm,
            "class_names": self.class_names,
            **self.where,
        }

    def refs(self) -> list[Any]:
        """[the curriculum's ref], in a list so Ray hands back the ref itself (put once, on first call)."""
        if self._ref is None:
            self._ref = ray.put(self._arrays)
        return [self._ref]

    def lookup(self, key: str) -> dict[str, float] | None:
        return self.cache.get(key)

    def store(self, key: str, metrics: dict[str, float]) -> None:
        self.cache.setdefault(key, metrics)

    def first_result(self, arch_hash: str, result: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """(the class's first real result, whether it is ``result`` itself): one evaluation per class."""
        if arch_hash in self.first:
            return self.first[arch_hash], False
        self.first[arch_hash] = result
        return result, True

    def record(self, arch_hash: str, score: float, val_acc: float) -> dict[str, float]:
        """Keep the latest real-data accuracy per class; return the live rho."""
        self.pairs[arch_hash] = (score, val_acc)
        return self.calibration()

    def combine(self, arch_hash: str, parts: dict[str, float]) -> float:
        """A combined rung-1 score: the components (by column), equal weights on their ranks among the
        classes scored so far, this one included."""
        self.parts[arch_hash] = parts
        return self.scorer.value(parts, list(self.parts.values()))

    def rescore(self, arch_hashes: list[str]) -> list[float]:
        """The combined rung-1 scores of these classes among the classes scored by now (one ranking for
        all, so the scheduler compares like with like); NaN for a class whose components it lacks."""
        cal = self.scorer.combination(list(self.parts.values()))
        return [self.scorer.value_on(cal, self.parts[h]) if h in self.parts else float("nan") for h in arch_hashes]

    def calibration(self) -> dict[str, Any]:
        return live_calibration(self.pairs)

    def state(self) -> dict[str, Any]:
        """Everything it remembers (tests compare it with what the leaderboard holds)."""
        return {"cache": dict(self.cache), "first": dict(self.first), "pairs": dict(self.pairs)}


def start_teacher_actor(
    experiment: dict[str, Any], teacher_uri: str | None, namespace: str, root: str | None = None
) -> Any:
    """The one place where :class:`ExperimentServer` becomes a Ray actor (or the running one is reused).

    It serves arrays and remembers numbers, so it asks for no CPU and no GPU.
    """
    remote_cls = ray.remote(num_cpus=0, num_gpus=0, max_restarts=-1, max_task_retries=-1)(_ActorServer)
    return remote_cls.options(name=ACTOR_NAME, namespace=namespace, get_if_exists=True, lifetime=None).remote(
        experiment, teacher_uri, root
    )


class _ActorServer(ExperimentServer):
    """:class:`ExperimentServer` inside Ray: it comes in through :func:`cluster.entry.enter` like every Ray process."""

    def __init__(self, experiment: dict[str, Any], teacher_uri: str | None, root: str | None = None):
        with naming_the_node("the shared actor"):
            me = enter(experiment, "actor", threads=1)
            super().__init__(experiment, teacher_uri, root, data=me.data)
        if self.curriculum is not None:
            self.where = {"node": me.node, "data": me.data_origin()}
            print(f"shared actor: on node {me.node}, {me.cfg.data.dataset} {me.data_origin()}", flush=True)


def get_teacher_actor(namespace: str) -> Any:
    return ray.get_actor(ACTOR_NAME, namespace=namespace)
