"""Meta-training under a time limit: the last outer step that fits, planned from the pace so far."""

from __future__ import annotations

PLAN_AFTER = 3
"""Steady outer steps timed (after this run's first, which pays the warm-up) before a time limit plans."""


def fit_plan(outer_steps: int, plan: int, step: int, done: int, elapsed: float, warm: float, seconds: float) -> int:
    """The last outer step that fits in ``seconds``: ``done`` steps of this run (the latest ``step``) took
    ``elapsed``, the first of them ``warm``.

    Once :data:`PLAN_AFTER` steady steps are timed, the plan follows their mean pace at every step, with
    a 5% margin (so the cosine schedule ends where training does), never beyond ``outer_steps``; before
    that it stays at ``plan``. Whenever one more step at the pace so far would overrun, it stops here.
    """
    steady = done - 1 >= PLAN_AFTER
    pace = (elapsed - warm) / (done - 1) if steady else elapsed / done
    if elapsed + pace > seconds:
        return step
    if steady:
        plan = min(outer_steps, step + int((0.95 * seconds - elapsed) / pace))
    return max(plan, step)
