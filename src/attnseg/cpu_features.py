"""What this CPU offers for bf16, from its feature flags (stdlib only).

Flags say what *can* run, not what is faster: with avx512_bf16 and no AMX, OpenVINO's bf16
default was 1.8x slower than f32 on a Xeon and 1.9x faster on an AMD EPYC (Zen 5). Which
precision to use is therefore measured (``attnseg.runtime.autotune``,
``attnseg.train.acceleration``); these flags only decide whether bf16 is worth measuring.
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


@functools.lru_cache(maxsize=1)
def cpu_model_name() -> str:
    """The CPU's marketing name (``model name`` in /proc/cpuinfo), else the platform's processor."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def has_native_bf16() -> bool:
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def has_amx_bf16() -> bool:
    return "amx_bf16" in cpu_flags()
