"""What the numbers were measured on: CPU, the flags that decide speed, cores, load, versions.

Stdlib only (``/proc`` and ``importlib.metadata``): asking for a package's version must not
import torch. The OpenVINO device name and capabilities are added when openvino is present.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

#: CPU flags that change which kernels OpenVINO / oneDNN / PyTorch can use.
SPEED_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "avx512_bf16",
    "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16",
)
#: Packages whose versions go into every report (read from metadata, never imported).
PACKAGES = ("attnseg", "openvino", "torch", "nncf", "onnxruntime", "onnx", "numpy", "opencv-python-headless")


@dataclass
class MachineInfo:
    """The machine a report was measured on."""

    cpu_model: str
    cpu_flags: list[str]
    logical_cores: int
    physical_cores: int | None
    usable_cores: int
    memory_total_mb: float | None
    os: str
    python: str
    versions: dict[str, str]
    openvino_devices: dict[str, str] = field(default_factory=dict)
    openvino_cpu_capabilities: list[str] = field(default_factory=list)
    load_average: list[float] = field(default_factory=list)
    timestamp: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        """Short human-readable lines for console and Markdown reports."""
        ver = ", ".join(f"{k} {v}" for k, v in self.versions.items() if v != "not installed")
        cores = f"{self.logical_cores} logical"
        if self.physical_cores:
            cores += f" / {self.physical_cores} physical"
        if self.usable_cores != self.logical_cores:
            cores += f" ({self.usable_cores} usable)"
        load = " ".join(f"{v:.2f}" for v in self.load_average) if self.load_average else "n/a"
        return [
            f"CPU: {self.cpu_model} ({cores} cores)",
            f"Speed flags: {' '.join(self.cpu_flags) or 'none of ' + ', '.join(SPEED_FLAGS[:4])}",
            f"Load average (1/5/15 min) at start: {load}",
            f"Versions: {ver}",
        ]


def _cpuinfo() -> tuple[str, set[str], int | None]:
    from attnseg.cpu_features import cpu_flags

    model, flags, cores = platform.processor() or platform.machine(), set(cpu_flags()), set()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return model, flags, None
    phys = "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name":
            model = value
        elif key == "physical id":
            phys = value
        elif key == "core id":
            cores.add((phys, value))
    return model, flags, len(cores) or None


def _proc_mib(path: str, key: str) -> float | None:
    """A ``key: N kB`` line of a /proc file, in MiB (None where there is no /proc)."""
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.startswith(f"{key}:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        pass
    return None


def _memory_total_mb() -> float | None:
    return _proc_mib("/proc/meminfo", "MemTotal")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions from package metadata; nothing is imported."""
    out = {}
    for name in names:
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return []


def _openvino_devices() -> tuple[dict[str, str], list[str]]:
    try:
        import openvino as ov
    except ImportError:
        return {}, []
    core = ov.Core()
    names, caps = {}, []
    for dev in core.available_devices:
        try:
            names[dev] = str(core.get_property(dev, "FULL_DEVICE_NAME"))
        except RuntimeError:
            names[dev] = dev
    if "CPU" in core.available_devices:
        try:
            caps = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
        except RuntimeError:
            caps = []
    return names, caps


def machine_info(with_openvino: bool = True) -> MachineInfo:
    """Describe this machine now (CPU, speed flags, cores, memory, load, versions)."""
    model, flags, physical = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    devices, caps = _openvino_devices() if with_openvino else ({}, [])
    return MachineInfo(
        cpu_model=model,
        cpu_flags=[f for f in SPEED_FLAGS if f in flags],
        logical_cores=os.cpu_count() or 1,
        physical_cores=physical,
        usable_cores=usable,
        memory_total_mb=_memory_total_mb(),
        os=f"{platform.system()} {platform.release()}",
        python=sys.version.split()[0],
        versions=package_versions(),
        openvino_devices=devices,
        openvino_cpu_capabilities=caps,
        load_average=load_average(),
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far (VmHWM), in MiB."""
    peak = _proc_mib("/proc/self/status", "VmHWM")
    if peak is not None:
        return peak
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    except (ImportError, OSError):
        return None
