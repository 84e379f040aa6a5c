"""The cluster tests' model, real Kvasir-SEG images, a loopback S3 server and a two-raylet Ray cluster.

The IR fixtures come from tests/runtime/fixtures.py. The S3 server (``moto[server]``) and the Ray
cluster listen on 127.0.0.1 only; the S3 environment (``AWS_ENDPOINT_URL`` and test credentials)
is set before Ray starts, so every Ray worker reads and writes S3 through the standard
environment, as on a real cluster.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cluster_ir(embedded_att_ir) -> Path:
    """Binary AttU_Net (base width 4, 64x64), preprocessing embedded, attention outputs: export's layout."""
    return embedded_att_ir


@pytest.fixture(scope="session")
def kvasir_60(shared_data, tmp_path_factory) -> Path:
    """A folder of 60 real Kvasir-SEG images (symlinks)."""
    images = sorted((shared_data / "kvasir-seg" / "images").glob("*.jpg"))[:60]
    assert len(images) == 60, "Kvasir-SEG images are missing from the shared data"
    folder = tmp_path_factory.mktemp("kvasir60")
    for p in images:
        (folder / p.name).symlink_to(p)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on a free loopback port, and the standard S3 environment."""
    pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    patch = pytest.MonkeyPatch()
    for k, v in env.items():
        patch.setenv(k, v)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.2)
        client = boto3.client("s3")
        yield client
    finally:
        patch.undo()
        proc.terminate()
        proc.wait(timeout=30)


def upload(client, bucket: str, prefix: str, folder: Path) -> None:
    if bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=bucket)
    for p in sorted(q for q in folder.iterdir() if q.is_file()):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{p.name}", Body=p.read_bytes())


def download(client, bucket: str, prefix: str) -> dict[str, bytes]:
    files = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            files[obj["Key"][len(prefix) + 1:]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return files


@pytest.fixture(scope="session")
def ray_cluster(s3_server):
    """Two raylets on 127.0.0.1 (1 CPU each, small object stores): a two-node cluster on one machine."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback, as start_local_ray (child drivers too)
    ray = pytest.importorskip("ray")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False  # the same switch, ray being imported already
    args = {"num_cpus": 1, "node_ip_address": "127.0.0.1", "object_store_memory": 80 * 1024 * 1024}
    cluster = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
    try:
        cluster.add_node(**args)
        ray.init(address=cluster.address, _node_ip_address="127.0.0.1", logging_level="WARNING",
                 log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
