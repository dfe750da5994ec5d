"""The driver-side Tune callback that writes leaderboard part files (see :mod:`cluster.leaderboard`)."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback

from cluster.leaderboard import row_from_result, write_part


class LeaderboardCallback(Callback):
    """Driver-side Tune callback: buffer result rows, flush a part every N rows or S seconds."""

    def __init__(self, root: str, experiment: str, metadata: dict[str, Any], flush_rows: int = 50,
                 flush_seconds: float = 30.0):
        self.root, self.experiment, self.metadata = root, experiment, dict(metadata)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self.buffer: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.parts_written = 0

    def _add(self, trial: Any, result: dict[str, Any] | None, status: str) -> None:
        if result and "training_iteration" in result and "arch" in result:
            self.buffer.append(row_from_result(self.experiment, trial.trial_id, result, status))
            if result.get("proxy_rho") is not None:
                self.metadata["calibration"] = {"proxy_rho": result["proxy_rho"],
                                                "n": result.get("calibration_n")}
        self._maybe_flush()

    def _maybe_flush(self, force: bool = False) -> None:
        due = time.monotonic() - self.last_flush >= self.flush_seconds
        if self.buffer and (force or due or len(self.buffer) >= self.flush_rows):
            write_part(self.root, self.buffer, self.metadata)
            self.parts_written += 1
            self.buffer = []
            self.last_flush = time.monotonic()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        self._add(trial, result, "RUNNING")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add(trial, trial.last_result, "TERMINATED")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._add(trial, trial.last_result, "ERROR")

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._maybe_flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self._maybe_flush(force=True)
