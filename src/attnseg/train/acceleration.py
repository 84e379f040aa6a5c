"""CPU acceleration through oneDNN: bf16 autocast, channels_last, torch.compile, optional IPEX.

``auto`` picks bf16 where it is faster, not merely where it exists: with AMX tiles (amx_bf16) bf16
is the fast path; with avx512_bf16 alone, VDPBF16PS has the same peak as FP32 FMA and the casts
around it make bf16 *slower* (measured on a Xeon without AMX: AttU_Net w32 training step 2.31 s
bf16+channels_last vs 1.66 s fp32+channels_last), so there ``auto`` times one forward+backward
of the real model in each precision and keeps the faster; without native bf16 it is emulated and
``auto`` means fp32. intel-extension-for-pytorch is archived upstream: it is used
only when installed *and* built for the installed torch, never required.
"""

from __future__ import annotations

import enum
import importlib.metadata
import importlib.util
import logging
import os
from dataclasses import asdict, dataclass

import torch
from torch import nn

from attnseg.cpu_features import has_amx_bf16, has_native_bf16
from attnseg.errors import ModelConfigError

log = logging.getLogger(__name__)


class Precision(str, enum.Enum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


def resolve_precision(requested: str | Precision) -> Precision:
    """The precision from CPU flags alone (no measurement): bf16 for ``auto`` on native bf16."""
    try:
        p = Precision(requested)
    except ValueError:
        raise ModelConfigError(f"Unknown precision {requested!r}; use auto, fp32 or bf16.") from None
    if p is Precision.AUTO:
        return Precision.BF16 if has_native_bf16() else Precision.FP32
    return p


#: bf16 must beat fp32 by this factor in the probe to be chosen (noise guard).
PROBE_MIN_SPEEDUP = 1.1


def probe_step_ms(model: nn.Module, input_shape: tuple[int, ...], channels_last: bool,
                  repeats: int = 2) -> dict[str, float]:
    """Median forward+backward time (ms) of a copy of ``model`` in fp32 and in bf16 autocast.

    Runs on a deep copy with its own random generator: the model, its BatchNorm statistics
    and the global RNG (hence training reproducibility) are untouched.
    """
    import copy
    import statistics
    import time

    g = torch.Generator().manual_seed(0)
    x = torch.randn(*input_shape, generator=g)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    result = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        probe = copy.deepcopy(model).train()
        if channels_last:
            probe = probe.to(memory_format=torch.channels_last)
        times = []
        for i in range(repeats + 1):  # the first call creates the oneDNN primitives
            t = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = probe(x)
            out = out[0] if isinstance(out, tuple) else out
            out.float().mean().backward()
            if i:
                times.append((time.perf_counter() - t) * 1000)
        result[name] = round(statistics.median(times), 1)
        del probe
    return result


def choose_precision(requested: str | Precision, model: nn.Module | None = None,
                     input_shape: tuple[int, ...] | None = None,
                     channels_last: bool = True) -> tuple[Precision, str, dict[str, float] | None]:
    """``(precision, why, probe timings)`` for a request; ``auto`` measures where flags can't tell."""
    p = resolve_precision(requested)
    if Precision(requested) is not Precision.AUTO:
        return p, "requested", None
    if not has_native_bf16():
        return Precision.FP32, "auto: no native bf16 on this CPU", None
    if has_amx_bf16():
        return Precision.BF16, "auto: AMX bf16", None
    if model is None or input_shape is None:
        return Precision.BF16, "auto: avx512_bf16 (not measured)", None
    probe = probe_step_ms(model, input_shape, channels_last)
    fast = probe["fp32"] / probe["bf16"] >= PROBE_MIN_SPEEDUP
    why = (f"auto: avx512_bf16 without AMX, measured one training step: fp32 {probe['fp32']:.0f} ms, "
           f"bf16 {probe['bf16']:.0f} ms -> {'bf16' if fast else 'fp32'}")
    return (Precision.BF16 if fast else Precision.FP32), why, probe


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
    precision_reason: str = ""
    auto_probe_ms: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def plan_acceleration(precision: str = "auto", channels_last: bool | None = None,
                      compile: bool = False, threads: int | None = None, use_ipex: bool = True,
                      model: nn.Module | None = None,
                      input_shape: tuple[int, ...] | None = None) -> AccelerationPlan:
    """Decide the CPU path; pass ``model`` and the batch ``input_shape`` so ``auto`` can measure."""
    if threads:
        torch.set_num_threads(int(threads))
    cl = True if channels_last is None else bool(channels_last)
    p, why, probe = choose_precision(precision, model, input_shape, cl)
    return AccelerationPlan(
        precision=p.value,
        channels_last=cl,
        compile=bool(compile),
        ipex=ipex_status() if use_ipex else "disabled",
        threads=torch.get_num_threads(),
        cpu_bf16=has_native_bf16(),
        precision_reason=why,
        auto_probe_ms=probe,
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
