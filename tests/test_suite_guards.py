"""The suite's own guards (tests/conftest.py): a test stuck where pytest-timeout's alarm cannot act ends the
run within its time limit plus a grace, printing every thread's stack, instead of holding CI to its own limit;
a test after which the session's Ray keeps CPUs does not starve the tests after it."""

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


LEAK = """
def test_keeps_a_cpu(ray_session):
    ray = ray_session

    @ray.remote(num_cpus=1)
    class Hold:
        def ready(self):
            return True

    global HOLD
    HOLD = Hold.remote()  # never released, like the CPUs of a placement group Ray lost
    ray.get(HOLD.ready.remote())

def test_after_it_every_cpu_is_free(ray_session):
    assert ray_session.available_resources().get("CPU") == 2.0
"""


def _run(tmp_path: Path, source: str) -> tuple[subprocess.CompletedProcess, float]:
    """pytest on one test file beside a copy of the suite's conftest.py; (its result, seconds)."""
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(source)
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "GTNNAS_TEST_WATCHDOG_GRACE_S": "3", "TMPDIR": str(tmp_path / "tmp")}
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
    assert not list((tmp_path / "tmp").glob("gtnnas-test-cache-*"))  # the run's cache folder went with it


def test_cpus_the_session_ray_keeps_after_a_test_come_back_by_a_restart(tmp_path):
    out, _ = _run(tmp_path, LEAK)
    assert "2 passed" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]
    assert "test_probe.py::test_keeps_a_cpu: Ray still holds 1 of 2 CPUs; restarting it" in out.stderr
