"""seg-serve's user errors: one line, non-zero exit, no traceback, nothing compiled for nothing."""

from __future__ import annotations

import socket
import subprocess
import sys

from ._server import seg_serve_executable


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*seg_serve_executable(), *args], capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)


def test_missing_model(tmp_path):
    proc = run(str(tmp_path / "missing.xml"), "--host", "127.0.0.1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "missing.xml does not exist" in proc.stderr


def test_port_in_use_is_one_clear_line(zoo_export):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        proc = run(str(zoo_export["xml"]), "--host", "127.0.0.1", "--http-port", str(port), "--no-grpc")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"Cannot listen on 127.0.0.1:{port} (--http-port)" in proc.stderr


def test_name_with_several_models_is_refused(zoo_export):
    proc = run(str(zoo_export["xml"]), str(zoo_export["repo"]), "--name", "x", "--host", "127.0.0.1")
    assert proc.returncode == 2 and "--name names one model, but 2 were given" in proc.stderr


def test_help_lists_the_flags():
    proc = subprocess.run([sys.executable, "-m", "attnseg.cli.serve", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0
    for flag in ("--http-port", "--grpc-port", "--device", "--hint", "--name", "--max-request-mb",
                 "--max-image-pixels", "--max-request-pixels", "--max-response-mb", "--max-json-values",
                 "--max-inflight-mb", "--header-timeout", "--body-timeout", "--idle-timeout", "--max-connections",
                 "--auth-token-file", "--model-control"):
        assert flag in proc.stdout
    assert "default 127.0.0.1" in proc.stdout


def test_bad_token_file_and_limits_are_one_clear_line(tmp_path, zoo_export):
    proc = run(str(zoo_export["xml"]), "--auth-token-file", str(tmp_path / "nope.txt"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--auth-token-file" in proc.stderr
    (tmp_path / "empty.txt").write_text("\n")
    proc = run(str(zoo_export["xml"]), "--auth-token-file", str(tmp_path / "empty.txt"))
    assert proc.returncode == 2 and "is empty" in proc.stderr
    proc = run(str(zoo_export["xml"]), "--max-image-pixels", "0")
    assert proc.returncode == 2 and "--max-image-pixels must be > 0" in proc.stderr
