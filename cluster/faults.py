"""Fault-injection points for the chaos and packing tests: ``GTNNAS_TEST_PAUSE=<point>:<seconds>``.

``final`` pauses the driver between the end of the search and the final write; ``trial`` pauses each
trial as it starts (so tests can see trials run side by side). Unset, they cost one dict lookup.
"""

from __future__ import annotations

import os
import time


def pause(point: str) -> None:
    name, _, seconds = os.environ.get("GTNNAS_TEST_PAUSE", "").partition(":")
    if name == point:
        time.sleep(float(seconds or 0))
