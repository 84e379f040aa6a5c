"""The main job: the shipped model through the whole pipeline, offline, in one command.

``seg-export --device CPU`` with no checkpoint runs this: export the shipped Kvasir-SEG
Attention U-Net to an FP32 IR (parity-checked against PyTorch and ONNX Runtime), quantize it to
INT8 with NNCF on the bundled samples, score Dice on the bundled samples for PyTorch, OpenVINO
FP32 and INT8, and print a benchmark_app-style latency comparison. Everything lands in one
fresh folder with a ``summary.json`` and ``summary.md``.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from attnseg.atomic import atomic_file
from attnseg.errors import BenchmarkError, OutputExistsError
from attnseg.stages import StageRecorder

log = logging.getLogger(__name__)


@dataclass
class BackendFigures:
    """One row of the comparison: Dice on the bundled samples and benchmark_app-style latency."""

    backend: str
    dice: float
    count: int
    latency_median_ms: float
    latency_avg_ms: float
    latency_min_ms: float
    latency_max_ms: float
    throughput_fps: float
    iterations: int


@dataclass
class MainJobResult:
    output_dir: Path
    fp32_xml: Path
    int8_xml: Path
    parity: dict[str, Any]
    rows: list[BackendFigures]
    samples: int
    device: str
    timings: dict[str, float] = field(default_factory=dict)
    #: OpenVINO's floating-point precision per IR row, as the runtime's ``auto`` chose it.
    inference_precision: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "fp32_xml": str(self.fp32_xml), "int8_xml": str(self.int8_xml),
                "parity": self.parity, "samples": self.samples, "device": self.device, "timings": self.timings,
                "inference_precision": self.inference_precision, "backends": [asdict(r) for r in self.rows]}


def default_output_dir() -> Path:
    """A fresh folder per run, so a second run never overwrites the first."""
    return Path(f"attnseg-export-{datetime.now().strftime('%Y%m%d-%H%M%S')}")


def run_main_job(output_dir: str | Path | None = None, device: str = "CPU", niter: int = 50,
                 force: bool = False, quiet: bool = False) -> MainJobResult:
    """Export, quantize, score and time the shipped model; see the module docstring."""
    plan = _plan(output_dir, device, niter, force)
    rec = StageRecorder()
    with rec.stage("export"):
        exported = _export(plan)
    with rec.stage("quantize"):
        int8_xml = _quantize(plan, exported.xml_path)
    precision: dict[str, str] = {}
    with rec.stage("compare"):
        rows = _compare(plan.checkpoint, exported.xml_path, int8_xml, plan.samples, plan.device, plan.niter, precision)
    parity = exported.parity.to_dict() if exported.parity is not None and hasattr(exported.parity, "to_dict") else {}
    result = MainJobResult(plan.out, exported.xml_path, int8_xml, parity, rows, plan.sample_count, plan.device,
                           rec.timings, precision)
    _write_summary(result)
    return result


@dataclass
class _JobPlan:
    """What the job was asked for, checked before any work."""

    out: Path
    device: str
    niter: int
    force: bool
    checkpoint: Path
    samples: Path  # the bundled samples: images/ and masks/
    sample_count: int


def _plan(output_dir: str | Path | None, device: str, niter: int, force: bool) -> _JobPlan:
    from attnseg.devices import validate_device
    from attnseg.zoo import default_checkpoint, sample_dir

    if isinstance(niter, bool) or not isinstance(niter, int) or niter < 2:
        raise BenchmarkError(f"--niter must be an integer of at least 2 (timed inferences per backend, split over "
                             f"two alternating rounds), got {niter!r}.")
    device = validate_device(device)  # before any work: a missing device is one clear message
    out = Path(output_dir) if output_dir else default_output_dir()
    if out.exists() and not force:
        raise OutputExistsError(f"{out} already exists; pass --force or choose another -o folder.")
    checkpoint, samples = default_checkpoint(), sample_dir()
    return _JobPlan(out=out, device=device, niter=niter, force=force, checkpoint=checkpoint, samples=samples,
                    sample_count=len(list((samples / "images").iterdir())))


def _export(plan: _JobPlan):
    """The FP32 IR, parity-checked on the bundled sample images."""
    from attnseg.export import export

    return export(plan.checkpoint, output_dir=plan.out, device=plan.device, samples=plan.samples / "images",
                  force=plan.force)


def _quantize(plan: _JobPlan, fp32_xml: Path) -> Path:
    """INT8 beside the FP32 IR, calibrated on every bundled sample; its path."""
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    int8 = quantize(fp32_xml, plan.out / "model_int8.xml", calibration=plan.samples / "images",
                    subset_size=plan.sample_count, device=plan.device, quiet=True,
                    advanced=AdvancedQuantizationParameters(latency_runs=5))
    return int8.output_xml


def _dice_openvino(xml: Path, pairs, device: str) -> tuple[float, str]:
    """Dice through the runtime, and the precision its ``auto`` chose (measured, then cached)."""
    from attnseg.data import BinaryMetrics
    from attnseg.runtime import Segmenter

    seg = Segmenter(xml, device=device)
    acc = BinaryMetrics()
    for image, mask in pairs:
        acc.update(seg.predict(image).mask[None], mask[None])
    return float(acc.compute()["dice"]), seg.inference_precision


def _dice_torch(model, info, pairs) -> float:
    from attnseg.data import BinaryMetrics
    from attnseg.train.evaluate import predict_full_resolution

    acc = BinaryMetrics()
    for image, mask in pairs:
        pred = predict_full_resolution(model, image, info.input_size, info.normalization, "binary", info.threshold)
        acc.update(pred[None], mask[None])
    return float(acc.compute()["dice"])


def _torch_latency(model, info, niter: int) -> list[float]:
    import torch

    x = torch.randn(1, info.in_channels, *info.input_size)
    times = []
    with torch.no_grad():
        model(x)  # warm-up, like benchmark_app's first inference
        for _ in range(niter):
            t = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - t) * 1000)
    return times


def _compare(checkpoint: Path, fp32_xml: Path, int8_xml: Path, samples: Path, device: str,
             niter: int, precision: dict[str, str]) -> list[BackendFigures]:
    """Dice and latency per backend; ``precision`` is filled with each IR's runtime precision."""
    from attnseg.benchmarking import LatencyStats, benchmark_openvino
    from attnseg.data import folder_pairs, load_pair
    from attnseg.models import load_checkpoint

    pairs = [load_pair(s, "binary", 1, 255) for s in folder_pairs(samples)]
    model, info = load_checkpoint(checkpoint)
    log.info("Comparing PyTorch, OpenVINO FP32 and INT8: Dice on %d samples, then %d timed inferences each "
             "in 2 alternating rounds ...", len(pairs), 2 * (niter // 2))
    dice = {"PyTorch FP32 (eager)": _dice_torch(model, info, pairs)}
    log.info("  Dice %-22s %.4f", "PyTorch FP32 (eager)", dice["PyTorch FP32 (eager)"])
    for name, xml in (("OpenVINO FP32", fp32_xml), ("OpenVINO INT8", int8_xml)):
        dice[name], precision[name] = _dice_openvino(xml, pairs, device)
        log.info("  Dice %-22s %.4f (inference precision %s)", name, dice[name], precision[name])
    # Alternate the backends over two rounds so machine drift hits all of them alike.
    lat: dict[str, list[float]] = {k: [] for k in dice}
    for round_no in (1, 2):
        log.info("  round %d/2: timing PyTorch FP32 (eager), %d inferences ...", round_no, niter // 2)
        lat["PyTorch FP32 (eager)"] += _torch_latency(model, info, niter // 2)
        for name, xml in (("OpenVINO FP32", fp32_xml), ("OpenVINO INT8", int8_xml)):
            log.info("  round %d/2: timing %s, %d inferences ...", round_no, name, niter // 2)
            r = benchmark_openvino(xml, device=device, hint="latency", api="sync", niter=niter // 2,
                                   infer_precision=precision[name])
            lat[name] += list(r.latencies_ms)
    rows = []
    for name, values in lat.items():
        s = LatencyStats.from_samples(values)
        rows.append(BackendFigures(name, dice[name], len(pairs), s.median_ms, s.avg_ms, s.min_ms, s.max_ms,
                                   1000.0 / s.avg_ms if s.avg_ms else 0.0, s.count))
    return rows


def format_table(result: MainJobResult) -> str:
    """The comparison as a benchmark_app-style block per backend plus one summary table."""
    base = next((r for r in result.rows if r.backend == "OpenVINO FP32"), result.rows[0])
    used = ", ".join(f"{k.removeprefix('OpenVINO ')} IR {v}" for k, v in result.inference_precision.items())
    lines = [(f"Dice on {result.samples} bundled Kvasir-SEG test samples; latency at batch 1, sync, on {result.device}; "
             f"OpenVINO inference precision: {used or 'device default'} (the runtime's auto choice)"),
             (f"{'backend':<22}{'Dice':>8}{'Median ms':>11}{'Average ms':>12}{'Min ms':>9}{'Max ms':>9}"
             f"{'FPS':>8}{'speedup vs FP32 IR':>20}")]
    for r in result.rows:
        lines.append(f"{r.backend:<22}{r.dice:>8.4f}{r.latency_median_ms:>11.2f}{r.latency_avg_ms:>12.2f}"
                     f"{r.latency_min_ms:>9.2f}{r.latency_max_ms:>9.2f}{r.throughput_fps:>8.1f}"
                     f"{base.latency_median_ms / r.latency_median_ms:>19.2f}x")
    lines.append("speedup = median latency of the FP32 IR / median latency of the row (above 1: faster), "
                 "as in seg-benchmark compare")
    return "\n".join(lines)


def _write_summary(result: MainJobResult) -> None:
    with atomic_file(result.output_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    md = ["# attnseg main job", "", "```", format_table(result), "```", ""]
    with atomic_file(result.output_dir / "summary.md") as tmp:
        tmp.write_text("\n".join(md))
