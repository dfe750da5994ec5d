"""Accuracy under a budget (issue #28): constraints screen cells before they are scored, several objectives
steer evolution (NSGA-II), the cheap rung and Tune's multi-objective searchers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from ray.tune.schedulers import TrialScheduler

from cluster.bench_search import run_repeat, strategy_config
from cluster.costs import CellCosts
from cluster.schedulers import RungHalving
from cluster.searchers import Deduplicated, RegularizedEvolution, make_searcher
from search import nb201
from search.config import ExperimentConfig, load_config
from search.errors import InputError
from search.pareto import non_dominated_ranks
from search.search_config import SearchConfig
from search.space import Arch, parse, sample

BOUND = 300_000  # params: NB201's cells (C=16, N=5) run from 73,306 to 1,531,546 parameters


def test_evolution_with_two_objectives_takes_its_parents_by_nsga2_order():
    s = RegularizedEvolution(["acc", "params"], ["max", "min"], population=4, tournament=4, seed=0)
    first = [s.suggest(f"t{i}") for i in range(4)]
    values = [(0.5, 9.0), (0.9, 1.0), (0.6, 5.0), (0.4, 8.0)]  # the second dominates every other member
    for i, (a, p) in enumerate(values):
        s.on_trial_complete(f"t{i}", {"acc": a, "params": p})
    assert s.population[1][1] == (0.9, 1.0)
    best = Arch.from_dict(first[1])
    for j in range(5):  # tournament = whole population: every child is one edge from the dominating member
        child = Arch.from_dict(s.suggest(f"c{j}"))
        assert sum(a != b for a, b in zip(child.ops, best.ops, strict=True)) == 1
    restored = RegularizedEvolution()
    restored.set_state(s.get_state())
    assert restored.metric == ["acc", "params"] and restored.population == s.population


def test_the_cheap_rung_promotes_by_nsga2_order_of_score_against_cost():
    rh = RungHalving(max_t=3, reduction_factor=2, costs=[("params", "min")])
    rh.set_search_properties("score", "max")

    class T:
        def __init__(self, i):
            self.trial_id = f"t{i}"

    def at_rung1(i, score, params):
        return rh.on_trial_result(None, T(i), {"training_iteration": 1, "score": score, "params": params})

    assert at_rung1(0, 0.5, 100.0) == TrialScheduler.CONTINUE  # alone: the best 1/2 of one
    assert at_rung1(1, 0.4, 200.0) == TrialScheduler.STOP  # dominated by t0
    # a lower score, but far cheaper: on the front with t0; among the best half by rank, then crowding
    assert at_rung1(2, 0.3, 10.0) == TrialScheduler.CONTINUE
    plain = RungHalving(max_t=3, reduction_factor=2)
    plain.set_search_properties("score", "max")
    for i, (s, p) in enumerate([(0.5, 100.0), (0.4, 200.0)]):
        plain.on_trial_result(None, T(i), {"training_iteration": 1, "score": s, "params": p})
    assert plain.on_trial_result(None, T(2), {"training_iteration": 1, "score": 0.3, "params": 10.0}) == "STOP"


def _bench(extra: list[str]) -> ExperimentConfig:
    return load_config("configs/nb201_bench.yaml", ["search.seed_proxy=null", *extra])


def test_a_constraint_almost_no_cell_meets_is_refused_before_the_search_with_the_share():
    cfg = _bench(["search.constraints=params<=70000"])  # below every cell (73,306 the fewest)
    with pytest.raises(InputError, match=r"search.constraints params<=70000: 0.0% of 200 sampled cells"):
        CellCosts(cfg, None).check_share(0)
    assert 0.2 < CellCosts(_bench([f"search.constraints=params<={BOUND}"]), None).check_share(0) < 0.9


@pytest.mark.parametrize("searcher", ["random", "evolution"])
def test_no_cell_that_breaks_a_constraint_is_handed_out_in_1000_evaluations(searcher):
    s = SearchConfig(
        evaluator="nb201",
        real_rungs=1,
        score="none",
        searcher=searcher,
        population=10,
        tournament=3,
        scheduler="fifo",
        constraints=f"params<={BOUND}",
        num_samples=1000,
    )
    rep = run_repeat(s, seed=0, evaluations=1000)
    assert len(rep.cells) == 1000
    assert max(nb201.proxy(parse(parse(c).canonical()), "params") for c in rep.suggested) <= BOUND


def test_the_searcher_wrapper_tells_the_inner_searcher_and_logs_each_refused_cell():
    cfg = _bench([f"search.constraints=params<={BOUND}"])
    logged: list[tuple[str, str]] = []

    class Log:
        def add(self, arch, reason):
            logged.append((str(arch), reason))

    inner = RegularizedEvolution("score", "max", population=5, tournament=2, seed=3)
    dedup = Deduplicated(inner, costs=CellCosts(cfg, None), log=Log())
    handed = [Arch.from_dict(dedup.suggest(f"t{i}")) for i in range(30)]
    assert all(nb201.proxy(parse(a.canonical()), "params") <= BOUND for a in handed)
    assert logged and all("params<=300000 (has " in r for _, r in logged)
    assert {parse(a).equiv_hash() for a, _ in logged} == dedup.infeasible  # never handed out, never asked again


@pytest.mark.timeout(600)
def test_a_multi_objective_optuna_search_runs_through_tune(ray_session, tmp_path):
    pytest.importorskip("optuna")
    from cluster.search_run import run_search  # noqa: PLC0415  (lazy: Ray after conftest's environment)

    cfg = _bench(
        [f"storage={tmp_path}", "name=mo", "search.searcher=optuna", "search.objectives=val_acc:max,params:min"]
        + ["search.num_samples=24", f"search.constraints=params<={BOUND}"]
    )
    final, root, _ = run_search(cfg)
    assert len(final) >= 20 and (final["params"] <= BOUND).all()
    rows = pd.read_parquet(f"{root}/leaderboard")
    assert rows["params"].notna().all() and rows["val_acc"].notna().all()
    statuses = pd.read_parquet(f"{root}/trials")
    refused = statuses[statuses["status"] == "INFEASIBLE"]
    assert refused["reason"].str.startswith("params<=300000").all()  # Optuna proposed some: told, recorded
    if "pareto_rank" in final:
        pts = final[["val_acc", "params"]].to_numpy(float)
        assert (final["pareto_rank"].to_numpy() == non_dominated_ranks(pts, ["max", "min"])).all()


def test_single_objective_searchers_are_unchanged_by_the_budget_settings():
    s = SearchConfig(evaluator="nb201", real_rungs=1, score="none", searcher="evolution", population=10, tournament=3)
    a = run_repeat(s, seed=5, evaluations=60)
    b = run_repeat(strategy_config("rea", 60), seed=5, evaluations=60)
    assert a.cells == b.cells
    assert make_searcher(s, seed=0).metric == "score" and np.isfinite(a.val).all()


@pytest.mark.e2e
@pytest.mark.timeout(900)
def test_a_real_search_under_a_latency_constraint_trains_only_cells_that_meet_it(ray_session, tmp_path):
    """Fashion-MNIST (the smoke budget): latency measured on this CPU, the bound at the median of a sample of
    cells, so about half of the space is refused before it is scored; the front of accuracy against latency."""
    from cluster.latency import latency_ms  # noqa: PLC0415  (lazy: Ray after conftest's environment)
    from cluster.retrain import run_retrain  # noqa: PLC0415
    from cluster.search_run import run_search  # noqa: PLC0415
    from search.shapes import InputSpec  # noqa: PLC0415
    from search.space import sample  # noqa: PLC0415

    base = [f"storage={tmp_path}", "name=lat", "search.num_samples=6", "search.real_rungs=1"]
    cfg = load_config("configs/smoke.yaml", base)
    rng = np.random.default_rng(0)
    sampled = latency_ms([sample(rng) for _ in range(24)], cfg, InputSpec((1, 28, 28), 10))
    bound = float(np.median(sampled))
    cfg = load_config(
        "configs/smoke.yaml",
        [*base, f"search.constraints=latency_ms<={bound:.4f}", "search.objectives=val_acc:max,latency_ms:min"],
    )
    final, root, _ = run_search(cfg)
    rows = pd.read_parquet(f"{root}/leaderboard")
    assert rows["latency_ms"].notna().all() and (rows["latency_ms"] <= bound).all()
    statuses = pd.read_parquet(f"{root}/trials")
    refused = statuses[statuses["status"] == "INFEASIBLE"]
    assert len(refused) and refused["reason"].str.startswith(f"latency_ms<={bound:.4f}".rstrip("0")).all()
    assert "pareto_rank" in final and (final["pareto_rank"].dropna() >= 0).all()
    retrained = run_retrain(str(root), top=1, epochs=0.02, seeds=1)  # the export is timed on the same device
    lat = json.loads((Path(root) / "best_model.json").read_text())["latency"]
    assert retrained.attrs["latency"] == lat and lat["bounds"] == [c.describe() for c in cfg.search.constraint_list]
    assert lat["network_ms"] > 0 and lat["program_ms"] > 0
    assert lat["program_meets_bounds"] == (lat["program_ms"] <= bound)


def test_a_latency_device_no_node_has_is_refused_before_the_search(ray_session, tmp_path):
    from cluster.search_run import check_constraints  # noqa: PLC0415  (lazy: Ray after conftest's environment)

    cfg = _bench([f"storage={tmp_path}", "search.objectives=val_acc:max,latency_ms:min", "search.latency=device=cuda"])
    with pytest.raises(InputError, match="search.latency: device cuda, but no node of this Ray cluster has a GPU"):
        check_constraints(cfg)


def test_a_seeded_first_population_with_several_objectives_is_the_proxys_front_against_the_cost():
    def proxy(archs):  # score: the number of convolutions; cost: the number of edges that are not none
        return [(sum(o.startswith("nor_conv") for o in a.ops), sum(o != "none" for o in a.ops)) for a in archs]

    s = RegularizedEvolution(["score", "params"], ["max", "min"], population=4, tournament=2, seed=0, proxy=proxy)
    rng = np.random.default_rng(0)  # the evolution's own draws of its seed sample, in order
    pool = [sample(rng) for _ in range(1000)]
    front = {p for p, r in zip(proxy(pool), non_dominated_ranks(proxy(pool), ["max", "min"]), strict=True) if r == 0}
    assert len(s.initial) == 4 and all(tuple(proxy([Arch.from_dict(c)])[0]) in front for c in s.initial)
    assert len({p for p in proxy([Arch.from_dict(c) for c in s.initial])}) > 1  # spread along the front, not one point
    one = RegularizedEvolution(
        "score", "max", population=4, tournament=2, seed=0, proxy=lambda a: [p[0] for p in proxy(a)]
    )
    best = sorted({a.equiv_hash(): p[0] for a, p in zip(pool, proxy(pool), strict=True)}.values(), reverse=True)[:4]
    assert sorted((proxy([Arch.from_dict(c)])[0][0] for c in one.initial), reverse=True) == best  # as before
