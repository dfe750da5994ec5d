"""Shared fixtures. Ray binds to loopback only and one local Ray serves the whole session."""

from __future__ import annotations

import faulthandler
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

from cluster.tune_compat import init_local
from search.config import load_config
from search.data import load_dataset
from search.datasets import FOLDERS
from search.errors import DataNotFoundError
from search.fetch import fetch
from search.outer_loop import train_teacher
from search.teacher_files import save_teacher

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# Before anything imports ray (the modules imported above do not): loopback only, no usage stats, a short temp dir.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_AUTH_MODE"] = "token"  # Ray's default for a local Ray: every test runs with it on
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))  # one token for every Ray of this run, nodes included
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ.setdefault("RAY_TMPDIR", os.path.join(tempfile.gettempdir(), "gtnt"))
os.environ["RAY_CHDIR_TO_TRIAL_DIR"] = "0"
# Tests never download: data is found where `make test` (gtnnas data fetch) or the user put it. A
# `../shared/data` folder beside the checkout (this project's CI machines) is used when nothing is set.
os.environ["GTNNAS_DATA_SOURCES"] = "data_dir,debian"
if "GTNNAS_DATA_DIR" not in os.environ:
    _cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    os.environ["GTNNAS_DATA_DIR"] = str(SHARED_DATA if SHARED_DATA.is_dir() else _cache / "gtnnas" / "data")
# The user's cache is not the tests' to write: teacher stores and the like go to a folder of this session's.
TEST_CACHE = tempfile.mkdtemp(prefix="gtnnas-test-cache-")  # removed when the run ends (pytest_unconfigure)
os.environ["XDG_CACHE_HOME"] = TEST_CACHE


# pytest-timeout's alarm (signal method) acts only when the main thread runs Python again; a test stuck
# below it (a C++ lock, the GIL held by another thread) would hold the whole run, silently, until CI's own
# limit. A watchdog in C (faulthandler) then prints every thread's stack and ends the run instead.
WATCHDOG_GRACE_S = float(os.environ.get("GTNNAS_TEST_WATCHDOG_GRACE_S", "120"))  # a test of it sets less
_real_stderr: list[int] = []


def pytest_configure(config):
    _real_stderr.append(os.dup(sys.stderr.fileno()))  # output capture is suspended here: the terminal's


def pytest_unconfigure(config):
    shutil.rmtree(TEST_CACHE, ignore_errors=True)  # teacher stores of this run (tens of MB a run)


def _time_limit(item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getoption("timeout", None) or item.config.getini("timeout") or 300)


def pytest_runtest_logreport(report):
    """A test that pytest-timeout stopped: its stack dump and the machine's state, on the terminal at once
    (pytest would print them only at the end of the run, which a later hang never reaches)."""
    if not (report.failed and "from pytest-timeout" in str(report.longrepr)):
        return
    lines = [f"\n{report.nodeid} ({report.when}) timed out; load {os.getloadavg()}"]
    if os.path.exists("/proc/meminfo"):  # Linux
        with open("/proc/meminfo") as f:
            lines += [ln.strip() for ln in f if ln.startswith(("MemAvailable", "SwapFree"))]
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        lines.append(f"Ray: free {ray.available_resources()} of {ray.cluster_resources()}")
    os.write(_real_stderr[0], ("\n".join(lines) + "\n" + report.capstdout + report.capstderr).encode())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(_time_limit(item) + WATCHDOG_GRACE_S, exit=True, file=_real_stderr[0])
    try:
        return (yield)
    finally:
        faulthandler.cancel_dump_traceback_later()


def _raw_folder(name: str) -> Path:
    """The folder holding ``name``'s IDX files, wherever the data directory or Debian has them."""
    try:
        root = fetch(name)
    except DataNotFoundError as e:
        pytest.fail(
            f"the tests need {name} on disk ({e}); `make test` fetches it first, or run `gtnnas data fetch {name}`",
            pytrace=False,
        )
    raw = root / FOLDERS[name] / "raw"
    return raw if raw.is_dir() else root


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    """A data root in torchvision's layout holding Fashion-MNIST and MNIST (links to where they are)."""
    root = tmp_path_factory.mktemp("data")
    for name, folder in (("fashion_mnist", "FashionMNIST"), ("mnist", "MNIST")):
        (root / folder).mkdir()
        (root / folder / "raw").symlink_to(_raw_folder(name), target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def fashion(data_dir):
    return load_dataset("fashion_mnist", data_dir, train_subset=10_000, val_subset=2_000)


SESSION_RAY = {"num_cpus": 2, "include_dashboard": False, "configure_logging": False}


@pytest.fixture(scope="session")
def ray_session():
    """One embedded Ray for the whole test session (2 CPUs, no dashboard)."""
    import ray  # noqa: PLC0415  (lazy: Ray only after the environment above is set)

    if not ray.is_initialized():
        init_local(**SESSION_RAY)
    yield ray
    ray.shutdown()


@pytest.fixture()
def one_cpu_held(ray_session):
    """An actor holding one of the session Ray's 2 CPUs for the test, as a placement group Ray lost would."""

    @ray_session.remote(num_cpus=1)
    class Hold:
        def ready(self) -> bool:
            return True

    hold = Hold.remote()
    ray_session.get(hold.ready.remote())
    yield hold
    ray_session.kill(hold)


@pytest.fixture(autouse=True)
def _ray_cpus_come_back(request):
    """After a test on the session's Ray, every CPU must come back; if one does not, that Ray is restarted.

    Ray 2.60 keeps the CPUs of a placement group removed while it was being prepared (ray-project/ray#64693);
    Tune removes one when a trial ends before its group is ready (seen after benchmark-mode runs). A
    later test would then wait for CPUs that never come back, as the smoke search did in a bare-clone run.
    """
    yield
    ray = sys.modules.get("ray")
    if "ray_session" not in request.fixturenames or ray is None or not ray.is_initialized():
        return
    total, deadline = ray.cluster_resources().get("CPU", 0.0), time.monotonic() + 15
    while (free := ray.available_resources().get("CPU", 0.0)) < total and time.monotonic() < deadline:
        time.sleep(0.2)
    if free < total:
        note = f"\n{request.node.nodeid}: Ray still holds {total - free:g} of {total:g} CPUs; restarting it\n"
        os.write(_real_stderr[0], note.encode())
        ray.shutdown()
        init_local(**SESSION_RAY)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory, data_dir):
    """A real (tiny) teacher checkpoint meta-trained with configs/gtn_smoke.yaml; (path, config)."""
    cfg = load_config(ROOT / "configs" / "gtn_smoke.yaml", ["gtn.outer_steps=2"])
    d = cfg.data
    data = load_dataset(d.dataset, split_seed=d.split_seed, train_subset=d.train_subset, val_subset=d.val_subset)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_teacher(path, train_teacher(cfg, data), cfg, data, cfg.gtn.outer_steps)
    return path, cfg


@pytest.fixture(scope="session")
def smoke_search(ray_session, tmp_path_factory):
    """One real smoke search (configs/smoke.yaml) shared by the end-to-end and report tests.

    Returns (config, final leaderboard, experiment folder, calibration, seconds taken).
    """
    from cluster.search_run import run_search  # noqa: PLC0415  (lazy: it imports Ray, after the environment above)

    storage = tmp_path_factory.mktemp("smoke")
    cfg = load_config(ROOT / "configs" / "smoke.yaml", [f"storage={storage}", "name=e2e"])
    start = time.perf_counter()
    final, root, calib = run_search(cfg)
    return cfg, final, Path(root), calib, time.perf_counter() - start


def listening_sockets(root_pid: int, include_root: bool = True) -> list[dict]:
    """Every TCP socket listening in ``root_pid``'s process tree: port, interface, process, and what an HTTP
    request without a token gets there (a status, or "not HTTP" for gRPC). Written to the JSON file named by
    $GTNNAS_PORTS_REPORT when set (the closing note of issue #30 lists them)."""
    import http.client  # noqa: PLC0415  (lazy: only the security tests probe ports)
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    import psutil  # noqa: PLC0415

    tree = psutil.Process(root_pid)
    procs = {p.pid: p for p in [tree, *tree.children(recursive=True)] if include_root or p.pid != root_pid}
    rows = []
    for c in psutil.net_connections("inet"):
        if c.status != psutil.CONN_LISTEN or c.pid not in procs:
            continue
        try:
            name = " ".join(procs[c.pid].cmdline()[:2])[-60:]
        except psutil.Error:
            name = "?"
        host = "127.0.0.1" if c.laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1") else c.laddr.ip
        try:
            with urllib.request.urlopen(f"http://{host}:{c.laddr.port}/api/jobs/", timeout=2) as r:
                body = r.read(4096).decode(errors="replace")
            metrics = body.startswith("# HELP") or body.startswith("# TYPE") or body == ""
            status: int | str = f"{r.status} (Prometheus metrics)" if metrics else r.status
        except urllib.error.HTTPError as e:
            status = e.code
        except (OSError, ValueError, http.client.HTTPException) as e:  # gRPC answers HTTP/1.1 with nonsense or nothing
            status = f"not HTTP ({type(e).__name__})"
        rows.append({"port": c.laddr.port, "interface": c.laddr.ip, "process": name, "unauthenticated": status})
    if os.environ.get("GTNNAS_PORTS_REPORT"):
        import json  # noqa: PLC0415

        with open(os.environ["GTNNAS_PORTS_REPORT"], "a") as f:
            f.write(json.dumps({"root_pid": root_pid, "sockets": sorted(rows, key=lambda r: r["port"])}) + "\n")
    return rows


@pytest.fixture()
def sockets():
    """:func:`listening_sockets`, for tests that check what Ray exposes."""
    return listening_sockets
