import numpy as np
import pandas as pd
import pytest

from search import nb201, space
from search.space import Arch, parse

PAPER = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_round_trip_and_order():
    a = parse(PAPER)
    assert str(a) == PAPER
    assert a.op(1, 0) == "nor_conv_3x3" and a.op(2, 1) == "avg_pool_3x3" and a.op(3, 2) == "skip_connect"
    assert Arch.from_dict(a.to_dict()) == a
    assert set(a.to_dict()) == set(space.EDGE_KEYS)
    assert hash(a) == hash(parse(PAPER)) and {a, parse(PAPER)} == {a}


def test_enumeration_matches_nasbench201_table():
    archs = space.all_archs()
    assert len(archs) == 15_625 == len(set(archs))
    table = pd.read_parquet(nb201.TABLE, columns=["arch"])
    assert set(map(str, archs)) == set(table["arch"])
    # every published string parses back to itself
    assert all(str(parse(s)) == s for s in table["arch"].iloc[::97])


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3 nodes"),
        (
            "|conv~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "unknown operation 'conv'",
        ),
        (
            "|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "should be 'op~0'",
        ),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|", "node 2 needs 2 inputs"),
        (
            "nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
            "node 1 must look like",
        ),
        ("", "expected 3 nodes"),
    ],
)
def test_malformed_strings_say_what_is_wrong(bad, reason):
    with pytest.raises(ValueError, match=reason):
        parse(bad)


def test_arch_validates_directly():
    with pytest.raises(ValueError, match="6 edges"):
        Arch(("none",) * 5)
    with pytest.raises(ValueError, match="unknown operation"):
        Arch(("none",) * 5 + ("conv",))


def test_sample_mutate_neighbours_are_seeded():
    a1 = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a1[0] == a1[1]
    rng = np.random.default_rng(0)
    samples = {space.sample(rng) for _ in range(200)}
    assert len(samples) > 190  # uniform over 15,625
    a = parse(PAPER)
    m = a.mutate(np.random.default_rng(1))
    assert sum(x != y for x, y in zip(a.ops, m.ops, strict=True)) == 1
    assert m == a.mutate(np.random.default_rng(1))
    nb = a.neighbours()
    assert len(nb) == 24 == len(set(nb)) and a not in nb
    assert all(sum(x != y for x, y in zip(a.ops, n.ops, strict=True)) == 1 for n in nb)
    assert m in nb


def test_equivalence_hash():
    # Edges out of a node that gets no input do not matter.
    dead1 = parse("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    dead2 = parse("|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|")
    assert dead1.equiv_hash() == dead2.equiv_hash()
    # Edges into a node that cannot reach the output do not matter.
    u1 = parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|none~2|")
    u2 = parse("|avg_pool_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert u1.equiv_hash() == u2.equiv_hash()
    # Nodes 1 and 2 swap when they are not connected.
    s1 = parse("|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|nor_conv_1x1~1|skip_connect~2|")
    s2 = parse("|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|")
    assert s1.equiv_hash() == s2.equiv_hash()
    # ...but not when they are: these compute different functions.
    c1 = parse("|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|skip_connect~2|")
    c2 = parse("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|skip_connect~1|nor_conv_1x1~2|")
    assert c1.equiv_hash() != c2.equiv_hash()
    assert parse(PAPER).equiv_hash() != dead1.equiv_hash()
    classes = {a.equiv_hash() for a in space.all_archs()}
    assert 4_000 < len(classes) < 15_625
