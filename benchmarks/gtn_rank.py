"""Which teacher ranks cells like real training? One teacher per variant, then ``gtn:k`` on a truth table.

Each variant is ``configs/default.yaml``'s teacher with a few overrides, meta-trained for
``--outer-steps`` on the full training split; then every cell of the truth table is trained for k
steps on its curriculum (the ``gtn:k`` proxy) and Spearman rho / Kendall tau against the truth (the
mean val_acc over its seeds) are reported with the teacher's held-out accuracy and its cost. The
teachers are kept under ``--keep`` for ``gtnnas bench proxies --teacher``. Writes
benchmarks/results/gtn_rank.json and prints a table.

    python -m benchmarks.gtn_rank --outer-steps 100 [--variant NAME=KEY=VALUE,KEY=VALUE ...] [--steps 16,32]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from benchmarks import provenance
from benchmarks._common import table, write
from cluster.proxy_bench import run_proxies, summarise
from results.truthtable import load_truth, replicate_rho, truth_targets
from search.config import config_from_dict, load_config
from search.curriculum import materialize
from search.data import load_dataset
from search.outer_loop import train_teacher
from search.proxies import ProxyContext
from search.proxy_specs import parse_proxies
from search.space import parse
from search.teacher_files import save_teacher

ROOT = Path(__file__).resolve().parents[1]
FULL = ["gtn.curriculum=full", "gtn.pixels_init=noise"]  # explicit: the base config may set either
PIXELS_REAL = ["gtn.curriculum=pixels", "gtn.pixels_init=real"]
VARIANTS = {
    "full": FULL,
    "full+soft_labels": FULL + ["gtn.soft_labels=true"],
    "full+2_learners": FULL + ["gtn.learners_per_step=2"],
    "full+warm": FULL + ["gtn.generator_init=real", "gtn.generator_meta_lr=0.0005"],
    "pixels_real": PIXELS_REAL,
    "pixels_real+soft_labels": PIXELS_REAL + ["gtn.soft_labels=true"],
}


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, rest = text.partition("=")
    return name, [o for o in rest.split(",") if o]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--truth", default=str(ROOT / "benchmarks" / "truth" / "fashion_mnist.parquet"))
    ap.add_argument("--config", default=str(ROOT / "configs" / "default.yaml"), help="the teacher's base config")
    ap.add_argument("--outer-steps", type=int, default=100)
    ap.add_argument(
        "--variant",
        action="append",
        type=parse_variant,
        help=f"NAME=KEY=VALUE,KEY=VALUE (repeatable; default: {', '.join(VARIANTS)})",
    )
    ap.add_argument("--steps", default="16,32", help="k of the gtn:k proxies (default: %(default)s)")
    ap.add_argument("--val-subset", type=int, default=5000, help="validation images the proxies are read on")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda: where teachers meta-train and cells are scored")
    ap.add_argument("--keep", default=str(ROOT / "runs" / "gtn_rank"), help="where the teachers are saved")
    ap.add_argument("--name", default="gtn_rank", help="results/<name>.json")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    torch.set_num_threads(args.threads)

    df, meta = load_truth(args.truth)
    names, target, ceiling = truth_targets(df)
    archs = [parse(a) for a in names]
    replicate, halves = replicate_rho(df.to_dict("records"))
    truth_cfg = config_from_dict(meta["config"], args.truth)
    proxies = parse_proxies(",".join(f"gtn:{k}" for k in args.steps.split(",")))
    variants = dict(args.variant) if args.variant else VARIANTS
    rows, results, datasets = [], {}, {}
    for name, extra in variants.items():
        cfg = load_config(
            args.config,
            extra + [f"gtn.outer_steps={args.outer_steps}", f"out={args.keep}/{name}", f"data.device={args.device}"],
        )
        d = cfg.data
        key = (d.dataset, d.root, d.split_seed)
        if key not in datasets:  # variants share the data unless they override it
            datasets[key] = load_dataset(
                d.dataset, d.root, split_seed=d.split_seed, val_subset=args.val_subset, device=d.device
            )
        data = datasets[key]
        log: list = []
        start = time.perf_counter()

        def progress(s, name=name, log=log):
            log.append(s)
            if s.val_acc is not None:
                print(f"{name}: outer step {s.step}, held-out acc {s.val_acc:.3f}, {s.seconds:.2f} s/step", flush=True)

        teacher = train_teacher(cfg, data, callback=progress)
        train_s = time.perf_counter() - start
        save_teacher(Path(args.keep) / name / "teacher.pt", teacher, cfg, data, cfg.gtn.outer_steps)
        cur = materialize(teacher, dataset=data.name, mean=data.mean, std=data.std, real=data.train, seed=cfg.seed)
        ctx = ProxyContext(
            net=truth_cfg.net,
            shape=data.shape,
            num_classes=data.num_classes,
            data=data,
            curriculum=cur,
            train=truth_cfg.train,
            seed=0,
        )
        summary = summarise(run_proxies(proxies, archs, ctx), target)
        vals = [(s.step, s.val_acc) for s in log if s.val_acc is not None]
        results[name] = {
            "overrides": extra,
            "outer_steps": args.outer_steps,
            "meta_train_seconds": train_s,
            "seconds_per_outer_step": train_s / args.outer_steps,
            "held_out_val_acc": vals,
            "proxies": summary,
        }
        for p, m in summary.items():
            rows.append(
                {
                    "variant": name,
                    "proxy": p,
                    "held-out acc": vals[-1][1] if vals else float("nan"),
                    "rho": m["spearman"],
                    "tau": m["kendall"],
                    "top-half rho": m["spearman_top_half"],
                    "s/arch": m["seconds_per_arch"],
                    "s/outer step": train_s / args.outer_steps,
                }
            )
        print(table(rows[-len(summary) :], list(rows[-1])), flush=True)
    path = write(
        args.name,
        {
            "truth": Path(args.truth).name,
            "n_archs": len(archs),
            "ceiling_spearman": ceiling,
            "replicate_spearman": replicate,
            "replicate_seeds": halves,
            "base_config": args.config,
            "val_subset": args.val_subset,
            "variants": results,
        },
    )
    print(table(rows, list(rows[0])))
    print(f"ceiling (seed-to-seed rho) {ceiling:.3f}; JSON: {path}")


if __name__ == "__main__":
    main()
