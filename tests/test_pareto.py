"""Multi-objective maths against brute force written here: ranks by peeling fronts, crowding by a loop per
front, hypervolume as the union of boxes summed cell by cell on the grid of all coordinates."""

import itertools
import math

import numpy as np
import pytest

from search.errors import InputError
from search.pareto import (
    Constraint,
    Objective,
    crowding_distance,
    hypervolume,
    minimised,
    non_dominated_ranks,
    nsga2_order,
    pareto_front,
    parse_constraints,
    parse_objectives,
    violations,
)

MODES = {2: ("max", "min"), 3: ("min", "max", "min")}


def points(seed: int, n: int, k: int, ties: bool = True, nans: int = 0) -> np.ndarray:
    """Random rows; small integers make ties and duplicates likely."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 6, (n, k)).astype(float) if ties else rng.uniform(0, 10, (n, k))
    if nans:
        p[rng.choice(n, nans, replace=False), rng.integers(0, k, nans)] = np.nan
    return p


def brute_dominates(a: np.ndarray, b: np.ndarray, modes: tuple[str, ...]) -> bool:
    """a dominates b in the original senses; a NaN row dominates nothing and every finite row dominates it."""
    a_nan, b_nan = bool(np.isnan(a).any()), bool(np.isnan(b).any())
    if a_nan or b_nan:
        return b_nan and not a_nan
    better = [(x < y) if m == "min" else (x > y) for x, y, m in zip(a, b, modes, strict=True)]
    worse = [(x > y) if m == "min" else (x < y) for x, y, m in zip(a, b, modes, strict=True)]
    return any(better) and not any(worse)


def brute_ranks(p: np.ndarray, modes: tuple[str, ...]) -> list[int]:
    left, ranks, r = set(range(len(p))), [-1] * len(p), 0
    while left:
        front = {i for i in left if not any(brute_dominates(p[j], p[i], modes) for j in left)}
        for i in front:
            ranks[i] = r
        left -= front
        r += 1
    return ranks


def brute_crowding(p: np.ndarray, modes: tuple[str, ...], ranks: list[int]) -> list[float]:
    q = minimised(p, modes)
    out = [0.0] * len(p)
    for r in set(ranks):
        front = [i for i in range(len(p)) if ranks[i] == r]
        if len(front) <= 2:
            for i in front:
                out[i] = math.inf
            continue
        for j in range(p.shape[1]):
            order = sorted(front, key=lambda i, j=j: (q[i, j], i))
            lo, hi = q[order[0], j], q[order[-1], j]
            for pos in range(1, len(order) - 1):
                if math.isfinite(lo) and math.isfinite(hi) and hi > lo:
                    out[order[pos]] += (q[order[pos + 1], j] - q[order[pos - 1], j]) / (hi - lo)
            out[order[0]] = out[order[-1]] = math.inf
    return out


def brute_hv(p: np.ndarray, modes: tuple[str, ...], reference: list[float]) -> float:
    """Volume of the union of the boxes [row, reference], minimised by hand, summed over the grid cells they cover."""
    sign = np.array([1.0 if m == "min" else -1.0 for m in modes])
    q = p[~np.isnan(p).any(axis=1)] * sign
    ref = np.array(reference) * sign
    axes = [sorted({float(v) for v in q[:, j] if v < ref[j]} | {float(ref[j])}) for j in range(len(ref))]
    total = 0.0
    for cell in itertools.product(*(range(len(a) - 1) for a in axes)):
        lower = np.array([axes[j][c] for j, c in enumerate(cell)])
        if (q <= lower).all(axis=1).any():
            total += math.prod(axes[j][c + 1] - axes[j][c] for j, c in enumerate(cell))
    return total


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_ranks_match_peeling_fronts(k, seed):
    p = points(seed, 40, k, ties=seed % 2 == 0, nans=3 if seed % 3 == 0 else 0)
    got = non_dominated_ranks(p, MODES[k])
    assert got.tolist() == brute_ranks(p, MODES[k])
    assert (pareto_front(p, MODES[k]) == (got == 0)).all()


def test_duplicates_share_a_rank_and_nan_rows_come_last():
    p = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0], [np.nan, 0.0], [0.0, np.nan], [3.0, 0.5]])
    assert non_dominated_ranks(p, ("min", "min")).tolist() == [0, 0, 1, 2, 2, 0]
    assert np.isinf(minimised(p, ("min", "max"))[3:5]).all()
    assert minimised(p, ("min", "max"))[0].tolist() == [1.0, -1.0]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_crowding_matches_a_loop_per_front(k, seed):
    p = points(seed + 10, 50, k, ties=seed % 2 == 0, nans=4 if seed % 3 == 0 else 0)
    ranks = non_dominated_ranks(p, MODES[k])
    got = crowding_distance(p, MODES[k], ranks)
    want = brute_crowding(p, MODES[k], ranks.tolist())
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert not np.isnan(got).any()


def test_nsga2_order_is_rank_then_crowding_then_index():
    p = points(3, 60, 2, nans=5)
    ranks = non_dominated_ranks(p, MODES[2])
    crowd = crowding_distance(p, MODES[2], ranks)
    want = sorted(range(len(p)), key=lambda i: (ranks[i], -crowd[i], i))
    assert nsga2_order(p, MODES[2]).tolist() == want


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("seed", range(8))
def test_hypervolume_matches_the_grid(k, seed):
    modes = {1: ("max",), 2: MODES[2], 3: MODES[3]}[k]
    p = points(seed + 20, 12, k, ties=seed % 2 == 0, nans=2 if seed % 4 == 0 else 0)
    reference = [0.5 if m == "max" else 5.0 for m in modes]  # some rows fall outside it on purpose
    assert hypervolume(p, modes, reference) == pytest.approx(brute_hv(p, modes, reference), rel=1e-12, abs=1e-12)


def test_hypervolume_known_answers():
    stairs = [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]
    assert hypervolume(stairs, ("min", "min"), [4.0, 4.0]) == pytest.approx(6.0)
    assert hypervolume([[0.9, 1000.0]], ("max", "min"), [0.0, 3000.0]) == pytest.approx(0.9 * 2000)
    cube = [[0.0, 0.0, 0.0]]
    assert hypervolume(cube, ("min",) * 3, [2.0, 3.0, 4.0]) == pytest.approx(24.0)
    assert hypervolume([[0.7], [0.8]], ("max",), [0.5]) == pytest.approx(0.3)
    assert hypervolume(np.empty((0, 2)), ("min", "min"), [1.0, 1.0]) == 0.0


@pytest.mark.parametrize("k", [2, 3])
def test_hypervolume_invariances(k):
    modes = MODES[k]
    p = points(7, 10, k, ties=False)
    ref = [-1.0 if m == "max" else 11.0 for m in modes]
    base = hypervolume(p, modes, ref)
    dominated = p[0] + np.array([-0.5 if m == "max" else 0.5 for m in modes])  # worse than row 0 everywhere
    assert hypervolume(np.vstack([p, dominated]), modes, ref) == pytest.approx(base, rel=1e-12)
    on_edge = np.array(ref, float)
    on_edge[0] = -100.0 if modes[0] == "max" else 100.0  # hugely good in the rest, outside in the first
    on_edge[1:] = [50.0 if m == "max" else -50.0 for m in modes[1:]]
    outside = on_edge.copy()
    on_edge[0] = ref[0]  # not strictly inside either
    assert hypervolume(np.vstack([p, outside, on_edge, [np.nan] * k]), modes, ref) == pytest.approx(base, rel=1e-12)
    flipped = tuple("min" if m == "max" else "max" for m in modes[:1]) + modes[1:]
    negated, ref_neg = p.copy(), list(ref)
    negated[:, 0] *= -1
    ref_neg[0] *= -1
    assert hypervolume(negated, flipped, ref_neg) == pytest.approx(base, rel=1e-12)
    order = np.random.default_rng(0).permutation(len(p))
    assert hypervolume(p[order], modes, ref) == pytest.approx(base, rel=1e-12)


def test_a_few_hundred_points_in_three_objectives_is_quick():
    rng = np.random.default_rng(1)
    x = rng.dirichlet(np.ones(3), 300)  # on a simplex: all mutually non-dominated
    assert (non_dominated_ranks(x, ("min",) * 3) == 0).all()
    hv = hypervolume(x, ("min",) * 3, [1.0, 1.0, 1.0])
    assert 0.75 < hv < 5 / 6  # inside the part of the cube above the simplex, with small gaps between the boxes
    assert non_dominated_ranks(rng.uniform(size=(2000, 2)), ("min", "max")).shape == (2000,)


def test_parse_objectives():
    assert parse_objectives("val_acc:max,latency_ms:min") == (
        Objective("val_acc", "max"),
        Objective("latency_ms", "min"),
    )
    assert parse_objectives(" val_acc , params ") == (Objective("val_acc", "max"), Objective("params", "min"))
    assert parse_objectives("params:max") == (Objective("params", "max"),)


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("val_acc,accuracy", "'accuracy'"),
        ("val_acc:maximum", "'maximum'"),
        ("val_acc:", "''"),
        ("val_acc,params,val_acc:max", "'val_acc' given twice"),
        ("", "no objectives"),
        ("  ", "no objectives"),
        ("val_acc,,params", "empty objective"),
    ],
)
def test_bad_objectives(text, part):
    with pytest.raises(InputError, match=part) as e:
        parse_objectives(text)
    assert "\n" not in str(e.value)


def test_unknown_objective_lists_the_known_ones():
    with pytest.raises(InputError, match="val_acc, test_acc, score, params, flops, latency_ms"):
        parse_objectives("acc")


def test_parse_constraints_and_violations():
    cs = parse_constraints("params<=60000, latency_ms < 1.5,flops>=1e6")
    assert cs == (
        Constraint("params", "<=", 60000.0),
        Constraint("latency_ms", "<", 1.5),
        Constraint("flops", ">=", 1e6),
    )
    assert [c.describe() for c in cs] == ["params<=60000", "latency_ms<1.5", "flops>=1000000"]
    assert parse_constraints("") == ()
    assert cs[0].holds(60000) and not cs[1].holds(1.5) and not cs[0].holds(float("nan"))
    assert Constraint("flops", ">", 0.0).holds(1.0) and not Constraint("flops", ">", 0.0).holds(0.0)
    costs = {"params": 81234.0, "latency_ms": 1.2, "flops": 2e6}
    assert violations(cs, costs) == ["params<=60000 (has 81234)"]
    assert violations(cs, {"params": 1.0, "latency_ms": 1.2, "flops": 2e6}) == []
    with pytest.raises(ValueError, match="'flops'") as e:
        violations(cs, {"params": 1.0, "latency_ms": 1.0})
    assert not isinstance(e.value, InputError)


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("size<=10", "unknown cost 'size'"),
        ("params=10", "'params=10'"),
        ("params", "'params'"),
        ("params<=", "bound '' is not a number"),
        ("params<=lots", "'lots' is not a number"),
        ("params<=nan", "not a finite number"),
        ("params<=-5", "negative"),
        ("params<=60000,,flops<=1", "''"),
    ],
)
def test_bad_constraints(text, part):
    with pytest.raises(InputError, match=part) as e:
        parse_constraints(text)
    assert "\n" not in str(e.value)


def test_shape_and_mode_mistakes_are_bugs():
    with pytest.raises(ValueError, match="shape"):
        non_dominated_ranks([[1.0, 2.0]], ("min",))
    with pytest.raises(ValueError, match="'up'"):
        minimised([[1.0]], ("up",))
    with pytest.raises(ValueError, match="reference"):
        hypervolume([[1.0, 2.0]], ("min", "min"), [1.0])
