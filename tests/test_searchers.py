import time

import numpy as np

from cluster.searchers import Deduplicated, RandomSearch, RegularizedEvolution
from search.space import EDGE_KEYS, Arch, cells, sample


def _complete(s, tid, cfg, value):
    s.on_trial_complete(tid, {"gtn_score": value, **cfg})


def test_evolution_samples_then_mutates_the_tournament_winner():
    s = RegularizedEvolution("gtn_score", "max", population=4, tournament=4, seed=0)
    first = [s.suggest(f"t{i}") for i in range(4)]
    assert all(set(c) == set(EDGE_KEYS) for c in first)
    scores = [0.1, 0.9, 0.2, 0.3]
    for i, (c, v) in enumerate(zip(first, scores, strict=True)):
        _complete(s, f"t{i}", c, v)
    best = Arch.from_dict(first[1])
    for j in range(5):  # tournament = whole population: every child is one edge from the best
        child = Arch.from_dict(s.suggest(f"c{j}"))
        assert sum(a != b for a, b in zip(child.ops, best.ops, strict=True)) == 1


def test_aging_removes_the_oldest_not_the_worst():
    s = RegularizedEvolution("gtn_score", "max", population=3, tournament=2, seed=1)
    configs = [s.suggest(f"t{i}") for i in range(3)]
    for i, c in enumerate(configs):
        _complete(s, f"t{i}", c, [0.9, 0.1, 0.2][i])
    newcomer = s.suggest("t3")
    _complete(s, "t3", newcomer, 0.05)
    assert len(s.population) == 3
    assert [m[1] for m in s.population] == [0.1, 0.2, 0.05]  # the best (oldest) one aged out


def test_errors_and_unknown_trials_are_ignored():
    s = RegularizedEvolution("gtn_score", "max", population=2, tournament=1, seed=0)
    c = s.suggest("a")
    s.on_trial_complete("a", None, error=True)
    s.on_trial_complete("zzz", {"gtn_score": 1.0})
    assert not s.population and "a" not in s.pending and c


def test_save_restore_continues_identically(tmp_path):
    s = RegularizedEvolution("gtn_score", "max", population=3, tournament=2, seed=7)
    for i in range(5):
        c = s.suggest(f"t{i}")
        _complete(s, f"t{i}", c, float(np.random.default_rng(i).random()))
    s.suggest("pending")
    s.save(str(tmp_path / "evo.pkl"))
    r = RegularizedEvolution(population=99, tournament=1, seed=123)
    r.restore(str(tmp_path / "evo.pkl"))
    assert r.metric == "gtn_score" and r.mode == "max" and "pending" in r.pending
    assert [s.suggest(f"n{i}") for i in range(6)] == [r.suggest(f"n{i}") for i in range(6)]


def test_seeded():
    a = RegularizedEvolution("gtn_score", "max", seed=3)
    b = RegularizedEvolution("gtn_score", "max", seed=3)
    assert [a.suggest(str(i)) for i in range(5)] == [b.suggest(str(i)) for i in range(5)]


def test_dedup_never_hands_out_an_equivalent_cell_and_feeds_back_known_scores():
    inner = RegularizedEvolution("rung1_score", "max", population=4, tournament=2, seed=0)
    s = Deduplicated(inner, seed=0)
    seen = set()
    for i in range(60):  # evolution mutates dead edges often: many proposals are equivalent to earlier ones
        c = s.suggest(f"t{i}")
        h = Arch.from_dict(c).equiv_hash()
        assert h not in seen
        seen.add(h)
        s.on_trial_complete(f"t{i}", {"rung1_score": float(i % 7), **c})
    assert s.repeats > 0  # duplicates were proposed and answered from memory...
    assert len(inner.history) == 60 + s.repeats  # ...and the inner searcher learned their known scores


def test_dedup_state_round_trips(tmp_path):
    a = Deduplicated(RandomSearch("rung1_score", "max", seed=3), seed=3)
    for i in range(20):
        c = a.suggest(f"t{i}")
        a.on_trial_complete(f"t{i}", {"rung1_score": 0.5, **c})
    a.save(str(tmp_path / "s.pkl"))
    b = Deduplicated(RandomSearch("rung1_score", "max", seed=99), seed=99)
    b.restore(str(tmp_path / "s.pkl"))
    assert [a.suggest(f"n{i}") for i in range(10)] == [b.suggest(f"n{i}") for i in range(10)]


def test_seeded_evolution_starts_from_the_proxy_best_cells():
    def proxy(archs):  # a made-up proxy: count of 3x3 convs
        return [a.ops.count("nor_conv_3x3") for a in archs]

    s = RegularizedEvolution("score", "max", population=5, tournament=2, seed=0, proxy=proxy, seed_sample=200)
    first = [Arch.from_dict(s.suggest(f"t{i}")) for i in range(5)]
    rng = np.random.default_rng(0)
    pool = sorted((a.ops.count("nor_conv_3x3") for a in (sample(rng) for _ in range(200))), reverse=True)
    assert sorted((a.ops.count("nor_conv_3x3") for a in first), reverse=True) == pool[:5]
    assert len({a.equiv_hash() for a in first}) == 5


def test_dedup_finds_the_last_unseen_classes_then_lets_duplicates_through():
    """Near exhaustion the fallback draws among unseen classes directly (rejection sampling over the
    whole space slowed a 10,000-trial search tenfold); once every class is seen, a repeat gets through."""
    classes = {}
    for a in cells():
        classes.setdefault(a.equiv_hash(), a)
    left = sorted(classes)[:3]
    s = Deduplicated(RandomSearch("rung1_score", "max", seed=5), seed=5, tries=5)
    s.seen = {h: 0.5 for h in classes if h not in left}
    start = time.perf_counter()
    got = [Arch.from_dict(s.suggest(f"t{i}")).equiv_hash() for i in range(3)]
    assert sorted(got) == left
    assert time.perf_counter() - start < 2.0  # three draws, not a walk through thousands of samples
    assert Arch.from_dict(s.suggest("t3")).equiv_hash() in classes  # exhausted: a known class again


def test_dedup_refuses_a_trial_id_it_has_handed_out_and_remembers_ids_across_restore(tmp_path):
    s = Deduplicated(RandomSearch("rung1_score", "max", seed=1), seed=1)
    first = s.suggest("a")
    assert isinstance(first, dict)
    assert s.suggest("a") is None and s.refused == 1  # Tune drew the id again: no second trial under it
    assert isinstance(s.suggest("b"), dict)
    s.save(str(tmp_path / "s.pkl"))
    r = Deduplicated(RandomSearch("rung1_score", "max", seed=1), seed=1)
    r.restore(str(tmp_path / "s.pkl"))
    assert r.suggest("b") is None and isinstance(r.suggest("c"), dict)
