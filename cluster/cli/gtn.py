# Heavy imports stay inside the commands, so `gtnnas --help` and results commands load no torch or Ray.
"""``gtnnas gtn train`` and ``gtnnas gtn sample``: meta-train a teacher, look at its curriculum."""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cluster.cli.common import Progress, bar, check_rank_pool, config, ensure_data
from search.config import ExperimentConfig
from search.data import Dataset, load_configured
from search.errors import InputError
from search.files import write_text

if TYPE_CHECKING:
    from search.gtn import Teacher
    from search.outer_loop import OuterStep

STATE = "teacher.state.pt"
FIELDS = ["step", "meta_loss", "learner_acc", "val_acc", "seconds", "meta_lr", "learner"]


def register(sub: argparse._SubParsersAction) -> None:
    gtn = sub.add_parser("gtn", help="meta-train a Generative Teaching Network and inspect its curriculum")
    cmds = gtn.add_subparsers(dest="gtn_command", required=True, metavar="SUBCOMMAND")
    train = cmds.add_parser(
        "train",
        help="meta-train a teacher; writes OUT/teacher.pt, metrics.csv, "
        "curriculum.png and TensorBoard scalars under OUT/tb",
    )
    train.add_argument("--config", default="configs/gtn_smoke.yaml", help="YAML config (default: %(default)s)")
    train.add_argument(
        "overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. out=DIR gtn.outer_steps=50"
    )
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    train.add_argument(
        "--resume",
        action="store_true",
        help="continue from OUT/teacher.state.pt, the checkpoint written every gtn.checkpoint_every outer steps",
    )
    train.add_argument(
        "--no-store",
        action="store_true",
        help="do not file the teacher in the teacher store (search.teacher_store), where searches find it",
    )
    train.set_defaults(func=cmd_train)
    sample = cmds.add_parser("sample", help="draw a teacher's curriculum as a PNG grid (steps x classes)")
    sample.add_argument("checkpoint", help="teacher.pt written by `gtnnas gtn train`")
    sample.add_argument("--out", default="curriculum.png", help="PNG to write (default: %(default)s)")
    sample.add_argument("--steps", type=int, default=4, help="how many inner steps to show (default: %(default)s)")
    sample.set_defaults(func=cmd_sample)


def cmd_train(args: argparse.Namespace) -> int:
    from search.outer_loop import MetaTrainingError, train_teacher

    cfg: ExperimentConfig = config(args)
    out = Path(cfg.out)
    state = out / STATE
    if args.resume and not state.is_file():
        raise InputError(f"--resume: no meta-training checkpoint at {state}")
    data = _training_data(cfg, args.threads)
    resumed_at, kept = _output_folder(out, state, cfg, args.resume)
    log = _TrainingLog(out, cfg, kept)
    started = time.perf_counter()
    _announce(cfg, state, resumed_at if args.resume else None)
    try:
        teacher = train_teacher(cfg, data, callback=log, checkpoint=state)
    except MetaTrainingError as e:
        print(f"\ngtnnas: meta-training stopped: {e}", file=sys.stderr)
        return 1
    finally:
        log.close()
    _save(out, state, teacher, cfg, data, started)
    if not args.no_store:
        from cluster.teacher_stage import file_teacher

        print(
            f"filed as {file_teacher(cfg, str(out / 'teacher.pt'))}: searches with these data and gtn settings "
            f"find it there (search.teacher_store)"
        )
    return 0


def _training_data(cfg: ExperimentConfig, threads: int | None) -> Dataset:
    """The configured data set (fetched if missing), after checking the rank pool; ``threads``: torch's."""
    import torch

    ensure_data(cfg)
    check_rank_pool(cfg)
    if threads:
        torch.set_num_threads(threads)
    return load_configured(cfg.data)


def _output_folder(out: Path, state: Path, cfg: ExperimentConfig, resume: bool) -> tuple[int, list[dict]]:
    """Make OUT; resuming, (the checkpoint's step, the metrics rows up to it), else (0, []) with any old
    checkpoint deleted (a fresh run never continues someone else's)."""
    out.mkdir(parents=True, exist_ok=True)
    if not resume:
        state.unlink(missing_ok=True)
        return 0, []
    resumed_at = _state_step(state, cfg)
    return resumed_at, _metrics_until(out / "metrics.csv", resumed_at)


def _announce(cfg: ExperimentConfig, state: Path, resumed_at: int | None) -> None:
    """What happens before the first outer step: a resume's starting point, or the generator's warm start."""
    if resumed_at is not None:
        print(f"resuming from {state} after outer step {resumed_at}", file=sys.stderr, flush=True)
    elif cfg.gtn.generator_init == "real":
        print(
            f"warm start: fitting the generator to real images ({cfg.gtn.generator_init_steps} steps)",
            file=sys.stderr,
            flush=True,
        )


class _TrainingLog:
    """Where each outer step goes: metrics.csv (``kept`` rows first), TensorBoard scalars under OUT/tb and
    the progress line. Call it with each :class:`search.outer_loop.OuterStep`, then :meth:`close`."""

    def __init__(self, out: Path, cfg: ExperimentConfig, kept: list[dict]):
        from tensorboardX import SummaryWriter

        self.out, self.cfg = out, cfg
        self.writer = SummaryWriter(str(out / "tb"))
        self.rows = list(kept)
        self.last_val: float | None = None
        self.progress = Progress(every=5.0)
        self.written = time.monotonic()

    def save_metrics(self) -> None:  # the whole file, through the one writer: never a torn last line
        text = io.StringIO()
        table = csv.DictWriter(text, fieldnames=FIELDS)
        table.writeheader()
        table.writerows(self.rows)
        write_text(self.out / "metrics.csv", text.getvalue())
        self.written = time.monotonic()

    def __call__(self, s: OuterStep) -> None:
        last = self.cfg.gtn.outer_steps
        self.rows.append({k: getattr(s, k) for k in FIELDS})
        # A checkpoint step is written here, before train_teacher writes the checkpoint: a kill between the
        # two leaves rows the resume trims, never a checkpoint whose rows were not yet on disk.
        checkpoint_next = s.step % self.cfg.gtn.checkpoint_every == 0
        if checkpoint_next or time.monotonic() - self.written >= 5.0 or s.step == last:
            self.save_metrics()
        self.writer.add_scalar("gtn/meta_loss", s.meta_loss, s.step)
        self.writer.add_scalar("gtn/learner_acc", s.learner_acc, s.step)
        self.writer.add_scalar("gtn/seconds_per_step", s.seconds, s.step)
        self.writer.add_scalar("gtn/meta_lr", s.meta_lr, s.step)
        if s.val_acc is not None:
            self.last_val = s.val_acc
            self.writer.add_scalar("gtn/val_acc", s.val_acc, s.step)
        val = "-" if self.last_val is None else f"{self.last_val:.4f}"
        self.progress.show(
            f"{bar(s.step, last)} meta-loss {s.meta_loss:.4f}  val-acc {val}  {s.seconds:.2f}s/step",
            force=s.step == last,
        )

    def close(self) -> None:
        self.save_metrics()
        self.progress.done()
        self.writer.close()


def _save(out: Path, state: Path, teacher: Teacher, cfg: ExperimentConfig, data: Dataset, started: float) -> None:
    """OUT/teacher.pt (the checkpoint goes), read back as a search would, and its curriculum's grid."""
    from search.teacher_files import load_teacher, save_teacher
    from search.viz import save_grid

    save_teacher(out / "teacher.pt", teacher, cfg, data, cfg.gtn.outer_steps)
    state.unlink(missing_ok=True)
    loaded = load_teacher(out / "teacher.pt")
    cur = loaded.curriculum(real=data.train)
    save_grid(cur, out / "curriculum.png")
    took = time.perf_counter() - started
    print(
        f"teacher: {out / 'teacher.pt'} (curriculum {cur.content_hash}, {cur.steps} steps x "
        f"{cur.images.shape[1]} images); grid: {out / 'curriculum.png'}; {took:.1f}s"
    )


def _state_step(state: Path, cfg: ExperimentConfig) -> int:
    from search.teacher_files import load_state

    return int(load_state(state, cfg)["step"])


def _metrics_until(path: Path, step: int) -> list[dict]:
    """metrics.csv rows up to the checkpoint's step (later ones are recomputed on resume)."""
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= step]


def cmd_sample(args: argparse.Namespace) -> int:
    from search.teacher_files import load_teacher
    from search.viz import save_grid

    if args.steps < 1:
        raise InputError(f"--steps must be >= 1, got {args.steps}")
    loaded = load_teacher(args.checkpoint)
    real = None
    if loaded.config.gtn.curriculum == "real":
        real = load_configured(loaded.config.data).train
    cur = loaded.curriculum(real=real)
    save_grid(cur, Path(args.out), steps=args.steps)
    print(f"wrote {args.out} (curriculum {cur.content_hash})")
    return 0
