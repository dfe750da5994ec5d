"""The suite's watchdog (tests/conftest.py): a test stuck where pytest-timeout's alarm cannot act ends the
run within its time limit plus a grace, printing every thread's stack, instead of holding CI to its own limit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

STUCK = """
import signal, time
import pytest

@pytest.mark.timeout(2)
def test_stuck_below_python():
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])  # the alarm never acts, as in a C-level hang
    time.sleep(120)

def test_never_reached():
    pass
"""


SLOW = """
import time
import pytest

@pytest.mark.timeout(2)
def test_slow():
    time.sleep(30)

def test_next():
    pass
"""


def _run(tmp_path: Path, source: str) -> tuple[subprocess.CompletedProcess, float]:
    """pytest on one test file beside a copy of the suite's conftest.py; (its result, seconds)."""
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(source)
    env = {**os.environ, "GTNNAS_TEST_WATCHDOG_GRACE_S": "3"}
    start = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "test_probe.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    return out, time.monotonic() - start


def test_a_test_stuck_below_python_ends_the_run_with_every_threads_stack(tmp_path):
    out, took = _run(tmp_path, STUCK)
    assert out.returncode != 0 and took < 60  # 2 s limit + 3 s grace + start-up, not the 120 s sleep
    assert "Timeout (0:00:05)!" in out.stderr and "in test_stuck_below_python" in out.stderr
    assert "test_never_reached" not in out.stdout


def test_a_timed_out_test_reports_the_machines_state_at_once_and_the_run_goes_on(tmp_path):
    out, _ = _run(tmp_path, SLOW)
    assert "test_probe.py::test_slow (call) timed out; load" in out.stderr and "MemAvailable" in out.stderr
    assert "1 failed, 1 passed" in out.stdout
