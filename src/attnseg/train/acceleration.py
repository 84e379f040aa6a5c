"""CPU acceleration through oneDNN: bf16 autocast, channels_last, torch.compile, optional IPEX.

``auto`` picks bf16 where it is measured faster, not merely where it exists: bf16 autocast was
1.4x *slower* than fp32 for an AttU_Net training step on a Xeon with avx512_bf16 and no AMX,
and faster on other CPUs with the same flags. Where the CPU computes bf16 natively, ``auto``
times a forward+backward of the real model at the real batch in both precisions, in
interleaved rounds (fp32, bf16, bf16, fp32, ...), and takes bf16 only when it is more than
``PROBE_MARGIN`` faster in the median *and* faster in most rounds (``attnseg.measured_choice``);
otherwise fp32. A one-shot probe flipped with machine load; this one keeps fp32 when the two are
within noise. The decision is cached per user (CPU model, torch version, architecture and size,
input size and batch, memory format, threads), so a resumed or repeated run does not probe
again. Without native bf16 it is emulated and ``auto`` means fp32.
intel-extension-for-pytorch is archived upstream: it is used only when installed *and* built
for the installed torch, never required.
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

from attnseg.cpu_features import cpu_model_name, has_native_bf16
from attnseg.errors import ModelConfigError
from attnseg.measured_choice import Decision, pick_fastest
from attnseg.user_cache import JsonCache, cache_key

log = logging.getLogger(__name__)


class Precision(str, enum.Enum):
    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


def resolve_precision(requested: str | Precision) -> Precision:
    """``requested`` as a ``Precision`` (``auto`` stays ``auto``: it is decided by measuring)."""
    try:
        return Precision(requested)
    except ValueError:
        raise ModelConfigError(f"Unknown precision {requested!r}; use auto, fp32 or bf16.") from None


#: bf16 must beat fp32 by more than this (and in most rounds) to be chosen.
PROBE_MARGIN = 0.10
PROBE_ROUNDS = 3
CACHE_NAME = "train_precision.json"


def probe_rounds_ms(model: nn.Module, input_shape: tuple[int, ...], channels_last: bool,
                    rounds: int = PROBE_ROUNDS, steps: int = 1) -> dict[str, list[float]]:
    """Forward+backward time (ms) of a copy of ``model`` in fp32 and bf16 autocast, per round.

    Rounds alternate the order (fp32 bf16, bf16 fp32, ...) so load on a shared machine hits both.
    Runs on deep copies with their own random generator: the model, its BatchNorm statistics
    and the global RNG (hence training reproducibility) are untouched.
    """
    import copy
    import statistics
    import time

    g = torch.Generator().manual_seed(0)
    x = torch.randn(*input_shape, generator=g)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    probes = {}
    for name in ("fp32", "bf16"):
        probe = copy.deepcopy(model).train()
        probes[name] = probe.to(memory_format=torch.channels_last) if channels_last else probe

    def step(name: str) -> float:
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bf16"):
            out = probes[name](x)
        out = out[0] if isinstance(out, tuple) else out
        out.float().mean().backward()
        return (time.perf_counter() - t) * 1000

    for name in probes:  # the first call creates the oneDNN primitives
        step(name)
    result: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for r in range(rounds):
        for name in (("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32")):
            result[name].append(round(statistics.median(step(name) for _ in range(steps)), 1))
    return result


def decide_precision(rounds_ms: dict[str, list[float]], margin: float = PROBE_MARGIN) -> Decision:
    """bf16 only when faster than fp32 by more than ``margin`` in the median and in most rounds."""
    return pick_fastest(rounds_ms, baseline="fp32", margin=margin)


def choose_precision(requested: str | Precision, model: nn.Module | None = None,
                     input_shape: tuple[int, ...] | None = None,
                     channels_last: bool = True) -> tuple[Precision, str, dict[str, float] | None]:
    """``(precision, why, median probe timings)``; ``auto`` measures (or reads the cached measurement)."""
    p = resolve_precision(requested)
    if p is not Precision.AUTO:
        return p, "requested", None
    if not has_native_bf16():
        return Precision.FP32, "auto: no native bf16 on this CPU", None
    if model is None or input_shape is None:
        return Precision.FP32, "auto: not measured (no model to time), fp32", None
    n_params = sum(t.numel() for t in model.parameters())
    key = cache_key(cpu_model_name(), torch.__version__, type(model).__name__, n_params, tuple(input_shape),
                    channels_last, torch.get_num_threads())
    cache = JsonCache(CACHE_NAME)
    entry = cache.get(key)
    if isinstance(entry, dict) and entry.get("choice") in ("fp32", "bf16"):
        return Precision(entry["choice"]), f"auto (cached): {entry.get('reason', '')}", entry.get("medians_ms")
    decision = decide_precision(probe_rounds_ms(model, input_shape, channels_last))
    cache.put(key, {**decision.to_dict(), "cpu": cpu_model_name(), "torch": torch.__version__,
                    "model": type(model).__name__, "parameters": n_params, "input_shape": list(input_shape)})
    return Precision(decision.choice), f"auto (measured): {decision.reason}", decision.medians_ms


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
