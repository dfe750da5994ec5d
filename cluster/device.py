"""One device rule for everything that runs inside Ray: trials, the teacher stage and the truth builder.

CUDA exactly when Ray granted this task or actor a GPU and torch sees one; otherwise the CPU, even
when torch could see a GPU that Ray gave to someone else. A fractional share (``1/n`` of a GPU) also
caps this process's CUDA memory at that share, because Ray's fractions are scheduling only.
"""

from __future__ import annotations

import gc

import ray


def granted_device(share: float | None = None) -> str:
    """``"cuda"`` or ``"cpu"`` for the calling Ray task/actor; caps memory when ``share`` < 1."""
    import torch  # noqa: PLC0415  (lazy: cluster.entry loads this module in trials that run without torch)

    if not ray.get_gpu_ids() or not torch.cuda.is_available():
        return "cpu"
    if share is not None and 0 < share < 1:
        torch.cuda.set_per_process_memory_fraction(share, device=0)
    return "cuda"


def release(device: str) -> None:
    """Give back what the previous cell of a reused trial left cached on the GPU (ray#23971, #32698)."""
    if device != "cuda":
        return
    import torch  # noqa: PLC0415  (lazy: as in granted_device)

    gc.collect()
    torch.cuda.empty_cache()
