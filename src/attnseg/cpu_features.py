"""What this CPU can do for bf16, from its feature flags (stdlib only: the runtime uses it).

bf16 is only a speed-up where the CPU has matrix units for it (AMX, ``amx_bf16``). With
``avx512_bf16`` alone, VDPBF16PS has the same peak as FP32 FMA and the conversions around it
cost extra: measured on this project's Xeon (avx512_bf16, no AMX), OpenVINO ran an AttU_Net
FP32 IR 1.8x slower in its default bf16 than forced to f32, and a PyTorch training step was
1.4x slower under bf16 autocast. OpenVINO and PyTorch both still pick bf16 there by default.
"""

from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where unavailable, e.g. not Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_native_bf16() -> bool:
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def has_amx_bf16() -> bool:
    return "amx_bf16" in cpu_flags()


def bf16_without_amx() -> bool:
    """True where bf16 exists but is no faster than f32 (avx512_bf16 without AMX)."""
    return "avx512_bf16" in cpu_flags() and not has_amx_bf16()


def preferred_cpu_inference_precision() -> str | None:
    """``'f32'`` where OpenVINO's CPU default (bf16) is the slower choice, else ``None`` (keep it)."""
    return "f32" if bf16_without_amx() else None
