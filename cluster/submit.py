"""Entry point for `ray submit ray_config.yaml cluster/submit.py -- --config ...` and
`ray job submit --working-dir . -- python cluster/submit.py --config ...`.

The same as `gtnnas search`, connecting to the cluster it runs on (``--address auto``) unless told
otherwise.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cluster.cli import main  # noqa: E402


def submit_main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--"]
    if "--address" not in args and not any(a.startswith("--address=") for a in args):
        args = ["--address", os.environ.get("RAY_ADDRESS", "auto"), *args]
    return main(["search", *args])


if __name__ == "__main__":
    sys.exit(submit_main(sys.argv[1:]))
