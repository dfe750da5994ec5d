"""Meta-train the teachers that ship with gtnnas: Fashion-MNIST and MNIST at ``configs/default.yaml``'s settings.

Each is written compact (learned images in float16, as the curriculum holds them) to
``search/teachers/<key>.pt`` with its provenance inside (``benchmarks/provenance.py``'s: commit, command,
machine, times; plus the gtn seed, held-out accuracy, seconds), and ``search/teachers/README.md``'s table
is rewritten from all of them. A search
with the same data and gtn settings finds the shipped teacher instead of meta-training one.

    python -m benchmarks.ship_teachers [--datasets fashion_mnist,mnist] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks import provenance
from search.config import load_config
from search.curriculum import materialize
from search.data import load_dataset
from search.files import write_text
from search.outer_loop import train_teacher, validate
from search.teacher_files import load_teacher, save_teacher
from search.teacher_key import teacher_key

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "search" / "teachers"


def ship(dataset: str, threads: int) -> Path:
    cfg = load_config(ROOT / "configs" / "default.yaml", [f"data.dataset={dataset}"])
    d = cfg.data
    data = load_dataset(
        d.dataset, d.root, split_seed=d.split_seed, train_subset=d.train_subset, val_subset=d.val_subset
    )
    start = time.perf_counter()
    teacher = train_teacher(cfg, data)
    seconds = time.perf_counter() - start
    held_out = validate(teacher, cfg, data, data.val.head(cfg.gtn.validate_size))
    made = {
        **provenance.current().provenance(),
        "teacher_config": "configs/default.yaml",
        "dataset": dataset,
        "gtn_seed": cfg.gtn.seed,
        "held_out_acc": held_out,
        "held_out": f"gtn.validate_arch trained {cfg.gtn.inner_steps} steps on the "
        f"curriculum, first {cfg.gtn.validate_size} validation images",
        "seconds": seconds,
        "threads": threads,
        "made": time.strftime("%Y-%m-%d"),
    }
    SHIPPED.mkdir(parents=True, exist_ok=True)
    path = SHIPPED / f"{teacher_key(cfg)}.pt"
    save_teacher(path, teacher, cfg, data, cfg.gtn.outer_steps, provenance=made, compact=True)
    full = load_teacher(path).curriculum(real=data.train)  # the compact file gives the same curriculum

    same = (
        materialize(
            teacher, dataset=data.name, mean=data.mean, std=data.std, real=data.train, seed=cfg.gtn.seed
        ).content_hash
        == full.content_hash
    )
    if not same:
        raise RuntimeError(f"{path}: the compact teacher's curriculum differs from the trained one's")
    print(
        f"{dataset}: {path.name}, held-out {held_out:.4f}, {seconds:.0f} s, curriculum {full.content_hash}", flush=True
    )
    return path


def readme() -> None:
    rows = []
    for path in sorted(SHIPPED.glob("*.pt")):
        t = load_teacher(path)
        p = t.provenance
        rows.append(
            f"| `{path.name}` | {t.dataset} | {p.get('held_out_acc', float('nan')):.4f} | "
            f"{p.get('seconds', 0) / 60:.1f} min, {p.get('threads')} thread(s) | `{str(p.get('commit'))[:7]}` | "
            f"{path.stat().st_size / 1e6:.1f} MB |"
        )
    text = (SHIPPED / "README.md").read_text()
    head, _, _ = text.partition("<!-- table -->")
    write_text(
        SHIPPED / "README.md",
        head + "<!-- table -->\n| file | data set | held-out accuracy | meta-training "
        "| commit | size |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="fashion_mnist,mnist")
    ap.add_argument("--threads", type=int, default=2)
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args, outputs=[SHIPPED])  # the teachers it writes (and their README) do not make the tree dirty
    torch.set_num_threads(args.threads)
    for name in args.datasets.split(","):
        ship(name, args.threads)
    readme()


if __name__ == "__main__":
    main()
