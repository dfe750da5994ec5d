import numpy as np

from cluster.searchers import RegularizedEvolution
from search.space import EDGE_KEYS, Arch


def _complete(s, tid, cfg, value):
    s.on_trial_complete(tid, {"gtn_score": value, **cfg})


def test_evolution_samples_then_mutates_the_tournament_winner():
    s = RegularizedEvolution("gtn_score", "max", population=4, tournament=4, seed=0)
    first = [s.suggest(f"t{i}") for i in range(4)]
    assert all(set(c) == set(EDGE_KEYS) for c in first)
    scores = [0.1, 0.9, 0.2, 0.3]
    for i, (c, v) in enumerate(zip(first, scores)):
        _complete(s, f"t{i}", c, v)
    best = Arch.from_dict(first[1])
    for j in range(5):  # tournament = whole population: every child is one edge from the best
        child = Arch.from_dict(s.suggest(f"c{j}"))
        assert sum(a != b for a, b in zip(child.ops, best.ops)) == 1


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
