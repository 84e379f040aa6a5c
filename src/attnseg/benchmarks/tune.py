"""``seg-benchmark --tune``: search precision x hint x streams x requests, keep the fastest.

The runtime's ``auto`` only compares precisions under the caller's hint; this search also
tries the throughput hint's own stream count against explicit ones and one or two requests
per stream, in interleaved rounds (every candidate once per round, the order alternating),
and writes the winner beside the IR in benchmark_app's ``-load_config`` format
(``attnseg.runtime.config_file``), where ``Segmenter`` picks it up. The objective follows the
hint: ``latency`` times one request at a time (streams and requests stay at 1, so only the
precision varies); ``throughput`` times frames per second with the requests in flight.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.errors import BenchmarkError
from attnseg.measured_choice import pick_fastest

log = logging.getLogger(__name__)

OBJECTIVES = ("latency", "throughput")
ROUNDS = 3
ROUND_BUDGET_S = 0.25
MARGIN = 0.03


@dataclass
class TuneCandidate:
    """One configuration: the properties compiled with and the requests kept in flight."""

    properties: dict[str, str]
    nireq: int
    streams: int | None = None  # what the device chose (read back after compiling)
    rounds_ms: list[float] = field(default_factory=list)

    @property
    def label(self) -> str:
        p = self.properties
        return (f"{p.get('INFERENCE_PRECISION_HINT', 'default')} {p['PERFORMANCE_HINT'].lower()} "
                f"streams={self.streams} nireq={self.nireq}")

    @property
    def median_ms(self) -> float:
        return float(np.median(self.rounds_ms)) if self.rounds_ms else float("nan")


@dataclass
class TuneResult:
    model: str
    device: str
    objective: str
    candidates: list[TuneCandidate]
    winner: TuneCandidate
    reason: str
    config_path: Path | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "objective": self.objective,
                "candidates": [{**asdict(c), "label": c.label, "median_ms": round(c.median_ms, 3)}
                               for c in self.candidates],
                "winner": self.winner.label, "properties": self.winner.properties, "nireq": self.winner.nireq,
                "reason": self.reason, "config_path": str(self.config_path) if self.config_path else None,
                "seconds": round(self.seconds, 2),
                "benchmark_app": benchmark_app_line(self)}


def grid(objective: str, precisions: list[str | None], cores: int) -> list[TuneCandidate]:
    """The configurations to try (before de-duplication by what the device actually set)."""
    out = []
    for p in precisions:
        base = {"INFERENCE_PRECISION_HINT": p} if p else {}
        if objective == "latency":
            out.append(TuneCandidate({**base, "PERFORMANCE_HINT": "LATENCY"}, 1))
            continue
        for streams in sorted({1, max(1, cores // 2), cores} | {None}, key=lambda s: -1 if s is None else s):
            for per_stream in (1, 2):
                props = {**base, "PERFORMANCE_HINT": "THROUGHPUT"}
                if streams is not None:
                    props["NUM_STREAMS"] = str(streams)
                    props["PERFORMANCE_HINT_NUM_REQUESTS"] = str(streams * per_stream)
                out.append(TuneCandidate(props, streams * per_stream if streams else -per_stream))
    return out


def tune(model_path: str | Path, device: str = "CPU", objective: str = "latency", rounds: int = ROUNDS,
         write: bool = True) -> TuneResult:
    """Time every candidate in interleaved rounds; write the winner beside the IR (``write``)."""
    import openvino as ov

    from attnseg.devices import validate_device
    from attnseg.runtime.adapter import read_model, resolve_model_path
    from attnseg.runtime.autotune import candidate_precisions
    from attnseg.runtime.config_file import write_tuned_config

    if objective not in OBJECTIVES:
        raise BenchmarkError(f"--tune optimizes latency or throughput (-hint), not {objective!r}.")
    t0 = time.perf_counter()
    xml = resolve_model_path(model_path)
    core = ov.Core()
    device = validate_device(device, core)
    model = read_model(core, xml)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    precisions: list[str | None] = list(candidate_precisions(core, device)) or [None]
    runners: list[tuple[TuneCandidate, _Runner]] = []
    seen = set()
    for cand in grid(objective, precisions, cores):
        compiled = _compile(core, model, device, xml.name, cand.properties)
        optimal = max(1, int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        if cand.nireq < 0:  # the hint's own streams: one or two requests per stream
            cand.nireq = optimal * -cand.nireq
        try:
            cand.streams = int(compiled.get_property("NUM_STREAMS"))
        except (RuntimeError, TypeError, ValueError):
            cand.streams = None
        key = (cand.properties.get("INFERENCE_PRECISION_HINT"), cand.properties["PERFORMANCE_HINT"],
               cand.streams, cand.nireq)
        if key in seen:
            continue
        seen.add(key)
        cand.properties.setdefault("NUM_STREAMS", str(cand.streams) if cand.streams else "")
        if objective == "throughput":
            cand.properties["PERFORMANCE_HINT_NUM_REQUESTS"] = str(cand.nireq)
        cand.properties = {k: v for k, v in cand.properties.items() if v != ""}
        runners.append((cand, _Runner(compiled, cand.nireq, objective == "throughput")))
    first = max(r.run(1) for _, r in runners)  # warm-up: creates the primitives
    iters = int(min(200, max(3, ROUND_BUDGET_S * 1000.0 / max(first, 1e-3))))
    for i in range(rounds):
        order = runners if i % 2 == 0 else runners[::-1]
        for cand, runner in order:
            cand.rounds_ms.append(runner.run(iters))
    cands = [c for c, _ in runners]
    decision = pick_fastest({c.label: c.rounds_ms for c in cands}, baseline=cands[0].label, margin=MARGIN)
    winner = next(c for c in cands if c.label == decision.choice)
    path = write_tuned_config(xml, device, winner.properties) if write else None
    result = TuneResult(str(xml), device, objective, cands, winner, decision.reason, path, time.perf_counter() - t0)
    log.info("Tuned %s on %s for %s: %s", xml.name, device, objective, winner.label)
    return result


def _compile(core: Any, model: Any, device: str, name: str, properties: dict[str, str]) -> Any:
    from attnseg.errors import DeviceError, short_message

    try:
        return core.compile_model(model, device, properties)
    except RuntimeError as exc:
        raise DeviceError(f"{device} could not compile {name} with {properties}: {short_message(exc)}") from None


class _Runner:
    """Random inputs once; ``run(n)``: median latency (sync) or wall ms per inference (async)."""

    def __init__(self, compiled: Any, nireq: int, throughput: bool) -> None:
        import openvino as ov

        from attnseg.runtime.autotune import example_inputs

        data = self.data = example_inputs(compiled)  # kept alive: the tensors share its memory
        self.throughput = throughput
        self.queue = ov.AsyncInferQueue(compiled, nireq if throughput else 1)
        for i in range(len(self.queue)):
            for k, arr in enumerate(data):
                self.queue[i].set_input_tensor(k, ov.Tensor(arr))

    def run(self, iters: int) -> float:
        if not self.throughput:
            req, lat = self.queue[0], []
            for _ in range(iters):
                req.infer()
                lat.append(req.latency)
            return float(np.median(lat))
        n = len(self.queue) * iters
        t = time.perf_counter()
        for _ in range(n):
            self.queue.start_async()
        self.queue.wait_all()
        return (time.perf_counter() - t) * 1000.0 / n


def benchmark_app_line(result: TuneResult) -> str:
    """The benchmark_app command that reruns the winner from the written file."""
    cfg = result.config_path or "<config>"
    api = "-api sync" if result.objective == "latency" else f"-api async -nireq {result.winner.nireq}"
    return f"benchmark_app -m {result.model} -d {result.device} -load_config {cfg} {api}"


def format_tune(result: TuneResult) -> str:
    unit = "median latency ms" if result.objective == "latency" else "ms per frame (1000/FPS)"
    lines = [(f"Tuning {Path(result.model).name} on {result.device} for {result.objective} "
              f"({len(result.winner.rounds_ms)} interleaved rounds, {unit}):")]
    for c in sorted(result.candidates, key=lambda c: c.median_ms):
        mark = "*" if c is result.winner else " "
        extra = f"  ({1000.0 / c.median_ms:.1f} FPS)" if result.objective == "throughput" else ""
        lines.append(f" {mark} {c.label:<42}{c.median_ms:>10.2f}{extra}")
    lines.append(f"Winner: {result.winner.label} ({result.reason})")
    if result.config_path:
        lines.append(f"Wrote {result.config_path} (Segmenter, seg-infer and seg-serve use it); rerun with:")
        lines.append(f"  {benchmark_app_line(result)}")
    return "\n".join(lines)
