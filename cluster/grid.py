"""One way to run a fixed list of jobs as Tune trials: the baseline, retraining and truth tables.

Each job is one trial (``param_space={"job": grid_search(jobs)}``) with the same resources, Tune's
actor reuse and one failure policy: a trial that fails is retried :data:`MAX_FAILURES` times (a lost
node, a killed worker), and a job that still fails ends the command with one line naming the node and
the cause, before anything is built from the results. The search is not a grid (its trials may fail
one by one while it goes on: :func:`cluster.search_run.report_failures`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ray import tune

from cluster.callbacks import StatusCallback, tune_env
from cluster.entry import one_line
from search.errors import InputError, first_line

MAX_FAILURES = 2


class GridError(RuntimeError):
    """Jobs failed for a reason that is not the input's (a bug): the first one's traceback is in Tune's log."""


def run_grid(
    trainable: Callable[..., None],
    jobs: list[dict[str, Any]],
    *,
    stage: str,
    name: str,
    storage: str,
    cpus: float,
    gpus: float = 0.0,
    callbacks: Sequence[tune.Callback] = (),
) -> list[dict[str, Any]]:
    """Run every job (``config["job"]`` in the trainable) and return each trial's last reported metrics."""
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus}),
        param_space={"job": tune.grid_search(jobs)},
        tune_config=tune.TuneConfig(reuse_actors=True),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            verbose=0,
            callbacks=[*callbacks, StatusCallback(len(jobs), stage=stage)],
        ),
    )
    with tune_env():
        grid = tuner.fit()
    check(stage, [r.error for r in grid if r.error is not None], len(jobs))
    return [dict(r.metrics) for r in grid]


def check(stage: str, errors: list[BaseException], total: int) -> None:
    """One line for failed jobs: the input error one carries (its node and cause), else a :class:`GridError`."""
    if not errors:
        return
    inputs = [e for e in map(one_line, errors) if e is not None]
    if inputs:
        raise InputError(f"{len(errors)} of {total} {stage} job(s) failed; {inputs[0]}")
    root = errors[0]
    while (cause := getattr(root, "cause", None) or root.__cause__) is not None and cause is not root:
        root = cause  # Ray's wrapper's first line is the worker's name; the cause says what happened
    raise GridError(f"{len(errors)} of {total} {stage} job(s) failed; first: {type(root).__name__}: {first_line(root)}")
