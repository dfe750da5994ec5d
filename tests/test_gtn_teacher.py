"""Teacher checkpoints, the scoring API, divergence handling and the gtn CLI."""

import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

import search.outer_loop
from cluster.cli import main
from search import teacher_files
from search.config import load_config
from search.curriculum import Curriculum, gtn_score, materialize
from search.data import load_dataset
from search.errors import CheckpointError
from search.gtn import Teacher
from search.outer_loop import MetaTrainingError, train_teacher
from search.space import parse
from search.teacher_files import load_teacher, save_teacher

ROOT = Path(__file__).resolve().parents[1]
GTN_SMOKE = ROOT / "configs" / "gtn_smoke.yaml"
PAPER = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_checkpoint_round_trip_is_bit_identical(tiny_teacher, tmp_path):
    path, cfg = tiny_teacher
    a = load_teacher(path)
    b = load_teacher(path)
    ca, cb = a.curriculum(), b.curriculum()
    assert ca.content_hash == cb.content_hash and torch.equal(ca.images, cb.images)
    assert a.dataset == "fashion_mnist" and a.outer_steps == 2 and "torch" in a.versions
    assert a.config.hash() == cfg.hash()
    assert ca.images.dtype == torch.float16 and ca.images.shape == (cfg.gtn.inner_steps, cfg.gtn.inner_batch, 1, 28, 28)
    # save -> load -> save again keeps the curriculum
    d = load_dataset("fashion_mnist", train_subset=200, val_subset=50)
    save_teacher(tmp_path / "again.pt", a.teacher, a.config, d, a.outer_steps)
    assert load_teacher(tmp_path / "again.pt").curriculum().content_hash == ca.content_hash
    # the numpy/dict form used by the actor verifies the hash
    assert Curriculum.from_dict(ca.to_dict()).content_hash == ca.content_hash
    tampered = ca.to_dict()
    tampered["lr"] = tampered["lr"] * 2
    with pytest.raises(ValueError, match="content hash mismatch"):
        Curriculum.from_dict(tampered)


def test_corrupted_checkpoints_are_rejected(tiny_teacher, tmp_path):
    path, _ = tiny_teacher
    blob = path.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="not a readable teacher checkpoint"):
        load_teacher(tmp_path / "trunc.pt")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a gtn-nas teacher checkpoint"):
        load_teacher(tmp_path / "foreign.pt")
    mismatched = torch.load(path, weights_only=True)
    mismatched["config"]["gtn"]["inner_steps"] += 1
    torch.save(mismatched, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_teacher(tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="trained on fashion_mnist, not mnist"):
        load_teacher(path, expect_dataset="mnist")
    with pytest.raises(CheckpointError, match="no such teacher checkpoint"):
        load_teacher(tmp_path / "missing.pt")
    assert zipfile.is_zipfile(path)  # torch's own container, loadable with weights_only=True


def test_a_checkpoint_over_the_size_limit_is_refused_unread(tiny_teacher, monkeypatch):
    path, _ = tiny_teacher
    monkeypatch.setattr(teacher_files, "MAX_CHECKPOINT_BYTES", path.stat().st_size - 1)
    monkeypatch.setattr(teacher_files.torch, "load", lambda *a, **k: pytest.fail("read a file over the limit"))
    with pytest.raises(CheckpointError, match="MiB, more than the"):
        load_teacher(path)


def test_nan_meta_loss_stops_naming_the_step():
    cfg = load_config(GTN_SMOKE, ["gtn.init_lr=1e12", "gtn.outer_steps=3"])
    d = cfg.data
    data = load_dataset(d.dataset, train_subset=200, val_subset=50)
    with pytest.raises(MetaTrainingError, match="at outer step 1"):
        train_teacher(cfg, data)


def test_score_is_seeded_and_ranks_a_dead_cell_last(tiny_teacher, fashion):
    path, cfg = tiny_teacher
    cur = load_teacher(path).curriculum()
    val = fashion.val.head(300)
    a = gtn_score(parse(PAPER), cur, val, seed=1, channels=4)
    b = gtn_score(parse(PAPER), cur, val, seed=1, channels=4)
    assert a["gtn_score"] == b["gtn_score"] and a["val_loss"] == b["val_loss"] and a["steps"] == cur.steps
    longer = gtn_score(parse(PAPER), cur, val, seed=1, channels=4, steps=2 * cur.steps)  # cycles the curriculum
    assert longer["steps"] == 2 * cur.steps and longer["val_loss"] != a["val_loss"]
    dead = gtn_score(parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"), cur, val, seed=1, channels=4)
    assert dead["gtn_score"] < 0.2


def test_real_curriculum_scores_like_real_training(fashion):
    """The `real` baseline's curriculum holds real images: a conv cell learns from it."""
    cfg = load_config(None, ["gtn.curriculum=real", "gtn.inner_steps=40", "gtn.inner_batch=64", "gtn.init_lr=0.1"])

    teacher = Teacher(cfg.gtn, fashion.shape, 10)
    cur = materialize(teacher, dataset="fashion_mnist", mean=fashion.mean, std=fashion.std, real=fashion.train)
    res = gtn_score(parse(PAPER), cur, fashion.val.head(1000), channels=8)
    assert res["gtn_score"] > 0.5, res


def test_pixels_start_from_real_images_of_their_labels(fashion):
    """`pixels_init: real` starts the learned images at real images of the fixed labels, so an
    untrained teacher already teaches like real data; from noise it teaches nothing."""
    overrides = ["gtn.curriculum=pixels", "gtn.inner_steps=40", "gtn.inner_batch=64", "gtn.init_lr=0.1"]
    cfg = load_config(None, overrides + ["gtn.pixels_init=real"])
    teacher = Teacher(cfg.gtn, fashion.shape, 10)
    teacher.init_pixels_from(fashion.train, torch.Generator().manual_seed(0))
    flat_x, flat_y = teacher.pixels.detach().flatten(2), teacher.labels
    for t, b in [(0, 0), (7, 13), (39, 63)]:  # each image is a real training image of its own label
        same = (fashion.train.x.flatten(1) == flat_x[t, b]).all(1).nonzero().flatten()
        assert len(same) and (fashion.train.y[same] == flat_y[t, b]).all()
    val = fashion.val.head(1000)
    cur = materialize(teacher, dataset="fashion_mnist", mean=fashion.mean, std=fashion.std)
    assert gtn_score(parse(PAPER), cur, val, channels=8)["gtn_score"] > 0.5
    noise = Teacher(load_config(None, overrides).gtn, fashion.shape, 10)
    cur = materialize(noise, dataset="fashion_mnist", mean=fashion.mean, std=fashion.std)
    assert gtn_score(parse(PAPER), cur, val, channels=8)["gtn_score"] < 0.3
    with pytest.raises(ValueError, match="pixels_init: real needs curriculum: pixels"):
        load_config(None, ["gtn.pixels_init=real"])


def test_generator_warm_start_fits_real_images_of_each_slots_label(fashion):
    """`generator_init: real` fits generator and curriculum noise to real images of the slots' labels:
    the generated images end far closer to their targets than the untrained generator's, each is
    nearer its own target than any other slot's, and the warm teacher teaches above chance."""
    overrides = ["gtn.inner_steps=8", "gtn.inner_batch=20", "gtn.init_lr=0.1"]
    cfg = load_config(None, overrides + ["gtn.generator_init=real", "gtn.generator_init_steps=80"])
    teacher = Teacher(cfg.gtn, fashion.shape, 10)
    target = teacher._real_picks(fashion.train, torch.Generator().manual_seed(1))
    assert (
        fashion.train.y[(fashion.train.x.flatten(1)[None] == target.flatten(2)[0, :3, None]).all(-1).nonzero()[:, 1]]
        == teacher.labels[0, :3]
    ).all()

    def images(t):
        with torch.no_grad():
            return torch.stack([t.generator(t.curriculum[i], t.labels[i]) for i in range(t.steps)])

    val = fashion.val.head(1000)

    def teaches(t):
        cur = materialize(t, dataset="fashion_mnist", mean=fashion.mean, std=fashion.std)
        return gtn_score(parse(PAPER), cur, val, channels=8)["gtn_score"]

    before, cold = torch.nn.functional.mse_loss(images(teacher), target).item(), teaches(teacher)
    teacher.fit_generator_to(fashion.train, torch.Generator().manual_seed(1), steps=80, lr=3e-3)
    after_imgs = images(teacher)
    after = torch.nn.functional.mse_loss(after_imgs, target).item()
    assert after < 0.5 * before, (before, after)
    dist = torch.cdist(after_imgs.flatten(2).flatten(0, 1), target.flatten(2).flatten(0, 1))
    assert (dist.argmin(1) == torch.arange(len(dist))).float().mean() > 0.9
    assert cold < 0.15 and teaches(teacher) > 0.2, (cold, teaches(teacher))
    with pytest.raises(ValueError, match="generator_init: real needs a learned curriculum"):
        load_config(None, ["gtn.curriculum=pixels", "gtn.generator_init=real"])


def test_gtn_cli_train_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["gtn", "train", "--config", str(GTN_SMOKE), f"out={out}"]) == 0
    for name in ("teacher.pt", "curriculum.png", "metrics.csv"):
        assert (out / name).is_file(), name
    assert list((out / "tb").glob("events.out.tfevents.*"))
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("step,meta_loss") and len(rows) == 1 + 4
    assert (out / "curriculum.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["gtn", "sample", str(out / "teacher.pt"), "--out", str(tmp_path / "g.png"), "--steps", "2"]) == 0
    assert (tmp_path / "g.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["gtn", "sample", str(tmp_path / "nope.pt")]) == 2
    assert "no such teacher checkpoint" in capsys.readouterr().err


def test_gtn_cli_divergence_exits_1_without_checkpoint(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["gtn", "train", "--config", str(GTN_SMOKE), f"out={out}", "gtn.init_lr=1e12"]) == 1
    assert "at outer step 1" in capsys.readouterr().err
    assert not (out / "teacher.pt").exists()


def test_gtn_train_killed_after_k_steps_resumes_to_the_bit_identical_teacher(tmp_path):
    """SIGKILL `gtnnas gtn train` once its first checkpoint exists, --resume it, compare with a run never killed."""
    root = Path(__file__).resolve().parents[1]
    base = [
        sys.executable,
        "-m",
        "cluster.cli",
        "gtn",
        "train",
        "--config",
        str(root / "configs" / "gtn_smoke.yaml"),
        "--threads",
        "1",
        "gtn.outer_steps=8",
        "gtn.checkpoint_every=2",
        "gtn.validate_every=4",
    ]
    straight = subprocess.run(base + [f"out={tmp_path / 'a'}"], cwd=root, capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-1500:]
    proc = subprocess.Popen(
        base + [f"out={tmp_path / 'b'}"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while not (tmp_path / "b" / "teacher.state.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "b" / "teacher.pt").exists()
    killed_at = torch.load(tmp_path / "b" / "teacher.state.pt", weights_only=True)["step"]
    assert 2 <= killed_at < 8
    resumed = subprocess.run(
        base + [f"out={tmp_path / 'b'}", "--resume"], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert f"after outer step {killed_at}" in resumed.stderr
    a = torch.load(tmp_path / "a" / "teacher.pt", weights_only=True)["teacher"]
    b = torch.load(tmp_path / "b" / "teacher.pt", weights_only=True)["teacher"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit-identical
    steps = [int(line.split(",")[0]) for line in (tmp_path / "b" / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 9))  # one metrics row per outer step, none twice
    assert not (tmp_path / "b" / "teacher.state.pt").exists()


def test_every_checkpoint_on_disk_has_its_metrics_rows_on_disk_first(tmp_path, monkeypatch):
    """The kill test's window, made deterministic: at the moment each checkpoint is written, metrics.csv
    already holds a row for every step it covers (a SIGKILL right after it must not lose rows)."""
    real_save, seen = search.outer_loop.save_state, []

    def save_and_look(path, cfg, step, *args, **kwargs):
        rows = (tmp_path / "metrics.csv").read_text().splitlines()[1:] if (tmp_path / "metrics.csv").exists() else []
        seen.append((step, [int(r.split(",")[0]) for r in rows]))
        return real_save(path, cfg, step, *args, **kwargs)

    monkeypatch.setattr(search.outer_loop, "save_state", save_and_look)
    args = ["gtn", "train", "--no-store", "--config", str(GTN_SMOKE), f"out={tmp_path}"]
    assert main(args + ["gtn.outer_steps=6", "gtn.checkpoint_every=2"]) == 0
    assert seen == [(2, [1, 2]), (4, [1, 2, 3, 4])]


def test_gtn_train_resume_without_a_checkpoint_is_one_line(tmp_path, capsys):
    root = Path(__file__).resolve().parents[1]
    assert (
        main(["gtn", "train", "--config", str(root / "configs" / "gtn_smoke.yaml"), f"out={tmp_path}", "--resume"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "no meta-training checkpoint" in err and len(err.splitlines()) == 1
