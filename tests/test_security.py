"""Secure by default (issue #30): token authentication on the embedded Ray, secrets kept out of results,
the token file private, joining a cluster without a token refused with one line."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cluster import raysetup
from search.errors import ClusterError

ROOT = Path(__file__).resolve().parents[1]
CANARIES = {
    "AWS_ACCESS_KEY_ID": "AKIAGTNNASCANARY0001",
    "AWS_SECRET_ACCESS_KEY": "gtnnas-canary-secret-key-0123456789abcdef",
    "AWS_SESSION_TOKEN": "gtnnas-canary-session-token-fedcba9876543210",
    "RAY_AUTH_TOKEN": "5ec7e75ec7e7" * 5 + "c0de",  # a token Ray accepts, easy to find in a file
}


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_embedded_search_with_dashboard_refuses_requests_without_the_token_and_writes_no_secret(tmp_path, sockets):
    home, storage = tmp_path / "home", tmp_path / "runs"
    home.mkdir()
    short = tempfile.mkdtemp(prefix="gs", dir="/tmp")  # Ray's socket paths must stay short
    env = {**os.environ, **CANARIES, "HOME": str(home), "RAY_TMPDIR": short}
    env.pop("RAY_AUTH_MODE")  # the user's default: gtnnas turns token authentication on by itself
    cmd = [sys.executable, "-m", "cluster.cli", "search", "--config", "configs/smoke.yaml", "--dashboard"]
    proc = subprocess.Popen(
        [*cmd, f"storage={storage}", "name=secure", "search.num_samples=4"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 300
        while not (url := next((m[1] for ln in lines if (m := re.search(r"Ray dashboard: (http://\S+)", ln))), None)):
            assert proc.poll() is None and time.time() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)
        assert url.startswith("http://127.0.0.1:")
        assert _get(f"{url}/api/jobs/") == 401  # no token: refused
        assert _get(f"{url}/api/jobs/", "wrong") == 403
        assert _get(f"{url}/api/jobs/", CANARIES["RAY_AUTH_TOKEN"]) == 200
        exposed = sockets(proc.pid)
        assert exposed and all(s["interface"] in ("127.0.0.1", "::ffff:127.0.0.1") for s in exposed), exposed
        answered = [s for s in exposed if isinstance(s["unauthenticated"], int)]
        assert answered and all(s["unauthenticated"] == 401 for s in answered), exposed  # only metrics answer
        assert proc.wait(timeout=500) == 0, "".join(lines)[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
    assert not (home / ".ray" / "auth_token").exists()  # RAY_AUTH_TOKEN was given: no file written
    report = tmp_path / "report"
    out = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "report", str(storage / "secure"), "--out", str(report)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    written = [p for d in (storage, report) for p in d.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" for p in written) and any("events.out.tfevents" in p.name for p in written)
    texts = {"the search's output": "".join(lines).encode(), "the report command's output": out.stdout + out.stderr}
    texts.update({str(p.relative_to(tmp_path)): p.read_bytes() for p in written})
    for name, value in CANARIES.items():
        leaks = [where for where, blob in texts.items() if value.encode() in blob]
        assert not leaks, f"{name} leaked into {leaks}"


def test_an_embedded_ray_gets_a_token_only_its_user_can_read(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    path = raysetup.ensure_local_token()
    assert path == tmp_path / ".ray" / "auth_token" and len(path.read_text()) == 64
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o077 == 0
    assert raysetup.ensure_local_token() is None  # found the next time, never replaced
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's own setting is respected
    (tmp_path / ".ray" / "auth_token").unlink()
    assert raysetup.ensure_local_token() is None and not (tmp_path / ".ray" / "auth_token").exists()


def test_joining_a_cluster_without_a_token_is_one_line_before_anything_starts(tmp_path, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    try:
        with pytest.raises(ClusterError, match="no token was found") as e:
            raysetup.start_ray(f"127.0.0.1:{server.getsockname()[1]}")
        assert "\n" not in str(e.value)
    finally:
        server.close()


def test_two_embedded_searches_starting_at_once_share_one_token(tmp_path, monkeypatch):
    """Two drivers creating the token at the same moment: one writes it, whole; the other finds it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH", raising=False)
    code = "from cluster import raysetup; print(raysetup.ensure_local_token())"
    env = {**os.environ}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    said = [p.communicate(timeout=60)[0].strip() for p in procs]
    token = tmp_path / ".ray" / "auth_token"
    assert said.count(str(token)) == 1 and said.count("None") == 3  # exactly one made it
    assert len(token.read_text()) == 64 and token.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in token.parent.iterdir()] == ["auth_token"]  # no temporary left behind
