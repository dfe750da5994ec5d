"""Driver-side Tune callbacks: the leaderboard writer and the one-line live status.

Both run in the driver process, on Tune's control loop. The leaderboard writer buffers one row per
reported result and one status per finished trial and writes them in :meth:`on_step_end`, which Tune
calls after it has (maybe) saved the experiment state; with ``search.state_save: step`` rows are
written only in a step in which Tune saved its state (at most every ``STEP_SAVE_S`` seconds; Tune
asks every callback for its state, :meth:`LeaderboardCallback.get_state`, as part of each save),
after that state's upload, so every trial with rows on disk is one the saved experiment knows.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import ray
from ray.tune import Callback

from cluster.progress import Progress, bar, duration
from cluster.tune_compat import forget_encode_keys, slim_finished_trial, upload_experiment_state
from results.leaderboard import row_from_result, status_row, write_part, write_statuses
from results.phases import COLUMNS as PHASE_COLUMNS
from results.phases import phase_split, split_line
from search.pareto import hypervolume, parse_objectives

STEP_SAVE_S = 1.0  # search.state_save: step saves Tune's state at most this often


class LeaderboardCallback(Callback):
    """Buffer result rows and trial statuses; flush them at the end of a control-loop step.

    ``every_step``: whatever arrived, in the first step in which Tune saved its state (that state
    knows every trial created so far, so every trial with rows); otherwise every N rows or S seconds
    (a part file per finished trial would make thousands of parts, and reading them back costs the
    driver more memory than the trials did). Statuses follow their trials' rows.
    """

    def __init__(
        self,
        root: str,
        experiment: str,
        metadata: dict[str, Any],
        flush_rows: int = 50,
        flush_seconds: float = 30.0,
        every_step: bool = False,
        log: Any = None,
    ):
        """``log``: the searcher's :class:`cluster.costs.InfeasibleLog`, flushed when the experiment ends."""
        self.root, self.experiment, self.metadata, self.log = root, experiment, dict(metadata), log
        self.flush_rows, self.flush_seconds, self.every_step = flush_rows, flush_seconds, every_step
        self.rows: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.parts_written = 0
        self.saved = False  # Tune saved the experiment state since the last flush

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "training_iteration" in result and "arch" in result:
            self.rows.append(row_from_result(self.experiment, trial.trial_id, result))
            if result.get("proxy_rho") is not None:
                self.metadata["calibration"] = {
                    k: result.get(k) for k in ("proxy_rho", "proxy_rho_lo", "proxy_rho_hi", "calibration_n")
                }

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.statuses.append(status_row(self.experiment, trial.trial_id, "TERMINATED"))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.statuses.append(status_row(self.experiment, trial.trial_id, "ERROR"))

    def flush(self, force: bool = False) -> None:
        ready = force or self.every_step or time.monotonic() - self.last_flush >= self.flush_seconds
        if self.rows and (ready or len(self.rows) >= self.flush_rows):
            write_part(self.root, self.rows, self.metadata)
            self.parts_written += 1
            self.rows, self.last_flush = [], time.monotonic()
        if self.statuses and not self.rows and (ready or len(self.statuses) >= self.flush_rows):
            write_statuses(self.root, self.statuses)  # only once their trials' rows are on disk
            self.statuses, self.last_flush = [], time.monotonic()

    def get_state(self) -> None:
        """Tune calls this while it saves the experiment state; nothing of ours needs saving with it."""
        self.saved = True
        return None

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.every_step:
            saved, self.saved = self.saved, False  # a save in an earlier step may not know this step's trials
            if not saved or not (self.rows or self.statuses):
                return  # no save this step: what arrived waits for the next one
            upload_experiment_state(trials)
        self.flush()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.flush(force=True)
        if self.log is not None:
            self.log.flush()


class SlimFinishedTrials(Callback):
    """Keep the driver from growing with the trial count: a finished trial keeps only what the results
    and a restore need (:func:`cluster.tune_compat.slim_finished_trial`); every ``every`` trials Ray's
    debug keys are forgotten and free heap pages given back to the OS."""

    def __init__(self, metric: str = "score", every: int = 100):
        self.metric, self.every, self.done = metric, every, 0

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._slim(trial)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._slim(trial)

    def _slim(self, trial: Any) -> None:
        slim_finished_trial(trial, (self.metric,))
        self.done += 1
        if self.done % self.every == 0:
            forget_encode_keys()
            malloc_trim()


def malloc_trim() -> None:
    """Give glibc's free heap pages back to the OS (a no-op where there is no glibc)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


class LiveFront:
    """The Pareto front of a multi-objective search's results so far, for the status line.

    :meth:`add` is O(k) per result (each class keeps its result with the best first objective, as the
    final table does); :meth:`summary` finds the front by one sorted sweep and its hypervolume, at most
    once a ``every`` seconds and only when something arrived. The hypervolume's reference is the worst
    value seen of each objective, and it is given as a share of the box from the best to the worst seen.
    """

    def __init__(self, names: list[str], modes: list[str], every: float = 1.0):
        self.names, self.every = names, every
        self.sign = np.where(np.asarray(modes) == "max", -1.0, 1.0)  # minimised: lower is better everywhere
        self.points: dict[str, np.ndarray] = {}
        self.low = np.full(len(names), np.inf)
        self.high = np.full(len(names), -np.inf)
        self.changed, self.last = False, -np.inf
        self.cached: tuple[int, float] | None = None

    def add(self, key: str, result: dict[str, Any]) -> None:
        values = [result.get(n) for n in self.names]
        if any(v is None for v in values):
            return
        p = self.sign * np.asarray(values, float)
        if not np.isfinite(p).all():
            return
        self.low, self.high = np.minimum(self.low, p), np.maximum(self.high, p)
        old = self.points.get(key)
        if old is None or p[0] < old[0]:
            self.points[key] = p
        self.changed = True

    def summary(self, force: bool = False) -> tuple[int, float] | None:
        """(front size, hypervolume share) of the results so far, or None before any has every objective."""
        now = time.monotonic()
        if self.points and self.changed and (force or now - self.last >= self.every):
            front = non_dominated(np.array(list(self.points.values())))
            box = np.where(self.high > self.low, self.high - self.low, 1.0)
            hv = hypervolume(front, ["min"] * len(self.names), self.high) / float(np.prod(box))
            self.cached, self.changed, self.last = (len(front), hv), False, now
        return self.cached


def non_dominated(p: np.ndarray) -> np.ndarray:
    """The rows of minimised ``p`` no other row dominates (equal rows all kept), by one lexicographic sweep:
    a row that dominates another comes before it in that order, so each row is checked against the front
    kept so far only."""
    order = np.lexsort(p.T[::-1])
    kept: list[np.ndarray] = []
    for row in p[order]:
        if kept:
            f = np.asarray(kept)
            if ((f <= row).all(axis=1) & (f < row).any(axis=1)).any():
                continue
        kept.append(row)
    return np.asarray(kept)


class StatusCallback(Callback):
    """One status line every few seconds (in place on a terminal) instead of Tune's trial tables: trials,
    the best cell, for a multi-objective search the front's size and hypervolume, the live rho with its
    interval, where the cores went, time left."""

    def __init__(self, total: int, every: float = 10.0, stage: str = "search", objectives: str = "val_acc:max"):
        self.total, self.stage = total, stage
        objs = parse_objectives(objectives)
        self.front = LiveFront([o.name for o in objs], [o.mode for o in objs]) if len(objs) > 1 else None
        self.progress = Progress(every=every)
        self.start = time.monotonic()
        self.best: tuple[float, str] | None = None
        self.rho: dict[str, Any] = {}
        self.phases: dict[str, dict[str, float]] = {}  # trial -> its newest core-seconds by phase

    def setup(self, **info: Any) -> None:
        self.start = time.monotonic()  # also when a restored experiment starts again

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        v = result.get("val_acc")
        if v is not None and (self.best is None or v > self.best[0]):
            self.best = (float(v), str(result.get("arch")))
        if result.get("proxy_rho") is not None:
            self.rho = {k: result.get(k) for k in ("proxy_rho", "proxy_rho_lo", "proxy_rho_hi", "calibration_n")}
        if "cs_score" in result:
            self.phases[trial.trial_id] = {c: result.get(c) or 0.0 for c in PHASE_COLUMNS}
        if self.front is not None:
            self.front.add(str(result.get("arch_hash") or result.get("arch") or trial.trial_id), result)

    def split(self) -> dict[str, Any]:
        cores = ray.cluster_resources().get("CPU") if ray.is_initialized() else None
        rows = pd.DataFrame(
            [{"trial_id": t, **p} for t, p in self.phases.items()], columns=["trial_id", *PHASE_COLUMNS]
        )
        return phase_split(rows, cores, time.monotonic() - self.start)

    def line(self, trials: list, force: bool = False) -> str:
        elapsed = time.monotonic() - self.start
        done = sum(1 for t in trials if t.status in ("TERMINATED", "ERROR"))
        running = sum(1 for t in trials if t.status == "RUNNING")
        left = elapsed / done * (self.total - done) if done else None
        best = f"best val {self.best[0]:.4f} {self.best[1]}" if self.best else "best val -"
        r = self.rho
        rho = (
            "rho -"
            if not r
            else (
                f"rho {r['proxy_rho']:.2f}"
                + (f" [{r['proxy_rho_lo']:.2f}, {r['proxy_rho_hi']:.2f}]" if r.get("proxy_rho_lo") is not None else "")
                + f" n={r['calibration_n']}"
            )
        )
        cores = f" | {split_line(self.split())}" if self.phases else ""
        return (
            f"{self.stage} {bar(done, self.total)} trials, {running} running | {best}{self.front_text(force)} | "
            f"{rho}{cores} | "
            f"{duration(elapsed)} elapsed, ~{duration(left)} left"
        )

    def front_text(self, force: bool = False) -> str:
        """`` | front 5 (hv 0.023)`` for a multi-objective search; nothing for a single-objective one."""
        if self.front is None:
            return ""
        got = self.front.summary(force)
        return " | front -" if got is None else f" | front {got[0]} (hv {got[1]:.3f})"

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if self.progress.due():  # the line walks every trial: only when it will be shown
            self.progress.show(self.line(trials), force=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.progress.done(self.line(trials, force=True))


@contextlib.contextmanager
def tune_env(verbose: bool = False, every_step: bool = False, trial_logs: bool = True) -> Iterator[None]:
    """Environment Tune reads while it runs, set for one ``fit`` and restored after.

    ``every_step`` saves the experiment and searcher state at the end of a control-loop step at
    most every ``STEP_SAVE_S`` seconds (saving every step serialises every trial ten times a second);
    without ``verbose`` Tune's console output is off (a status line replaces it); without
    ``trial_logs`` Tune writes no per-trial result.json, progress.csv or TensorBoard files (and reads
    none back at the end: for searches of many thousand trials).
    """
    want = {
        "TUNE_GLOBAL_CHECKPOINT_S": str(STEP_SAVE_S) if every_step else None,
        "RAY_AIR_NEW_OUTPUT": None if verbose else "0",
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": None if trial_logs else "1",
    }
    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")  # one warning per trial without logs
    level = quiet.level
    if not trial_logs:
        quiet.setLevel(logging.ERROR)
    old = {k: os.environ.get(k) for k in want}
    for k, v in want.items():
        if v is not None:
            os.environ[k] = v
    try:
        yield
    finally:
        quiet.setLevel(level)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
