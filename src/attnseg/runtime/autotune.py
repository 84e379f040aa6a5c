"""``inference_precision="auto"``: the precision that is fastest for this model on this device, measured.

Which precision is faster depends on the CPU, not on a flag: OpenVINO's CPU default (bf16
where the CPU has it) was 1.8x slower than f32 on a Xeon with avx512_bf16 and no AMX, and
1.9x *faster* on an AMD EPYC (Zen 5) with the same flags. So ``auto`` compiles the model in
each precision the device offers (``OPTIMIZATION_CAPABILITIES``) with the Segmenter's own
properties, times one request at a time in a few short interleaved rounds, and keeps f32
unless another precision is clearly faster (``attnseg.measured_choice``). The decision is
cached per user, keyed by the device's full name, the OpenVINO version and the model's sha256
(not by hint or streams), so the next start costs no probe and every front end on this machine
(seg-infer, the server, Ray workers, the tiler) computes the same model in the same precision
and gives the same masks. Concurrent first starts take a lock: one measures, the others read.
GPU and NPU keep their own default (f16), which is their fast path; other devices (AUTO,
HETERO, ...) keep theirs too.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from attnseg.errors import InvalidOptionError
from attnseg.measured_choice import Decision, pick_fastest
from attnseg.runtime.options import INFERENCE_PRECISIONS
from attnseg.user_cache import JsonCache, cache_key, files_digest

log = logging.getLogger(__name__)

PRECISION_KEY = "INFERENCE_PRECISION_HINT"

CACHE_NAME = "runtime_precision.json"
#: a lower precision must be this much faster than f32 (and faster in most rounds) to be used.
MARGIN = 0.05
ROUNDS = 3
ROUND_BUDGET_S = 0.08  # time per option per round (at least MIN_ITERS inferences)
MIN_ITERS, MAX_ITERS = 3, 40


@dataclass
class PrecisionChoice:
    """What ``inference_precision`` resolved to and why (``Segmenter.precision_choice``)."""

    requested: str
    #: the INFERENCE_PRECISION_HINT passed to compile_model; None = the device's own default.
    precision: str | None
    #: requested | config | tuned config | device default | only candidate | measured | cached
    source: str
    reason: str = ""
    medians_ms: dict[str, float] = field(default_factory=dict)
    probe_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_precision(value: str | None) -> str:
    choice = "default" if value is None else str(value).strip().lower()
    if choice not in INFERENCE_PRECISIONS:
        raise InvalidOptionError(f"Unknown inference precision {value!r}; use one of "
                                 f"{', '.join(INFERENCE_PRECISIONS)}.")
    return choice


def candidate_precisions(core: ov.Core, device: str) -> list[str]:
    """Precisions worth timing on ``device``: f32 plus what the CPU computes natively.

    Empty for GPU, NPU and virtual devices: their default (f16 on GPU/NPU) is kept."""
    if device != "CPU":
        return []
    try:
        caps = {str(c).upper() for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")}
    except RuntimeError:
        caps = set()
    return ["f32"] + [p for p, cap in (("bf16", "BF16"), ("f16", "FP16")) if cap in caps]


def device_full_name(core: ov.Core, device: str) -> str:
    try:
        return str(core.get_property(device, "FULL_DEVICE_NAME"))
    except RuntimeError:
        return device


def resolve_precision(
    core: ov.Core,
    device: str,
    xml_path: Path | None,
    requested: str | None,
    props: dict[str, Any],
    compile_fn: Callable[[dict[str, Any]], ov.CompiledModel],
    config: Mapping[str, Any] | None = None,
    digest: str | None = None,
) -> tuple[dict[str, Any], PrecisionChoice, ov.CompiledModel | None]:
    """The compile properties with the precision settled, the choice, and (after a probe) the
    winner already compiled. ``props`` may carry a precision from a tuned config file;
    ``config`` is the caller's explicit property dict, whose precision always wins. The cache key
    hashes the files at ``xml_path`` (or takes ``digest``, for an in-memory IR)."""
    choice = parse_precision(requested)
    props = dict(props)
    if config and PRECISION_KEY in config:
        return props, PrecisionChoice(choice, str(config[PRECISION_KEY]), "config", "set in config"), None
    if choice in ("f32", "bf16", "f16"):
        props[PRECISION_KEY] = choice
        return props, PrecisionChoice(choice, choice, "requested"), None
    if choice == "default":
        props.pop(PRECISION_KEY, None)
        return props, PrecisionChoice(choice, None, "device default"), None
    if PRECISION_KEY in props:
        return props, PrecisionChoice(choice, str(props[PRECISION_KEY]), "tuned config",
                                      "from the tuned configuration beside the model"), None
    candidates = candidate_precisions(core, device)
    if not candidates:
        return props, PrecisionChoice(choice, None, "device default", f"{device} keeps its own default"), None
    if len(candidates) == 1:
        props[PRECISION_KEY] = candidates[0]
        return props, PrecisionChoice(choice, candidates[0], "only candidate",
                                      f"{candidates[0]} is the only native precision here"), None

    # an ov.Model given in memory has nothing to hash: it is measured, not cached
    if digest is None and xml_path is not None:
        digest = files_digest([xml_path, Path(xml_path).with_suffix(".bin")])
    key = cache_key(device_full_name(core, device), device, ov.get_version(), digest) if digest else None
    cache = JsonCache(CACHE_NAME) if key is not None else _NoCache()
    with cache.locked():
        entry = cache.get(key)
        if isinstance(entry, dict) and entry.get("precision") in candidates:
            props[PRECISION_KEY] = entry["precision"]
            return props, PrecisionChoice(choice, entry["precision"], "cached", str(entry.get("reason", "")),
                                          dict(entry.get("medians_ms", {}))), None

        t0 = time.perf_counter()
        compiled = {p: compile_fn({**props, PRECISION_KEY: p}) for p in candidates}
        decision = time_options(compiled)
        probe_s = round(time.perf_counter() - t0, 3)
        winner = decision.choice
        props[PRECISION_KEY] = winner
        cache.put(key, {"precision": winner, "reason": decision.reason, "medians_ms": decision.medians_ms,
                        "rounds_ms": decision.rounds_ms, "device_name": device_full_name(core, device),
                        "openvino": ov.get_version(), "model": str(xml_path), "probe_s": probe_s,
                        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    keep = compiled.pop(winner)
    compiled.clear()
    return props, PrecisionChoice(choice, winner, "measured", decision.reason, decision.medians_ms, probe_s), keep


def time_options(compiled: Mapping[str, ov.CompiledModel], rounds: int = ROUNDS,
                 baseline: str = "f32", margin: float = MARGIN) -> Decision:
    """Interleaved rounds over the compiled options: median latency of one request at a time."""
    runners = {name: _Runner(cm) for name, cm in compiled.items()}
    first = max(r.run(1) for r in runners.values())  # untimed warm-up: creates the primitives
    iters = int(min(MAX_ITERS, max(MIN_ITERS, ROUND_BUDGET_S * 1000.0 / max(first, 1e-3))))
    times: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(rounds):
        order = list(runners) if i % 2 == 0 else list(reversed(runners))  # A B, B A, A B: no fixed position
        for name in order:
            times[name].append(runners[name].run(iters))
    return pick_fastest(times, baseline if baseline in times else next(iter(times)), margin)


class _Runner:
    """One compiled option with one request, fed random data once (inference only, as benchmark_app)."""

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.data = example_inputs(compiled)  # kept alive: the tensors share its memory
        self.request = compiled.create_infer_request()
        for k, arr in enumerate(self.data):
            self.request.set_input_tensor(k, ov.Tensor(arr))

    def run(self, iters: int) -> float:
        lat = []
        for _ in range(iters):
            self.request.infer()
            lat.append(self.request.latency)
        return float(np.median(lat))


def example_inputs(compiled: ov.CompiledModel, size: int = 256) -> list[np.ndarray]:
    """Random data for each input; dynamic dimensions become 1 (batch) or ``size``."""
    rng = np.random.default_rng(0)
    out = []
    for port in compiled.inputs:
        ps = port.get_partial_shape()
        shape = [d.get_length() if d.is_static else (1 if i == 0 else size) for i, d in enumerate(ps)]
        dtype = np.dtype(port.get_element_type().to_dtype())
        if np.issubdtype(dtype, np.floating):
            out.append(rng.standard_normal(shape).astype(dtype))
        else:
            out.append(rng.integers(0, 256 if dtype == np.uint8 else 2, shape).astype(dtype))
    return out


class _NoCache:
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        yield

    def get(self, key: Any) -> None:
        return None

    def put(self, key: Any, entry: Any) -> bool:
        return False
