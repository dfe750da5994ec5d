"""A cluster that looks like a cluster: run in its own pytest process (`pytest -m cluster`).

A head with no CPUs (as in ray_config.yaml) and two 1-CPU worker nodes (ray.cluster_utils.Cluster,
loopback only), each node with its own data directory, home and cache and nothing shared but the
experiment storage: an S3 bucket served on 127.0.0.1 by moto's server (as Ray's own storage tests do).
The data set is a user's source that exists only in the bucket (a Hugging Face-style Parquet table of
Fashion-MNIST PNGs with class-name labels), on no node. Every node runs with token authentication on,
sharing one token: the job server refuses a request without it (401), and ``ray job submit`` with it
sends the search to the head through ``cluster/submit.py``, GTN scoring included; a worker node is
removed mid-search. Then: each Ray process prepared or found the data on its own node, the leaderboard
is in the bucket and reads with ``gtnnas leaderboard s3://...`` and plain pyarrow, the search has exactly
its budget, and a failing Ray task reaches the user as one line naming the node.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image
from ray.cluster_utils import Cluster
from ray.job_submission import JobStatus, JobSubmissionClient

from results.leaderboard import read_statuses
from search.data import find_file, read_idx
from search.datasets import CLASSES

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[1]
BUCKET = "gtnnas"
SOURCE_KEY = "data/fashion/train.parquet"  # a user's own data set: in the bucket only
RAY = str(Path(sys.executable).parent / "ray")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fashion_table(data_dir: Path, n: int) -> bytes:
    """The first ``n`` Fashion-MNIST training images as a Parquet table in the Hugging Face layout: an image
    struct of PNG bytes and a path, and the class names as string labels."""
    images = read_idx(find_file(data_dir / "FashionMNIST" / "raw", "train-images-idx3-ubyte"))[:n]
    labels = read_idx(find_file(data_dir / "FashionMNIST" / "raw", "train-labels-idx1-ubyte"))[:n]
    pngs = []
    for i, x in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(x).save(buf, format="PNG")
        pngs.append({"bytes": buf.getvalue(), "path": f"{i}.png"})
    names = CLASSES["fashion_mnist"]
    out = io.BytesIO()
    pq.write_table(pa.table({"image": pngs, "label": [names[int(y)] for y in labels]}), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def s3(data_dir):
    """moto's S3 server on loopback with the bucket and the data set in it; the AWS_* environment for it."""
    import boto3  # noqa: PLC0415  (lazy: boto3 and moto load for this test only, not at every collection)
    from moto.server import ThreadedMotoServer  # noqa: PLC0415  (lazy: as boto3)

    port = _port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key=SOURCE_KEY, Body=_fashion_table(data_dir, 3000))
    yield env
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _node_env(base: Path, name: str, s3env: dict[str, str]) -> dict[str, str]:
    """A machine of its own: empty data directory, home and cache; it may fetch only from the mirror."""
    home = base / name
    for d in ("data", "home", "cache"):
        (home / d).mkdir(parents=True, exist_ok=True)
    return {
        **s3env,
        "GTNNAS_DATA_DIR": str(home / "data"),
        "HOME": str(home / "home"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "GTNNAS_DATA_SOURCES": "data_dir,mirror",  # a built-in data set could come only from a mirror
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",  # every node authenticates with the one token of the run
        "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"],
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def _own(name: str, base: Path, s3env: dict[str, str]) -> dict:
    """What a node keeps to itself: its environment, its unpacked working_dir (on one machine the nodes
    share Ray's session folder, and a removed node would delete what the others run from), and its
    agent's port (not Ray's default, which another Ray on this machine may hold)."""
    return {
        "env_vars": _node_env(base, name, s3env),
        "runtime_env_dir_name": f"runtime_resources_{name}",
        "dashboard_agent_listen_port": _port(),
    }


@pytest.fixture(scope="module")
def cluster(s3, tmp_path_factory):
    assert not ray.is_initialized()
    base = tmp_path_factory.mktemp("nodes")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    dashboard = _port()
    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": True,
            "dashboard_host": "127.0.0.1",
            "dashboard_port": dashboard,
            **_own("head", base, s3),
        },
    )
    workers = [c.add_node(num_cpus=1, node_ip_address="127.0.0.1", **_own(f"w{i}", base, s3)) for i in range(2)]
    c.wait_for_nodes()
    ids = {"head": c.head_node.node_id, **{f"w{i}": w.node_id for i, w in enumerate(workers)}}
    yield c, workers, f"http://127.0.0.1:{dashboard}", base, ids
    c.shutdown()
    leftovers = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    for p in leftovers:  # ours only, by PID
        p.kill()
    psutil.wait_procs(leftovers, timeout=10)


def _submit(address: str, *args: str) -> str:
    """``ray job submit`` (the README's command), retried while the job server has no agent yet."""
    deadline = time.time() + 120
    while True:
        out = subprocess.run(
            [
                RAY,
                "job",
                "submit",
                "--address",
                address,
                "--no-wait",
                "--working-dir",
                str(ROOT),
                "--",
                sys.executable,
                "cluster/submit.py",
                "--config",
                "configs/smoke.yaml",
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if out.returncode == 0 or "No available agent" not in out.stderr or time.time() > deadline:
            break
        time.sleep(2)
    assert out.returncode == 0, out.stderr[-2000:]
    return re.search(r"raysubmit_[A-Za-z0-9]+", out.stdout)[0]


def _get(url: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def _finish(address: str, job: str, timeout: float = 400) -> tuple[str, str]:
    client = JobSubmissionClient(address)
    deadline = time.time() + timeout
    while (status := client.get_job_status(job)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
        assert time.time() < deadline, f"job {job} still {status}: {client.get_job_logs(job)[-4000:]}"
        time.sleep(1)
    return str(status), client.get_job_logs(job)


def _parts(prefix: str) -> int:
    fs, path = pafs.FileSystem.from_uri(f"s3://{BUCKET}/{prefix}/leaderboard")
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sum(i.base_name.startswith("part-") for i in infos)


@pytest.mark.timeout(900)
def test_a_search_submitted_to_a_cluster_whose_nodes_share_only_s3(cluster, sockets):
    c, workers, address, base, ids = cluster
    token = os.environ["RAY_AUTH_TOKEN"]
    assert _get(f"{address}/api/jobs/") == 401 and _get(f"{address}/api/jobs/", "wrong") == 403
    assert _get(f"{address}/api/jobs/", token) == 200
    exposed = sockets(os.getpid(), include_root=False)  # every node's processes; not this one's S3 server
    assert exposed and all(s["interface"] in ("127.0.0.1", "::ffff:127.0.0.1") for s in exposed), exposed
    answered = [s for s in exposed if isinstance(s["unauthenticated"], int)]
    assert answered and all(s["unauthenticated"] == 401 for s in answered), exposed  # only metrics answer
    started = time.time()
    args = [
        f"storage=s3://{BUCKET}/runs",
        "name=cluster",
        f"data.dataset=parquet:s3://{BUCKET}/{SOURCE_KEY}",
        "search.num_samples=10",
        "search.score=gtn+params",
        "search.real_steps=30",
        "search.flush_seconds=1",
    ]
    job = _submit(address, *args)
    deadline = time.time() + 400
    while _parts("runs/cluster") < 1:  # the teacher is meta-trained and the search under way
        assert time.time() < deadline, "no leaderboard part in the bucket"
        time.sleep(0.5)
    c.remove_node(workers[1], allow_graceful=False)  # a worker node is lost mid-search
    status, logs = _finish(address, job)
    wall = time.time() - started
    assert status == "SUCCEEDED", logs[-3000:]

    # every Ray process prepared or found the data on its own node, from the bucket
    def node_in(line: str) -> str:
        return next(name for name, node_id in ids.items() if f"({node_id[:8]})" in line)

    teacher = next(line for line in logs.splitlines() if "teacher stage: on node" in line)
    actor = next(line for line in logs.splitlines() if "shared actor: on node" in line)
    for line in (teacher, actor):
        data = base / node_in(line) / "data"
        assert f"prepared into {data}" in line or f"found in {data}" in line, line
    assert node_in(teacher) != "head"  # the head has no CPUs: the meta-training task ran on a worker
    fetched = {n for n in ("head", "w0", "w1") if (base / n / "data" / "prepared").is_dir()}
    assert {"w0", "w1"} & fetched and not any((base / n / "home" / ".cache").exists() for n in ("w0", "w1"))

    # the leaderboard is in the bucket, with exactly the budget, and plain readers read it
    uri = f"s3://{BUCKET}/runs/cluster"
    fs, path = pafs.FileSystem.from_uri(uri)
    final = pq.read_table(f"{path}/leaderboard.parquet", filesystem=fs).to_pandas()
    rows = pq.ParquetDataset(f"{path}/leaderboard", filesystem=fs).read().to_pandas()
    assert rows["trial_id"].nunique() == 10 and len(final) >= 1
    assert set(rows["node_id"]) <= {ids["w0"][:8], ids["w1"][:8]}  # trials ran on the workers only

    assert sorted(read_statuses(uri).values()) == ["TERMINATED"] * 10
    out = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "leaderboard", uri, "--format", "json", "--top", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and len(json.loads(out.stdout)) == min(3, len(final)), out.stderr
    print(
        f"cluster search: {wall:.0f} s; teacher: {teacher.strip()}; actor: {actor.strip()}; fetched on {fetched}; "
        f"leaderboard {uri}/leaderboard.parquet"
    )

    # a Ray task that fails on bad input: one line, naming the node and the cause, exit 2
    status, logs = _finish(
        address,
        _submit(
            address,
            f"storage=s3://{BUCKET}/runs",
            "name=broken",
            "data.dataset=fashion_mnist",
            f"data.mirror=s3://{BUCKET}/nothing",
            f"data.root={base}/nowhere",
            "search.teacher=fresh",
        ),
    )
    errors = [line for line in logs.splitlines() if line.startswith("gtnnas: error:")]
    assert status == "FAILED" and len(errors) == 1, logs[-3000:]
    assert "the teacher stage on node 127.0.0.1 (" in errors[0] and "could not get fashion_mnist" in errors[0]
    assert "Traceback" not in logs, logs[-3000:]
