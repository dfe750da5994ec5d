"""Starting and joining Ray safely, and ending what a dead driver's embedded Ray left behind.

Loopback only on a laptop or CI, the given address on a cluster. Token authentication is on for every
Ray this module starts or joins (Ray 2.60's default for a local Ray; ``RAY_AUTH_MODE=token`` also when
joining a cluster): the token is found the way Ray finds it (``RAY_AUTH_TOKEN``, the file at
``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``); an embedded Ray without one gets a new token in
``~/.ray/auth_token`` readable by this user only. ``RAY_AUTH_MODE=disabled``, set by the user, is
respected (a cluster of theirs that runs without authentication). An embedded Ray records its
processes (PID and start time) in its own session folder; when a driver is SIGKILLed, Ray's agent
processes outlive it, and the next :func:`ray_session` ends exactly those PIDs, never a process
found by name.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from cluster.tune_compat import LOOPBACK, init_local
from search.errors import ClusterError, first_line
from search.files import write_json

OWNER_FILE = "gtnnas-owner.json"
NO_TOKEN = (
    "Ray's token authentication is on and no token was found (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, "
    "~/.ray/auth_token): copy the cluster's token to ~/.ray/auth_token (mode 600), or set "
    "RAY_AUTH_MODE=disabled for a cluster that runs without authentication"
)


def token_auth() -> bool:
    return os.environ.get("RAY_AUTH_MODE", "").lower() == "token"


def token_path() -> Path:
    """Where Ray looks for the token file: ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``."""
    return Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token").expanduser()


def has_token() -> bool:
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or token_path().is_file()


def ensure_local_token() -> Path | None:
    """The token of an embedded Ray: Ray's own if it finds one, else a new one written to ``~/.ray/auth_token``
    with mode 600 (Ray would write it readable by every user). Returns the file it wrote, or None."""
    if not token_auth() or has_token():
        return None
    path = token_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path.with_name(f".{path.name}.{os.getpid()}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # a stale temporary of a process with our PID: start over
        os.remove(path.with_name(f".{path.name}.{os.getpid()}"))
        return ensure_local_token()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    try:  # whole or not at all, and the first of several processes starting at once wins
        os.link(path.with_name(f".{path.name}.{os.getpid()}"), path)
    except FileExistsError:
        return None
    finally:
        os.remove(path.with_name(f".{path.name}.{os.getpid()}"))
    return path


def ray_env() -> None:
    """Environment Ray reads at start-up; must run before ``import ray`` starts anything.

    Without ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` Ray binds the machine's interface address; we
    want the embedded Ray reachable from this machine only.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_TMPDIR", os.path.join(tempfile.gettempdir(), "gtnray"))


def start_ray(
    address: str | None = None, num_cpus: int | None = None, dashboard: bool = False, verbose: bool = False
) -> bool:
    """Start an embedded local Ray (``address`` None or "local") or connect to a running cluster.

    Returns True when this call started Ray (so the caller should shut it down). An unreachable
    address raises :class:`ClusterError` with one line saying so. Unless ``verbose``, Ray's and
    Tune's INFO logs from the workers stay in the session's log files instead of the console.
    """
    ray_env()
    import ray  # noqa: PLC0415  (lazy: Ray is imported only after ray_env() has set what it reads)

    logging_config = ray.LoggingConfig(log_level="INFO" if verbose else "WARNING")
    if address not in (None, "local"):
        _probe(address)  # an explicit address must answer, even when this process already runs Ray
        if token_auth() and not has_token():
            raise ClusterError(f"cannot connect to Ray at {address!r}: {NO_TOKEN}")
    if ray.is_initialized():
        return False
    if address in (None, "local"):
        end_orphans()
        ensure_local_token()
        ctx = init_local(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host=LOOPBACK,
            log_to_driver=True,
            configure_logging=False,
            logging_config=logging_config,
        )
        record_owner(ctx.address_info["session_dir"])
        if dashboard:
            where = token_path() if not os.environ.get("RAY_AUTH_TOKEN") else "RAY_AUTH_TOKEN"
            auth = f"it asks for the token in {where}" if token_auth() else "no authentication (RAY_AUTH_MODE)"
            print(f"Ray dashboard: http://{ctx.dashboard_url} (this machine only; {auth})", flush=True)
        return True
    try:
        ray.init(address=address, log_to_driver=True, logging_config=logging_config)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError, ray.exceptions.AuthenticationError) as e:
        raise ClusterError(f"cannot connect to Ray at {address!r}: {first_line(e)}") from None
    return True


@contextlib.contextmanager
def ray_session(
    address: str | None = None, num_cpus: int | None = None, dashboard: bool = False, verbose: bool = False
) -> Iterator[None]:
    """``start_ray`` for the duration of a ``with`` block; shuts down only a Ray this block started."""
    started = start_ray(address, num_cpus=num_cpus, dashboard=dashboard, verbose=verbose)
    try:
        yield
    finally:
        if started:
            import ray  # noqa: PLC0415  (lazy: as in start_ray)

            ray.shutdown()


def _probe(address: str) -> None:
    """Fail in seconds, not minutes, when a host:port address has nothing listening."""
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and friends: Ray finds (or fails to find) the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ClusterError(f"cannot connect to Ray at {address!r}: {e.strerror or e}") from None


# --------------------------------------------------------------------------- orphans


def record_owner(folder: str) -> str:
    """Write this driver's PID and every process under it into the embedded Ray's session folder."""
    me = psutil.Process()
    procs = [{"pid": p.pid, "started": p.create_time()} for p in me.children(recursive=True)]
    path = os.path.join(folder, OWNER_FILE)
    write_json(path, {"driver": {"pid": me.pid, "started": me.create_time()}, "processes": procs}, indent=None)
    return path


def _alive(entry: dict) -> bool:
    try:
        return abs(psutil.Process(entry["pid"]).create_time() - entry["started"]) < 1e-3
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def end_orphans(root: str | None = None, grace: float = 3.0) -> list[int]:
    """End the processes recorded by embedded Rays whose driver is dead; returns the PIDs ended.

    Looks only at ``gtnnas-owner.json`` files under ``$RAY_TMPDIR/ray/session_*`` and only at
    processes whose PID and start time both match the record (a reused PID is left alone).
    """
    ray_env()
    root = root or os.path.join(os.environ["RAY_TMPDIR"], "ray")
    ended: list[int] = []
    for path in sorted(glob.glob(os.path.join(root, "session_*", OWNER_FILE))):
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        if _alive(record["driver"]):
            continue
        victims = [e for e in record["processes"] if _alive(e)]
        for e in victims:
            with contextlib.suppress(OSError):
                os.kill(e["pid"], signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(e) for e in victims):
            time.sleep(0.1)
        for e in victims:
            if _alive(e):
                with contextlib.suppress(OSError):
                    os.kill(e["pid"], signal.SIGKILL)
            with contextlib.suppress(psutil.Error):
                psutil.Process(e["pid"]).wait(timeout=0)  # reap if it was our own child
        ended += [e["pid"] for e in victims]
        with contextlib.suppress(OSError):
            os.remove(path)
    return ended
