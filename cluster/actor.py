"""The shared GTN actor: one per experiment, serving the frozen curriculum to every trial.

:class:`TeacherServer` is a plain class (testable without Ray). It loads the teacher checkpoint
(any pyarrow.fs URI), materialises the curriculum once and puts it, with the validation split, into
the object store as numpy arrays, so every trial on a node reads the same shared-memory copy
without copying. It also keeps the score cache (equivalence hash + scorer settings -> metrics) and
the (GTN score, real accuracy) pairs behind live calibration. :func:`start_teacher_actor` wraps it
for Ray in one place: named, namespaced, no CPU, restarted forever; a restarted actor rebuilds the
same curriculum (same content hash) from the same checkpoint.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from search.stats import spearman

ACTOR_NAME = "gtn-teacher"


def curriculum_to_arrays(cur: Any) -> dict[str, Any]:
    """Numpy arrays (zero-copy in Ray's object store) plus the small metadata."""
    d = cur.to_dict()
    return {k: (v.numpy() if hasattr(v, "numpy") else v) for k, v in d.items()}


def curriculum_from_arrays(d: dict[str, Any]) -> Any:
    import torch

    from search.curriculum import Curriculum

    tensors = {k: torch.from_numpy(np.array(v)) if isinstance(v, np.ndarray) else v for k, v in d.items()}
    return Curriculum.from_dict(tensors)


class TeacherServer:
    """Loads the teacher, owns the curriculum and validation refs, the score cache and calibration."""

    def __init__(self, experiment: dict[str, Any], teacher_uri: str):
        import torch

        from cluster.storage import fetch_to_local
        from search.config import config_from_dict
        from search.data import load_dataset
        from search.teach import load_teacher

        torch.set_num_threads(1)
        self.cfg = config_from_dict(experiment, "<actor>")
        d = self.cfg.data
        loaded = load_teacher(fetch_to_local(teacher_uri), expect_dataset=d.dataset)
        data = load_dataset(d.dataset, d.root, split_seed=d.split_seed, train_subset=d.train_subset,
                            val_subset=d.val_subset)
        self.curriculum = loaded.curriculum(real=data.train)
        self._arrays = curriculum_to_arrays(self.curriculum)
        self._val = {"x": data.val.x.numpy(), "y": data.val.y.numpy()}
        self._refs: dict[str, Any] | None = None
        self.cache: dict[str, dict[str, float]] = {}
        self.pairs: dict[str, tuple[float, float]] = {}

    def _ensure_refs(self) -> dict[str, Any]:
        if self._refs is None:
            import ray

            self._refs = {"curriculum": ray.put(self._arrays), "val": ray.put(self._val)}
        return self._refs

    def info(self) -> dict[str, Any]:
        c = self.curriculum
        return {"content_hash": c.content_hash, "steps": c.steps, "batch": int(c.images.shape[1]),
                "dataset": c.dataset, "norm": c.norm, "cached_scores": len(self.cache)}

    def refs(self) -> tuple[Any, Any]:
        """[curriculum ref], [validation ref], wrapped in lists so Ray hands back the refs themselves."""
        r = self._ensure_refs()
        return [r["curriculum"]], [r["val"]]

    def lookup(self, key: str) -> dict[str, float] | None:
        return self.cache.get(key)

    def store(self, key: str, metrics: dict[str, float]) -> None:
        self.cache.setdefault(key, metrics)

    def record(self, arch_hash: str, gtn_score: float, val_acc: float) -> dict[str, float]:
        """Keep the latest real-data accuracy per architecture; return the live calibration."""
        self.pairs[arch_hash] = (gtn_score, val_acc)
        return self.calibration()

    def calibration(self) -> dict[str, float]:
        n = len(self.pairs)
        if n < 10:
            return {"calibration_n": n}
        g, v = zip(*self.pairs.values())
        return {"calibration_n": n, "proxy_rho": spearman(list(g), list(v))}


def start_teacher_actor(experiment: dict[str, Any], teacher_uri: str, namespace: str, num_gpus: float = 0.0) -> Any:
    """The one place where :class:`TeacherServer` becomes a Ray actor (or the running one is reused)."""
    import ray

    remote_cls = ray.remote(num_cpus=0, num_gpus=num_gpus, max_restarts=-1, max_task_retries=-1)(TeacherServer)
    return remote_cls.options(name=ACTOR_NAME, namespace=namespace, get_if_exists=True,
                              lifetime=None).remote(experiment, teacher_uri)


def get_teacher_actor(namespace: str) -> Any:
    import ray

    return ray.get_actor(ACTOR_NAME, namespace=namespace)
