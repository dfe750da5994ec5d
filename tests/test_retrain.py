"""Retrain and export on the smoke search: final.parquet, a checkpoint and a torch.export file that loads alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import torch

from cluster.cli import main
from cluster.retrain import deployed
from search.nets import build_net, count_params, net_from
from search.shapes import InputSpec, NetSpec
from search.space import parse

# Load the export in an interpreter where this project's packages cannot be imported.
STANDALONE = """
import json, sys
sys.modules.update({m: None for m in ("search", "cluster", "results")})
import torch
files = {"gtnnas.json": ""}
model = torch.export.load(sys.argv[1], extra_files=files).module()
info = json.loads(files["gtnnas.json"])
x = torch.load(sys.argv[2])
torch.save(model(x), sys.argv[3])
print(json.dumps(info))
"""


def test_retrain_writes_final_table_checkpoint_and_a_standalone_export(smoke_search, tmp_path, capsys):
    _, final, exp, _, _ = smoke_search
    assert main(["retrain", str(exp), "--top", "2", "--epochs", "0.01", "--seeds", "2", "--num-cpus", "2"]) == 0
    table = pd.read_parquet(exp / "final.parquet")
    best_two = final.dropna(subset=["val_acc"]).head(2)
    assert set(table["arch"]) == set(best_two["arch"]) and (table["seeds"] == 2).all()
    assert table["test_acc"].between(0, 1).all() and (table["params"] > 0).all() and table["arch_hash"].is_unique
    searched = best_two.set_index("arch")["params"]
    assert all(table.set_index("arch")["params"][a] == searched[a] for a in searched.index)  # the cell it costed
    ckpt = torch.load(exp / "best_model.pt", weights_only=True)
    meta = __import__("pyarrow.parquet", fromlist=["x"]).read_schema(exp / "final.parquet").metadata
    best = json.loads(meta[b"gtnnas.best"])
    assert ckpt["arch"] == parse(best["arch"]).canonical() and ckpt["seed"] == best["seed"]  # the best run, exported
    # the checkpoint, rebuilt with this package, and the export give the same logits

    net = build_net(
        parse(ckpt["arch"]),
        channels=ckpt["channels"],
        cells=ckpt["cells"],
        in_channels=1,
        image_size=28,
        num_classes=10,
        norm=ckpt["norm"],
    )
    net.load_state_dict(ckpt["state_dict"])
    net.eval()
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")
    out = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(exp / "best_model.pt2"), str(tmp_path / "x.pt"), str(tmp_path / "y.pt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["input_shape"] == [1, 1, 28, 28] and info["mean"] == [0.286] and info["arch"] == ckpt["arch"]
    with torch.no_grad():
        assert torch.allclose(torch.load(tmp_path / "y.pt"), net(x), atol=1e-5)
    assert json.loads((exp / "best_model.json").read_text()) == info


def test_retrain_bad_input_is_one_line(smoke_search, tmp_path, capsys):
    _, final, exp, _, _ = smoke_search
    for argv, needle in (
        (["retrain", str(tmp_path / "nope")], "no finished experiment"),
        (["retrain", str(exp), "--top", "999"], "has only"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert needle in err and len(err.splitlines()) == 1


def test_a_found_cell_with_dead_edges_is_retrained_as_its_canonical_cell():
    found = parse("|none~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|")
    cell = deployed(found)  # node 1 gets nothing from the input: its edges to nodes 2 and 3 carry no signal
    assert str(cell) == found.canonical() != str(found) and deployed(cell) == cell
    spec, inputs = NetSpec(8, 1), InputSpec((1, 28, 28), 10)
    assert count_params(net_from(cell, spec, inputs)) < count_params(net_from(found, spec, inputs))
