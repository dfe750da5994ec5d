"""A status line that stays one line: redrawn in place on a terminal, printed every few seconds in a log."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """One status line, redrawn in place on a terminal and printed every ``every`` seconds otherwise."""

    def __init__(self, every: float = 10.0, stream: Any = None):
        self._stream = stream  # None: sys.stderr at the time of writing (keeps the object picklable)
        self.every, self.last, self.width = every, float("-inf"), 0

    @property
    def stream(self) -> Any:
        return self._stream or sys.stderr

    @property
    def tty(self) -> bool:
        return bool(getattr(self.stream, "isatty", lambda: False)())

    def due(self) -> bool:
        """Whether a line shown now would appear (callers can skip building it otherwise)."""
        return time.monotonic() - self.last >= (0.5 if self.tty else self.every)

    def show(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.tty and (force or now - self.last >= 0.5):
            pad = max(0, self.width - len(text))
            print("\r" + text + " " * pad, end="", file=self.stream, flush=True)
            self.width = len(text)
        elif not self.tty and (force or now - self.last >= self.every):
            print(text, file=self.stream, flush=True)
        else:
            return
        self.last = now

    def done(self, text: str | None = None) -> None:
        if text is not None:
            self.show(text, force=True)
        if self.tty and self.width:
            print(file=self.stream, flush=True)
        self.width = 0


def bar(done: int, total: int, width: int = 20) -> str:
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )
