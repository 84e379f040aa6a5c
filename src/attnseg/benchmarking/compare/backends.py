"""The backends ``seg-benchmark compare`` times, each behind the same tiny interface.

``prepare()`` builds the backend (export, quantize, compile: timed as ``prepare_s``);
``__call__(x)`` runs one inference on a (1, C, H, W) float32 array and returns the model's
first output as float32 numpy. Every backend is called the same way from the same loop, so
the timing includes each runtime's own input / output handling and nothing else.
Heavy imports (torch, onnxruntime, openvino, nncf) happen inside the methods.
"""

from __future__ import annotations

import contextlib
import logging
import time
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from attnseg.benchmarking.compare.result import BackendResult
from attnseg.errors import AttnsegError, BenchmarkError
from attnseg.stages import StageRecorder

log = logging.getLogger(__name__)


class BackendName(str, Enum):
    TORCH_FP32 = "torch_fp32"
    TORCH_BF16 = "torch_bf16_cl"
    TORCH_COMPILE = "torch_compile"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO_FP32 = "openvino_fp32"
    OPENVINO_FP32_F32 = "openvino_fp32_f32"
    OPENVINO_FP16 = "openvino_fp16"
    OPENVINO_INT8 = "openvino_int8"


BACKEND_LABELS = {
    BackendName.TORCH_FP32: "PyTorch eager fp32",
    BackendName.TORCH_BF16: "PyTorch bf16 autocast + channels_last",
    BackendName.TORCH_COMPILE: "PyTorch torch.compile (bf16 + channels_last)",
    BackendName.ONNXRUNTIME: "ONNX Runtime CPU (fp32)",
    BackendName.OPENVINO_FP32: "OpenVINO FP32 IR",
    BackendName.OPENVINO_FP32_F32: "OpenVINO FP32 IR, f32 execution",
    BackendName.OPENVINO_FP16: "OpenVINO FP16 IR",
    BackendName.OPENVINO_INT8: "OpenVINO INT8 (NNCF)",
}
#: Run unless --backends says otherwise (torch.compile only with --compile: it takes minutes).
DEFAULT_BACKENDS = [b for b in BackendName if b is not BackendName.TORCH_COMPILE]


def parse_backends(text: str | None, with_compile: bool = False) -> list[BackendName]:
    """``--backends a,b,c`` (names or ``all``) -> ordered, de-duplicated backend names."""
    if not text:
        names = list(DEFAULT_BACKENDS)
    elif text.strip().lower() == "all":
        names = list(BackendName)
    else:
        names = []
        for part in text.split(","):
            part = part.strip().lower()
            if not part:
                continue
            try:
                names.append(BackendName(part))
            except ValueError:
                choices = ", ".join(b.value for b in BackendName)
                raise BenchmarkError(f"Unknown backend {part!r}; choose from: {choices} (or all).") from None
    if with_compile and BackendName.TORCH_COMPILE not in names:
        names.insert(names.index(BackendName.TORCH_BF16) + 1 if BackendName.TORCH_BF16 in names else 0,
                     BackendName.TORCH_COMPILE)
    seen: list[BackendName] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    if not seen:
        raise BenchmarkError("--backends selects no backend.")
    return seen


# ----------------------------------------------------------------------------- model files
class ModelFiles:
    """ONNX / IR files exported once (lazily) into ``workdir`` and shared by the backends."""

    def __init__(self, checkpoint: Path, model: Any, input_size: tuple[int, int], workdir: Path,
                 calibration: Any = None, arch: str | None = None):
        self.checkpoint, self.model, self.input_size, self.workdir = checkpoint, model, input_size, workdir
        self.calibration = calibration  # what attnseg.optimize.quantize takes (paths, folder, spec) or None
        self.arch = arch
        self._cache: dict[str, Any] = {}
        # seconds per file made, under bare keys (export_fp32, fp16, int8): prepare_time reads them
        self._stages = StageRecorder(suffix="")
        self.timings: dict[str, float] = self._stages.timings

    def _export(self, precision: str) -> Any:
        key = f"export_{precision}"
        if key not in self._cache:
            with self._stages.stage(key):
                self._cache[key] = _export_model(self.checkpoint, self.model, self.input_size,
                                                 self.workdir / precision, precision, self.arch)
        return self._cache[key]

    def onnx(self) -> Path:
        return Path(self._export("fp32")["onnx"])

    def ir(self, precision: str) -> Path:
        if precision == "int8":
            return self.ir_int8()
        if precision == "fp16":
            return self.ir_fp16()
        return Path(self._export(precision)["xml"])

    def ir_fp16(self) -> Path:
        """The FP32 export with its weights compressed to FP16 (what export's fp16 writes),
        without exporting the network a second time."""
        if "fp16" not in self._cache:
            fp32 = self.ir("fp32")
            with self._stages.stage("fp16"):
                self._cache["fp16"] = _compress_fp16(fp32, self.workdir / "fp16")
        return Path(self._cache["fp16"])

    def ir_int8(self) -> Path:
        if "int8" not in self._cache:
            fp32 = self.ir("fp32")
            with self._stages.stage("int8"):
                self._cache["int8"] = _quantize_int8(fp32, self.workdir / "int8", self.calibration,
                                                     self.input_size, self.model)
        return Path(self._cache["int8"])

    def prepare_time(self, precision: str) -> float:
        """Seconds spent producing this precision's file, including the FP32 export it starts from."""
        own = self.timings.get(precision, 0.0) if precision in ("fp16", "int8") else 0.0
        return self.timings.get("export_fp32", 0.0) + own


def _export_model(checkpoint: Path, model: Any, input_size: tuple[int, int], out_dir: Path,
                  precision: str, arch: str | None) -> dict[str, str]:
    """ONNX + IR through ``attnseg.export``: raw logits, NCHW float input (the same input the
    PyTorch and ONNX Runtime rows get), one parity batch."""
    import sys

    from attnseg.export import AdvancedExportParameters, export

    # exporters print progress on stdout; keep stdout for the table / --json
    with contextlib.redirect_stdout(sys.stderr):
        res = export(checkpoint=checkpoint, output_dir=out_dir, input_size=list(input_size),
                     precision=precision, arch=arch, attention_maps=False, force=True,
                     advanced=AdvancedExportParameters(embed_preprocessing=False, output="logits", batch=1,
                                                       dynamic=False, parity_batches=1))
    return {"onnx": str(res.onnx_path), "xml": str(res.xml_path)}


def _compress_fp16(fp32_xml: Path, out_dir: Path) -> Path:
    import openvino as ov

    from attnseg.metadata import metadata_json_path, read_rt_info, write_rt_info

    out_dir.mkdir(parents=True, exist_ok=True)
    model = ov.Core().read_model(str(fp32_xml))
    meta = read_rt_info(model)
    xml = out_dir / fp32_xml.name
    if meta is not None:
        meta.precision = "fp16"
        write_rt_info(model, meta)
        meta.write_json(metadata_json_path(xml))
    ov.save_model(model, str(xml), compress_to_fp16=True)
    return xml


def _quantize_int8(fp32_xml: Path, out_dir: Path, calibration: Any, input_size: tuple[int, int], model: Any) -> Path:
    """INT8 through ``attnseg.optimize`` (NNCF post-training quantization, its default settings).

    ``calibration``: what ``quantize`` accepts (image paths, a folder, a data set spec); None
    calibrates on seeded noise images, which gives a valid INT8 model for timing only.
    """
    import sys

    import numpy as np

    try:
        from attnseg.optimize import DEFAULT_SUBSET_SIZE, AdvancedQuantizationParameters, quantize
    except ImportError as exc:
        raise _Skip(f"INT8 needs attnseg.optimize with NNCF (pip install attnseg[optimize]): {exc}.") from None

    items = calibration
    if items is None:
        rng = np.random.default_rng(0)
        items = [rng.integers(0, 256, (*input_size, 3), dtype=np.uint8) for _ in range(8)]
    subset = min(len(items), DEFAULT_SUBSET_SIZE) if isinstance(items, (list, tuple)) else DEFAULT_SUBSET_SIZE
    with contextlib.redirect_stdout(sys.stderr):
        res = quantize(fp32_xml, out_dir, calibration=items, subset_size=subset, quiet=True, force=True,
                       advanced=AdvancedQuantizationParameters(latency_runs=0))
    return Path(res.output_xml)


class _Skip(Exception):
    """A backend that cannot run here, with the reason shown in the report."""


# ----------------------------------------------------------------------------- backends
class Backend:
    """One way to run the model; subclasses fill ``prepare`` and ``__call__``."""

    name: BackendName

    def __init__(self, name: BackendName, files: ModelFiles):
        self.name = name
        self.files = files
        self.result = BackendResult(name=name.value, label=BACKEND_LABELS[name])

    def prepare(self) -> None:
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


class TorchBackend(Backend):
    def prepare(self) -> None:
        import torch

        t0 = time.perf_counter()
        self.torch = torch
        model = self.files.model
        self.bf16 = self.name in (BackendName.TORCH_BF16, BackendName.TORCH_COMPILE)
        self.result.weights = "fp32"
        self.result.compute = "bf16 (autocast)" if self.bf16 else "fp32"
        if self.bf16:
            import copy

            model = copy.deepcopy(model).to(memory_format=torch.channels_last)
        if self.name is BackendName.TORCH_COMPILE:
            model = torch.compile(model)
            self.result.note = "compile time is in prepare_s (first calls)"
        self.model = model.eval()
        self.result.threads = torch.get_num_threads()
        if self.name is BackendName.TORCH_COMPILE:
            x = torch.zeros(1, int(getattr(self.files.model, "in_channels", 3)), *self.files.input_size)
            self(x.numpy())  # triggers compilation
        self.result.prepare_s = time.perf_counter() - t0

    def __call__(self, x: Any) -> Any:
        torch = self.torch
        t = torch.from_numpy(x)
        with torch.inference_mode():
            if self.bf16:
                t = t.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = self.model(t)
            else:
                out = self.model(t)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float().contiguous().numpy()


class OnnxRuntimeBackend(Backend):
    def prepare(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise _Skip("onnxruntime is not installed (pip install attnseg[export]).") from None
        path = self.files.onnx()
        t0 = time.perf_counter()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.result.prepare_s = self.files.prepare_time("fp32") + time.perf_counter() - t0
        self.result.weights, self.result.compute = "fp32", "fp32"
        self.result.threads = opts.intra_op_num_threads or None
        self.result.model_path = str(path)
        self.result.model_size_mb = _size_mb(path)

    def __call__(self, x: Any) -> Any:
        return self.session.run([self.output_name], {self.input_name: x})[0]


class OpenVINOBackend(Backend):
    PRECISION: ClassVar[dict[BackendName, str]] = {
        BackendName.OPENVINO_FP32: "fp32", BackendName.OPENVINO_FP32_F32: "fp32",
        BackendName.OPENVINO_FP16: "fp16", BackendName.OPENVINO_INT8: "int8",
    }

    def prepare(self) -> None:
        import openvino as ov

        from attnseg.errors import short_message

        precision = self.PRECISION[self.name]
        path = self.files.ir(precision)
        t0 = time.perf_counter()
        core = ov.Core()
        props: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
        if self.name is BackendName.OPENVINO_FP32_F32:
            props["INFERENCE_PRECISION_HINT"] = "f32"
        try:
            self.compiled = core.compile_model(str(path), "CPU", props)
        except RuntimeError as exc:
            raise BenchmarkError(f"OpenVINO cannot compile {path}: {short_message(exc)}") from None
        self.request = self.compiled.create_infer_request()
        self.output = self.compiled.outputs[0]
        self.result.prepare_s = self.files.prepare_time(precision) + time.perf_counter() - t0
        self.result.weights = precision
        compute = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.result.compute = f"int8 + {compute}" if precision == "int8" else compute
        self.result.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS"))
        self.result.model_path = str(path)
        self.result.model_size_mb = _size_mb(path.with_suffix(".bin"))
        if precision == "fp16":
            self.result.note = "FP16 weights are decompressed at compile time on CPU"

    def __call__(self, x: Any) -> Any:
        return self.request.infer({0: x})[self.output].copy()


def make_backend(name: BackendName, files: ModelFiles) -> Backend:
    if name in (BackendName.TORCH_FP32, BackendName.TORCH_BF16, BackendName.TORCH_COMPILE):
        return TorchBackend(name, files)
    if name is BackendName.ONNXRUNTIME:
        return OnnxRuntimeBackend(name, files)
    return OpenVINOBackend(name, files)


def prepare_backend(backend: Backend) -> bool:
    """Prepare, turning 'cannot run here' into a skipped row and errors into a failed row."""
    try:
        backend.prepare()
        return True
    except _Skip as exc:
        backend.result.status, backend.result.note = "skipped", str(exc)
    except AttnsegError as exc:
        backend.result.status, backend.result.note = "failed", str(exc)
    except Exception as exc:  # a backend's own failure must not sink the other rows
        log.debug("backend %s failed", backend.name.value, exc_info=True)
        backend.result.status = "failed"
        backend.result.note = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
    log.warning("%s: %s (%s)", backend.result.label, backend.result.status, backend.result.note)
    return False


def _size_mb(path: Path) -> float | None:
    try:
        return round(path.stat().st_size / 2**20, 2)
    except OSError:
        return None
