"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020).

A cell is a DAG on 4 nodes; each of its 6 edges (j <- i, i < j) carries one of 5 operations, so the
space holds 5**6 = 15,625 cells. :class:`Arch` is a frozen, validated, hashable value whose ``str``
is NAS-Bench-201's own string, so results join with the published tables. Every random operation
takes an explicit ``numpy.random.Generator``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import ArchError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_NODES = 4
# Edge order is NAS-Bench-201's string order: node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1, 2.
EDGES: tuple[tuple[int, int], ...] = tuple((j, i) for j in range(1, NUM_NODES) for i in range(j))
EDGE_KEYS: tuple[str, ...] = tuple(f"edge_{j}_{i}" for j, i in EDGES)


@dataclass(frozen=True)
class Arch:
    """One NB201 cell: ``ops[k]`` is the operation on ``EDGES[k]``."""

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.ops, tuple) or len(self.ops) != len(EDGES):
            raise ArchError(f"an NB201 cell has {len(EDGES)} edges, got {self.ops!r}")
        for op in self.ops:
            if op not in OPS:
                raise ArchError(f"unknown operation {op!r} (known: {', '.join(OPS)})")

    def __str__(self) -> str:
        nodes = []
        for j in range(1, NUM_NODES):
            nodes.append("|" + "|".join(f"{self.op(j, i)}~{i}" for i in range(j)) + "|")
        return "+".join(nodes)

    def op(self, j: int, i: int) -> str:
        return self.ops[EDGES.index((j, i))]

    def to_dict(self) -> dict[str, str]:
        """Six categorical choices keyed ``edge_<to>_<from>``; Tune's param_space uses these keys."""
        return dict(zip(EDGE_KEYS, self.ops, strict=True))

    @classmethod
    def from_dict(cls, choices: dict[str, str]) -> Arch:
        missing = [k for k in EDGE_KEYS if k not in choices]
        if missing:
            raise ArchError(f"missing edge choice(s): {', '.join(missing)}")
        return cls(tuple(choices[k] for k in EDGE_KEYS))

    def canonical(self) -> str:
        """The cell with dead edges removed and nodes 1/2 in a canonical order.

        Cells with equal canonical strings compute the same function family: an edge whose source
        carries no signal from the input, or whose target cannot reach the output, is dropped, and
        when nodes 1 and 2 are not connected they may swap places. Identities such as a
        ``skip_connect`` chain are not collapsed, so no two different functions are merged. (Like
        other NB201 isomorphism analyses, a conv on a zero input counts as zero, ignoring the
        constant that BatchNorm's bias would add.)
        """
        ops = dict(zip(EDGES, _prune(self), strict=True))
        variants = [ops]
        if ops[(2, 1)] == "none":
            swap = {0: 0, 1: 2, 2: 1, 3: 3}
            variants.append({(j, i): ops[(max(swap[j], swap[i]), min(swap[j], swap[i]))] for j, i in EDGES})
        return min(str(Arch(tuple(v[e] for e in EDGES))) for v in variants)

    def equiv_hash(self) -> str:
        """Short hash of :meth:`canonical`: the key for de-duplicating scores (memoised: searches
        and caches ask for it on every proposal, and there are only 15,625 cells)."""
        return _equiv_hash(self.ops)

    def mutate(self, rng: np.random.Generator) -> Arch:
        """Change the operation on one uniformly chosen edge to a different one."""
        k = int(rng.integers(len(EDGES)))
        choices = [o for o in OPS if o != self.ops[k]]
        ops = list(self.ops)
        ops[k] = choices[int(rng.integers(len(choices)))]
        return Arch(tuple(ops))

    def neighbours(self) -> list[Arch]:
        """All 24 cells one edge away, in a fixed order."""
        out = []
        for k in range(len(EDGES)):
            for o in OPS:
                if o != self.ops[k]:
                    out.append(Arch(self.ops[:k] + (o,) + self.ops[k + 1 :]))
        return out


@functools.cache
def _equiv_hash(ops: tuple[str, ...]) -> str:
    return hashlib.sha1(Arch(ops).canonical().encode()).hexdigest()[:16]


def _prune(arch: Arch) -> tuple[str, ...]:
    """Ops with every edge that cannot carry the input to the output set to ``none``."""
    live = {0}  # nodes that receive signal from the input
    for j in range(1, NUM_NODES):
        if any(arch.op(j, i) != "none" and i in live for i in range(j)):
            live.add(j)
    useful = {NUM_NODES - 1}  # nodes whose value can reach the output
    for i in range(NUM_NODES - 2, -1, -1):
        if any(arch.op(j, i) != "none" and j in useful for j in range(i + 1, NUM_NODES)):
            useful.add(i)
    return tuple(op if i in live and j in useful else "none" for (j, i), op in zip(EDGES, arch.ops, strict=True))


def parse(text: str) -> Arch:
    """Parse NAS-Bench-201's string; raise :class:`ArchError` saying what is wrong."""
    if not isinstance(text, str):
        raise ArchError(f"architecture must be a string, got {type(text).__name__}")
    s = text.strip()
    nodes = s.split("+")
    if len(nodes) != NUM_NODES - 1:
        raise ArchError(
            f"malformed architecture {text!r}: expected {NUM_NODES - 1} nodes separated by '+', got {len(nodes)}"
        )
    ops = []
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise ArchError(f"malformed architecture {text!r}: node {j} must look like |op~i|...|")
        parts = node[1:-1].split("|")
        if len(parts) != j:
            raise ArchError(f"malformed architecture {text!r}: node {j} needs {j} inputs, got {len(parts)}")
        for i, part in enumerate(parts):
            op, sep, src = part.partition("~")
            if not sep or src != str(i):
                raise ArchError(f"malformed architecture {text!r}: node {j} input {i} should be 'op~{i}', got {part!r}")
            if op not in OPS:
                raise ArchError(f"malformed architecture {text!r}: unknown operation {op!r} (known: {', '.join(OPS)})")
            ops.append(op)
    return Arch(tuple(ops))


def sample(rng: np.random.Generator) -> Arch:
    """One cell, uniformly over the 15,625."""
    return Arch(tuple(OPS[int(i)] for i in rng.integers(len(OPS), size=len(EDGES))))


def all_archs() -> list[Arch]:
    """Every cell of the space, in a fixed order (15,625)."""
    return list(cells())


@functools.lru_cache(maxsize=1)
def cells() -> tuple[Arch, ...]:
    """Every cell of the space, in a fixed order, built once (immutable, so safe to share)."""
    return tuple(iter_archs())


def iter_archs() -> Iterator[Arch]:
    for ops in itertools.product(OPS, repeat=len(EDGES)):
        yield Arch(tuple(ops))
