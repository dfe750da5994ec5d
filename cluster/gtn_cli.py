"""``gtnnas gtn train`` and ``gtnnas gtn sample``: meta-train a teacher, look at its curriculum."""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

from search.config import ExperimentConfig


def register(sub: argparse._SubParsersAction) -> None:
    gtn = sub.add_parser("gtn", help="meta-train a Generative Teaching Network and inspect its curriculum")
    cmds = gtn.add_subparsers(dest="gtn_command", required=True, metavar="SUBCOMMAND")
    train = cmds.add_parser("train", help="meta-train a teacher; writes OUT/teacher.pt, metrics.csv, "
                                          "curriculum.png and TensorBoard scalars under OUT/tb")
    train.add_argument("--config", default="configs/gtn_smoke.yaml", help="YAML config (default: %(default)s)")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides, e.g. out=DIR gtn.outer_steps=50")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    train.set_defaults(func=cmd_train)
    sample = cmds.add_parser("sample", help="draw a teacher's curriculum as a PNG grid (steps x classes)")
    sample.add_argument("checkpoint", help="teacher.pt written by `gtnnas gtn train`")
    sample.add_argument("--out", default="curriculum.png", help="PNG to write (default: %(default)s)")
    sample.add_argument("--steps", type=int, default=4, help="how many inner steps to show (default: %(default)s)")
    sample.set_defaults(func=cmd_sample)


def _progress(step: int, total: int, text: str) -> None:
    width = 24
    done = int(width * step / total)
    line = f"[{'#' * done}{'.' * (width - done)}] {step}/{total} {text}"
    if sys.stderr.isatty():
        print("\r" + line, end="" if step < total else "\n", file=sys.stderr, flush=True)
    else:
        print(line, file=sys.stderr, flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from cluster.cli import _check_data, _config
    from search.data import load_dataset
    from search.teach import MetaTrainingError, OuterStep, save_teacher, train_teacher

    cfg: ExperimentConfig = _config(args)
    _check_data(cfg)
    if args.threads:
        torch.set_num_threads(args.threads)
    d = cfg.data
    data = load_dataset(d.dataset, d.root, split_seed=d.split_seed, device=d.device,
                        train_subset=d.train_subset, val_subset=d.val_subset)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    from tensorboardX import SummaryWriter

    writer = SummaryWriter(str(out / "tb"))
    fields = ["step", "meta_loss", "learner_acc", "val_acc", "seconds", "meta_lr", "learner"]
    started = time.perf_counter()
    if cfg.gtn.generator_init == "real":
        print(f"warm start: fitting the generator to real images ({cfg.gtn.generator_init_steps} steps)",
              file=sys.stderr, flush=True)
    last_val: list[float | None] = [None]
    with open(out / "metrics.csv", "w", newline="") as f:
        rows = csv.DictWriter(f, fieldnames=fields)
        rows.writeheader()

        def log(s: OuterStep) -> None:
            rows.writerow({k: getattr(s, k) for k in fields})
            f.flush()
            writer.add_scalar("gtn/meta_loss", s.meta_loss, s.step)
            writer.add_scalar("gtn/learner_acc", s.learner_acc, s.step)
            writer.add_scalar("gtn/seconds_per_step", s.seconds, s.step)
            writer.add_scalar("gtn/meta_lr", s.meta_lr, s.step)
            if s.val_acc is not None:
                last_val[0] = s.val_acc
                writer.add_scalar("gtn/val_acc", s.val_acc, s.step)
            val = "-" if last_val[0] is None else f"{last_val[0]:.4f}"
            _progress(s.step, cfg.gtn.outer_steps,
                      f"meta-loss {s.meta_loss:.4f}  val-acc {val}  {s.seconds:.2f}s/step")

        try:
            teacher = train_teacher(cfg, data, callback=log)
        except MetaTrainingError as e:
            writer.close()
            print(f"gtnnas: meta-training stopped: {e}", file=sys.stderr)
            return 1
    writer.close()
    save_teacher(out / "teacher.pt", teacher, cfg, data, cfg.gtn.outer_steps)
    from search.teach import load_teacher

    loaded = load_teacher(out / "teacher.pt")
    cur = loaded.curriculum(real=data.train)
    save_grid(cur, out / "curriculum.png")
    took = time.perf_counter() - started
    print(f"teacher: {out / 'teacher.pt'} (curriculum {cur.content_hash}, {cur.steps} steps x "
          f"{cur.images.shape[1]} images); grid: {out / 'curriculum.png'}; {took:.1f}s")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from search.data import load_dataset
    from search.teach import load_teacher

    loaded = load_teacher(args.checkpoint)
    real = None
    if loaded.config.gtn.curriculum == "real":
        d = loaded.config.data
        real = load_dataset(d.dataset, d.root, split_seed=d.split_seed, train_subset=d.train_subset).train
    cur = loaded.curriculum(real=real)
    save_grid(cur, Path(args.out), steps=args.steps)
    print(f"wrote {args.out} (curriculum {cur.content_hash})")
    return 0


def save_grid(cur, path: Path, steps: int = 4) -> None:
    """A steps x classes grid of the curriculum's images (first image of each class per step)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    labels = cur.targets.float().argmax(-1)
    k = int(cur.targets.shape[-1])
    t_total = cur.steps
    rows = sorted({round(i * (t_total - 1) / max(steps - 1, 1)) for i in range(min(steps, t_total))})
    mean = torch.tensor(cur.mean).view(-1, 1, 1)
    std = torch.tensor(cur.std).view(-1, 1, 1)
    fig, axes = plt.subplots(len(rows), k, figsize=(k * 0.9, len(rows) * 0.95), squeeze=False)
    for r, t in enumerate(rows):
        for c in range(k):
            ax = axes[r][c]
            ax.axis("off")
            idx = (labels[t] == c).nonzero()
            if len(idx):
                img = (cur.images[t, int(idx[0])].float() * std + mean).clamp(0, 1)
                if img.shape[0] == 1:
                    ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
                else:
                    ax.imshow(img.permute(1, 2, 0).numpy())
            if r == 0:
                ax.set_title(str(c), fontsize=8)
        axes[r][0].text(-0.3, 0.5, f"step {t + 1}", transform=axes[r][0].transAxes, ha="right",
                        va="center", fontsize=7)
    fig.suptitle(f"{cur.dataset} curriculum {cur.content_hash}", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
