"""The versions a result records: gtnnas, torch, numpy and Python (no torch import until asked)."""

from __future__ import annotations

import platform

import numpy as np

from . import __version__


def versions() -> dict[str, str]:
    import torch  # noqa: PLC0415  (lazy: a version dict should not load torch for every importer)

    return {
        "gtnnas": __version__,
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
    }
