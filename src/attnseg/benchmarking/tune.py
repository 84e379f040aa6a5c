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
    iterations: dict[str, int] = field(default_factory=dict)  # inferences timed per round, by label

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "objective": self.objective,
                "candidates": [{**asdict(c), "label": c.label, "median_ms": round(c.median_ms, 3)}
                               for c in self.candidates],
                "winner": self.winner.label, "properties": self.winner.properties, "nireq": self.winner.nireq,
                "reason": self.reason, "config_path": str(self.config_path) if self.config_path else None,
                "seconds": round(self.seconds, 2), "iterations_per_round": self.iterations,
                "benchmark_app": benchmark_app_line(self)}


def grid(objective: str, precisions: list[str | None], cores: int, nstreams: int | None = None,
         nireq: int | None = None) -> list[TuneCandidate]:
    """The configurations to try (before de-duplication by what the device actually set);
    ``nstreams`` / ``nireq`` (throughput only) pin the streams / the requests in flight."""
    out = []
    for p in precisions:
        base = {"INFERENCE_PRECISION_HINT": p} if p else {}
        if objective == "latency":
            out.append(TuneCandidate({**base, "PERFORMANCE_HINT": "LATENCY"}, 1))
            continue
        stream_counts = {nstreams} if nstreams else {1, max(1, cores // 2), cores, None}
        for streams in sorted(stream_counts, key=lambda s: -1 if s is None else s):
            for per_stream in ((None,) if nireq else (1, 2)):
                props = {**base, "PERFORMANCE_HINT": "THROUGHPUT"}
                requests = nireq or (streams * per_stream if streams else -per_stream)
                if streams is not None:
                    props["NUM_STREAMS"] = str(streams)
                    props["PERFORMANCE_HINT_NUM_REQUESTS"] = str(requests)
                out.append(TuneCandidate(props, requests))
    return out


def check_tune_options(objective: str, nstreams: int | None, nireq: int | None, niter: int | None) -> None:
    """What the search can honour; anything else is refused before a model is compiled."""
    if objective not in OBJECTIVES:
        raise BenchmarkError(f"--tune optimizes latency or throughput (-hint), not {objective!r}.")
    if objective == "latency" and (nstreams or nireq):
        raise BenchmarkError("--tune -hint latency times one request on one stream; -nstreams and -nireq apply to "
                             "-hint throughput.")
    for flag, value in (("-nstreams", nstreams), ("-nireq", nireq), ("-niter", niter)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BenchmarkError(f"{flag} must be a positive integer, got {value!r}.")


def _check_config_target(xml: Path) -> None:
    """The winner is written to MODEL.load_config.json: refuse a folder (or an unwritable
    folder) in its place now, not after the whole search."""
    from attnseg.atomic import check_creatable
    from attnseg.errors import InputFileError
    from attnseg.runtime.config_file import tuned_config_path

    path = tuned_config_path(xml)
    if path.exists() and not path.is_file():
        raise InputFileError(f"{path} is a folder, not a file: --tune writes its result there. Move it away.")
    check_creatable(path, "the tuned configuration ")


def tune(model_path: str | Path, device: str = "CPU", objective: str = "latency", rounds: int = ROUNDS,
         write: bool = True, precision: str | None = None, nstreams: int | None = None, nireq: int | None = None,
         niter: int | None = None) -> TuneResult:
    """Time every candidate in interleaved rounds; write the winner beside the IR (``write``).

    ``precision`` (``-infer_precision``) searches that precision only; ``nstreams`` / ``nireq``
    (throughput) pin streams / requests; ``niter`` is the inferences timed per candidate per round
    (default: what fits ``ROUND_BUDGET_S``)."""
    import openvino as ov

    from attnseg.devices import validate_device
    from attnseg.runtime.adapter import read_model, resolve_model_path
    from attnseg.runtime.autotune import candidate_precisions
    from attnseg.runtime.config_file import write_tuned_config

    check_tune_options(objective, nstreams, nireq, niter)
    t0 = time.perf_counter()
    xml = resolve_model_path(model_path)
    if write:
        _check_config_target(xml)
    core = ov.Core()
    device = validate_device(device, core)
    model = read_model(core, xml)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    precisions: list[str | None] = ([precision.lower()] if precision
                                    else list(candidate_precisions(core, device)) or [None])
    runners: list[tuple[TuneCandidate, _Runner]] = []
    seen = set()
    for cand in grid(objective, precisions, cores, nstreams, nireq):
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
    counts = {c.label: (iters if niter is None else r.waves(niter)) for c, r in runners}
    for i in range(rounds):
        order = runners if i % 2 == 0 else runners[::-1]
        for cand, runner in order:
            cand.rounds_ms.append(runner.run(counts[cand.label]))
    cands = [c for c, _ in runners]
    decision = pick_fastest({c.label: c.rounds_ms for c in cands}, baseline=cands[0].label, margin=MARGIN)
    winner = next(c for c in cands if c.label == decision.choice)
    path = write_tuned_config(xml, device, winner.properties) if write else None
    result = TuneResult(str(xml), device, objective, cands, winner, decision.reason, path, time.perf_counter() - t0,
                        {c.label: counts[c.label] * (len(r.queue) if r.throughput else 1) for c, r in runners})
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

    def waves(self, niter: int) -> int:
        """``run``'s argument that times ``niter`` inferences (whole waves of requests in flight)."""
        return niter if not self.throughput else max(1, -(-niter // len(self.queue)))

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


def write_tune_report(result: TuneResult, folder: str | Path) -> Path:
    """``--report-folder``: the search, every candidate's rounds and the winner as tune_report.json."""
    import json

    from attnseg.atomic import atomic_file, make_folder

    path = make_folder(folder, "report folder") / "tune_report.json"
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


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
