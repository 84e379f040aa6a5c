"""Start the real ``seg-serve`` in a subprocess on 127.0.0.1, with the deploy manifest's arguments.

The command line comes from ``docs/deploy/inferenceservice.yaml``: only the model path, the
host and the two ports are replaced, so the tests run what Kubernetes would run.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "docs" / "deploy" / "inferenceservice.yaml"
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 60.0


def manifest_container() -> dict:
    import yaml

    doc = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return doc["spec"]["predictor"]["containers"][0]


def seg_serve_executable() -> list[str]:
    """The installed console script beside this interpreter (what a user runs), else ``-m``."""
    script = Path(sys.executable).with_name("seg-serve")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "attnseg.cli.serve"]


def manifest_command(model: Path, host: str, http_port: int, grpc_port: int) -> tuple[list[str], list[str]]:
    """(manifest command + args, the same with model/host/ports replaced)."""
    c = manifest_container()
    original = [*c["command"], *[str(a) for a in c["args"]]]
    replaced = list(original)
    values = {"--host": host, "--http-port": str(http_port), "--grpc-port": str(grpc_port)}
    for i, arg in enumerate(replaced):
        if arg.startswith("/mnt/models"):
            replaced[i] = str(model)
        elif i > 0 and replaced[i - 1] in values:
            replaced[i] = values[replaced[i - 1]]
    return original, replaced


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    command: list[str]
    http_port: int
    grpc_port: int
    log_path: Path
    first_ready_status: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def stop(self) -> int:
        """SIGTERM, then wait (bounded); kill only if it hangs. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_server(model: Path, log_path: Path, extra_args: list[str] | None = None) -> Server:
    http_port, grpc_port = free_port(), free_port()
    while grpc_port == http_port:
        grpc_port = free_port()
    _, cmd = manifest_command(model, "127.0.0.1", http_port, grpc_port)
    cmd = seg_serve_executable() + cmd[1:] + list(extra_args or [])
    log = open(log_path, "wb")  # noqa: SIM115 - the child writes to it until it exits
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(proc, cmd, http_port, grpc_port, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"seg-serve exited with {proc.returncode}:\n{server.log_text()[-3000:]}")
        try:
            status, _ = server.get("/v2/health/ready")
        except OSError:
            time.sleep(0.25)
            continue
        server.first_ready_status = status
        return server
    server.stop()
    raise RuntimeError(f"seg-serve did not answer within {START_TIMEOUT_S} s:\n{server.log_text()[-3000:]}")
