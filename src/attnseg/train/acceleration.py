"""CPU acceleration through oneDNN: bf16 autocast, channels_last, torch.compile, optional IPEX.

``auto`` picks bf16 only where the CPU executes it natively (avx512_bf16 or AMX); elsewhere bf16
is emulated and slower than fp32. intel-extension-for-pytorch is archived upstream: it is used
only when installed *and* built for the installed torch, never required.
"""

from __future__ import annotations

import enum
import functools
import importlib.metadata
import importlib.util
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from attnseg.errors import ModelConfigError

log = logging.getLogger(__name__)


class Precision(str, enum.Enum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where unavailable)."""
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


def resolve_precision(requested: str | Precision) -> Precision:
    try:
        p = Precision(requested)
    except ValueError:
        raise ModelConfigError(f"Unknown precision {requested!r}; use auto, fp32 or bf16.") from None
    if p is Precision.AUTO:
        return Precision.BF16 if has_native_bf16() else Precision.FP32
    return p


def ipex_status() -> str:
    """'ok' if a matching intel-extension-for-pytorch is importable, else why not."""
    if importlib.util.find_spec("intel_extension_for_pytorch") is None:
        return "not installed"
    try:
        ipex_version = importlib.metadata.version("intel_extension_for_pytorch")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
    torch_mm = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    if not ipex_version.startswith(torch_mm):
        return f"skipped: ipex {ipex_version} does not match torch {torch.__version__}"
    return "ok"


@dataclass
class AccelerationPlan:
    """What ran, recorded in the checkpoint's ``trained_with``."""

    precision: str
    channels_last: bool
    compile: bool
    ipex: str
    threads: int
    cpu_bf16: bool

    def to_dict(self) -> dict:
        return asdict(self)


def plan_acceleration(precision: str = "auto", channels_last: bool | None = None,
                      compile: bool = False, threads: int | None = None, use_ipex: bool = True) -> AccelerationPlan:
    p = resolve_precision(precision)
    if threads:
        torch.set_num_threads(int(threads))
    return AccelerationPlan(
        precision=p.value,
        channels_last=True if channels_last is None else bool(channels_last),
        compile=bool(compile),
        ipex=ipex_status() if use_ipex else "disabled",
        threads=torch.get_num_threads(),
        cpu_bf16=has_native_bf16(),
    )


def prepare_model(model: nn.Module, optimizer: torch.optim.Optimizer | None, plan: AccelerationPlan):
    """Apply memory format, IPEX and compile to ``model`` (and optimizer, for IPEX).

    Returns ``(model_to_call, optimizer)``; the uncompiled module stays the one to save.
    """
    if plan.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if plan.ipex == "ok":  # pragma: no cover - IPEX is not installed on CI
        import intel_extension_for_pytorch as ipex

        dtype = torch.bfloat16 if plan.precision == "bf16" else torch.float32
        model, optimizer = ipex.optimize(model, optimizer=optimizer, dtype=dtype)
    runner = model
    if plan.compile:
        runner = torch.compile(model)
    return runner, optimizer


def autocast(plan: AccelerationPlan):
    """bf16 autocast on CPU when the plan says so, a no-op context otherwise."""
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=plan.precision == "bf16")


def to_input(x: torch.Tensor, plan: AccelerationPlan) -> torch.Tensor:
    if plan.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
