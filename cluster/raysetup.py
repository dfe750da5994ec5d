"""Starting and joining Ray safely: loopback only on a laptop or CI, the given address on a cluster."""

from __future__ import annotations

import os
import tempfile

LOOPBACK = "127.0.0.1"


def ray_env() -> None:
    """Environment Ray reads at start-up; must run before ``import ray`` starts anything.

    Without ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` Ray binds the machine's interface address; we
    want the embedded Ray reachable from this machine only.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TMPDIR", os.path.join(tempfile.gettempdir(), "gtnray"))


def start_ray(address: str | None = None, num_cpus: int | None = None, dashboard: bool = False) -> bool:
    """Start an embedded local Ray (``address`` None or "local") or connect to a running cluster.

    Returns True when this call started Ray (so the caller should shut it down). An unreachable
    address raises ``ConnectionError`` with one line saying so.
    """
    ray_env()
    import ray

    if address not in (None, "local"):
        _probe(address)  # an explicit address must answer, even when this process already runs Ray
    if ray.is_initialized():
        return False
    if address in (None, "local"):
        ray.init(
            "local", num_cpus=num_cpus, include_dashboard=dashboard, dashboard_host=LOOPBACK,
            _node_ip_address=LOOPBACK, log_to_driver=True, configure_logging=False,
        )
        return True
    try:
        ray.init(address=address, log_to_driver=True)
    except Exception as e:  # Ray raises several types for "nothing there"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConnectionError(f"cannot connect to Ray at {address!r}: {first}") from None
    return True


def _probe(address: str) -> None:
    """Fail in seconds, not minutes, when a host:port address has nothing listening."""
    import socket

    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto" and friends: Ray finds (or fails to find) the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConnectionError(f"cannot connect to Ray at {address!r}: {e.strerror or e}") from None
