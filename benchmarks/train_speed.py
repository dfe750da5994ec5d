"""Training throughput: images per second (forward + backward + SGD step) on 28x28 inputs.

Three representative NB201 cells at (C=16, N=5) and (C=8, N=1), batch 128, 2 CPU threads by
default. Writes benchmarks/results/train_speed.json and prints a table.

    python -m benchmarks.train_speed [--threads 2] [--steps 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from benchmarks import provenance
from benchmarks._common import table, write
from search.nets import build_net, count_flops, count_params
from search.space import parse

CELLS = {
    "all_conv3x3": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "paper_best": "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "light": "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|",
}


def measure(arch: str, channels: int, cells: int, batch: int, steps: int, device: str) -> dict:
    net = build_net(parse(arch), channels=channels, cells=cells, in_channels=1, image_size=28, device=device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, generator=gen).to(device)
    y = torch.randint(0, 10, (batch,), generator=gen).to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    step()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    sec = (time.perf_counter() - t) / steps
    return {
        "seconds_per_step": sec,
        "images_per_second": batch / sec,
        "params": count_params(net),
        "mflops": count_flops(net) / 1e6,
    }


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    return provenance.add_common_args(ap)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    provenance.start(args)
    torch.set_num_threads(args.threads)
    rows = []
    for channels, cells in ((16, 5), (8, 1)):
        for name, arch in CELLS.items():
            r = measure(arch, channels, cells, args.batch, args.steps, args.device)
            rows.append({"cell": name, "C": channels, "N": cells, **r, "arch": arch})
    path = write(
        "train_speed",
        {"batch": args.batch, "steps": args.steps, "threads": args.threads, "device": args.device, "rows": rows},
    )
    print(table(rows, ["cell", "C", "N", "params", "mflops", "seconds_per_step", "images_per_second"]))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
