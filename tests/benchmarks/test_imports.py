"""Importing the benchmarks (and its CLI) pulls in no heavy dependency: they load on use."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "onnx", "onnxruntime", "nncf", "matplotlib", "psutil", "openvino", "cv2")


def test_import_is_light():
    code = (
        "import sys, attnseg.benchmarking, attnseg.benchmarking.compare, attnseg.cli.benchmark\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"imported at package import: {out}"


def test_openvino_timing_needs_no_torch(bare_ir):
    """benchmark_openvino and its reports run with torch, onnxruntime and nncf unimportable."""
    code = (
        "import sys\n"
        "for name in ('torch', 'onnxruntime', 'nncf', 'onnx', 'matplotlib'):\n"
        "    sys.modules[name] = None\n"
        "from attnseg.benchmarking import benchmark_openvino, format_console\n"
        f"r = benchmark_openvino({str(bare_ir)!r}, hint='latency', niter=2)\n"
        "print(r.count, 'Count:' in format_console(r))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "2 True"
