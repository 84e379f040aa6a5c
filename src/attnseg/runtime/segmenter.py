"""``Segmenter``: load an exported IR once, then segment images, folders and streams with it.

Everything the runtime needs comes from the IR (its ``rt_info``, or the ``model.json``
written beside it): input size and layout, normalization, whether preprocessing is embedded,
classes, threshold, attention outputs. Only openvino, numpy and OpenCV are used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from attnseg.cpu_features import preferred_cpu_inference_precision
from attnseg.devices import validate_device
from attnseg.errors import AttnsegError, DeviceError, InputFileError, ModelConfigError
from attnseg.metadata import ModelMetadata, metadata_json_path, read_rt_info
from attnseg.resize_policy import ResizePolicy, pad_color
from attnseg.runtime import postprocess as post
from attnseg.runtime.pipeline import Completed, ordered_async
from attnseg.runtime.preprocess import ImageLike, InputSpec, Prepared, prepare
from attnseg.runtime.result import SegmentationResult, StageTimings

log = logging.getLogger(__name__)

ATTENTION_PREFIX = "attention_"
_BACKGROUND_NAMES = ("background", "_background_", "bg")


class Hint(str, Enum):
    """OpenVINO performance hint: one request fast (latency) or many at once (throughput)."""

    LATENCY = "latency"
    THROUGHPUT = "throughput"
    CUMULATIVE_THROUGHPUT = "cumulative_throughput"

    @classmethod
    def parse(cls, value: str | Hint) -> Hint:
        try:
            return cls(str(getattr(value, "value", value)).lower().replace("-", "_"))
        except ValueError:
            choices = "|".join(h.value for h in cls)
            raise DeviceError(f"Unknown performance hint {value!r}; use one of {choices}.") from None


class Segmenter:
    """An exported attnseg model compiled for one device.

    Thread-safe: ``predict`` may be called from many threads at once; each call borrows an
    infer request from a pool (sized by the device's optimal number of requests) and returns
    its own result. ``stream`` runs its own bounded asynchronous queue.
    """

    def __init__(
        self,
        model_path: str | Path,
        device: str = "CPU",
        hint: str | Hint = Hint.LATENCY,
        num_streams: int | None = None,
        cache_dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
        inference_precision: str | None = "auto",
        resize_policy: str | ResizePolicy | None = None,
    ) -> None:
        """``inference_precision``: ``auto`` (f32 on CPUs whose bf16 default is the slower path,
        i.e. avx512_bf16 without AMX; the device default elsewhere), ``default`` (always the
        device's own choice), or ``f32`` / ``bf16`` / ``f16``. An ``INFERENCE_PRECISION_HINT`` in
        ``config`` wins. ``resize_policy``: how images are fitted to a static model input
        (``stretch`` | ``letterbox``); default: the policy the model was trained with, from its
        metadata."""
        self._hint = Hint.parse(hint)
        policy = None if resize_policy is None else ResizePolicy.parse(resize_policy)
        self._path = resolve_model_path(model_path)
        core = ov.Core()
        self._device = validate_device(device, core)
        model = read_ir(core, self._path)
        self._meta = read_metadata(model, self._path)
        if self._meta.task not in ("binary", "multiclass"):
            raise ModelConfigError(
                f"{self._path.name} is a {self._meta.task} model ({self._meta.arch}); the Segmenter runs "
                "image segmentation models (binary or multiclass) only."
            )
        props = {**precision_config(self._device, inference_precision),
                 **compile_config(self._hint, num_streams, cache_dir, config)}
        try:
            self._compiled = core.compile_model(model, self._device, props)
        except RuntimeError as exc:
            raise DeviceError(
                f"{self._device} could not compile {self._path.name}: {_first_line(exc)}"
            ) from None
        del model  # the compiled model keeps what it needs; drop the graph to save memory
        self._bind_ports(policy)
        try:
            self._num_requests = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        except RuntimeError:
            self._num_requests = 1
        self._pool = _RequestPool(self._compiled, self._num_requests)

    # ------------------------------------------------------------------ properties
    @property
    def metadata(self) -> ModelMetadata:
        return self._meta

    @property
    def classes(self) -> list[str]:
        """Name of each mask value (binary models: ``['background', <foreground name>]``)."""
        return list(self._out.classes)

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(H, W) the model runs at, or ``None`` for models with dynamic height/width."""
        return self._in.size

    @property
    def output_spec(self) -> post.OutputSpec:
        """How the main output is decoded: kind, channels, threshold, class names, background."""
        return self._out

    @property
    def resize_policy(self) -> ResizePolicy:
        """How images are fitted to the model input (the model's recorded policy unless overridden)."""
        return self._in.resize_policy

    @property
    def device(self) -> str:
        return self._device

    @property
    def hint(self) -> Hint:
        return self._hint

    @property
    def model_path(self) -> Path:
        return self._path

    @property
    def attention_names(self) -> list[str]:
        """Attention maps every result carries (e.g. ``['Att5', 'Att4', 'Att3', 'Att2']``)."""
        return list(self._att_names)

    @property
    def inference_precision(self) -> str:
        """The precision the device computes floating-point layers in (e.g. ``f32``, ``bf16``)."""
        try:
            return str(self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
        except RuntimeError:
            return "unknown"

    @property
    def num_requests(self) -> int:
        """The device's optimal number of requests in flight for this model and hint."""
        return self._num_requests

    @property
    def compiled_model(self) -> ov.CompiledModel:
        """The underlying ``openvino.CompiledModel`` (for properties, profiling, benchmarking)."""
        return self._compiled

    def __repr__(self) -> str:
        return (f"Segmenter({str(self._path)!r}, device={self._device!r}, hint={self._hint.value!r}, "
                f"task={self._meta.task!r}, input_size={self.input_size}, "
                f"resize_policy={self.resize_policy.value!r})")

    # ------------------------------------------------------------------ inference
    def predict(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        """Segment one image (path or array: BGR uint8, grayscale, RGBA or 16-bit)."""
        t0 = time.perf_counter()
        prep = prepare(image, self._in)
        t1 = time.perf_counter()
        request = self._pool.acquire()
        try:
            outs = request.infer({self._in_index: prep.tensor}, share_inputs=True, share_outputs=True)
            raw = [np.array(outs[i], copy=True) for i in self._out_indices]
        finally:
            self._pool.release(request)
        t2 = time.perf_counter()
        return self._finish(prep, raw, return_probabilities, t0, t1, t2)

    def stream(
        self,
        images: Iterable[Any],
        max_in_flight: int | None = None,
        return_probabilities: bool = False,
    ) -> Iterator[SegmentationResult]:
        """Segment an iterable of images with up to ``max_in_flight`` requests running at once.

        Items are images (paths or arrays) or ``(name, image)`` pairs; results come back in
        input order with ``source`` set to the path or name. The default number in flight is
        the device's optimal number of requests (create the Segmenter with
        ``hint="throughput"`` for more than one on CPU). An error for one item is raised when
        the iterator reaches it, after all earlier results.
        """
        jobs = self.num_requests if max_in_flight is None else int(max_in_flight)
        if jobs < 1:
            raise ModelConfigError(f"max_in_flight must be >= 1, got {max_in_flight}.")

        def prep_item(x: Any) -> tuple[Prepared, np.ndarray]:
            name = None
            if isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], np.ndarray):
                name, x = x
            p = prepare(x, self._in)
            if name is not None:
                p.source = str(name)
            return p, p.tensor

        def finish(p: Prepared, c: Completed, t0: float, t1: float) -> SegmentationResult:
            r = self._finish(p, c.outputs, return_probabilities, t0, t1, c.t_done)
            r.timings.infer = c.infer_ms
            return r

        return ordered_async(self._compiled, images, prep_item, finish, self._in_index,
                             self._out_indices, jobs, copy_outputs=self._copy_outputs)

    def __call__(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        return self.predict(image, return_probabilities)

    def preprocess(self, image: ImageLike) -> Prepared:
        """Image -> model input tensor and the geometry to map outputs back (``Prepared``)."""
        return prepare(image, self._in)

    def postprocess(self, prep: Prepared, outputs: list[np.ndarray],
                    return_probabilities: bool = False) -> SegmentationResult:
        """Raw outputs ``[main, *attention maps]`` of ``prep.tensor`` -> the result at the image size."""
        t = time.perf_counter()
        return self._finish(prep, list(outputs), return_probabilities, t, t, t)

    # ------------------------------------------------------------------ internals
    @staticmethod
    def _copy_outputs(request: ov.InferRequest, indices: Any) -> list[np.ndarray]:
        return [np.array(request.get_output_tensor(i).data, copy=True) for i in indices]

    def _finish(self, prep: Prepared, raw: list[np.ndarray], want_probs: bool,
                t0: float, t1: float, t2: float) -> SegmentationResult:
        mask, probs = post.decode(raw[0], prep, self._out, want_probs)
        attention = {name: post.attention_map(a, prep) for name, a in zip(self._att_names, raw[1:])}
        counts, fg = post.class_stats(mask, self._out)
        t3 = time.perf_counter()
        timings = StageTimings(
            preprocess=(t1 - t0) * 1e3, infer=(t2 - t1) * 1e3,
            postprocess=(t3 - t2) * 1e3, total=(t3 - t0) * 1e3,
        )
        return SegmentationResult(
            mask=mask, classes=list(self._out.classes), class_pixel_counts=counts,
            foreground_fraction=fg, probabilities=probs, attention=attention,
            timings=timings, source=prep.source,
        )

    def _bind_ports(self, policy: ResizePolicy | None = None) -> None:
        """Find the image input, the main output and the attention outputs; check the IR."""
        meta, cm = self._meta, self._compiled
        inputs = list(cm.inputs)
        idx = next((i for i, p in enumerate(inputs) if "image" in p.get_names()), None)
        if idx is None:
            if len(inputs) != 1:
                raise ModelConfigError(
                    f"{self._path.name} has {len(inputs)} inputs and none is named 'image'; "
                    "it was not exported by attnseg."
                )
            idx = 0
        self._in_index = idx
        self._in = _input_spec(inputs[idx], meta, self._path, policy)

        outputs = list(cm.outputs)
        names = [p.get_names() for p in outputs]
        main = next((i for i, n in enumerate(names) if meta.output in n), None)
        if main is None:
            plain = [i for i, n in enumerate(names)
                     if not any(s.startswith(ATTENTION_PREFIX) for s in n)]
            if not plain:
                raise ModelConfigError(f"{self._path.name} has no segmentation output.")
            main = plain[0]
        att_idx: list[int] = []
        att_names: list[str] = []
        wanted = list(meta.attention_outputs) or sorted(
            s for n in names for s in n if s.startswith(ATTENTION_PREFIX))
        for name in wanted:
            i = next((k for k, n in enumerate(names) if name in n), None)
            if i is None:
                log.warning("%s: attention output %s listed in metadata is missing", self._path.name, name)
                continue
            att_idx.append(i)
            att_names.append(name.removeprefix(ATTENTION_PREFIX))
        self._out_indices = [main, *att_idx]
        self._att_names = att_names
        self._out = output_spec(outputs[main], meta)


class _RequestPool:
    """Infer requests shared by threads: created on demand up to ``size``, reused LIFO."""

    def __init__(self, compiled: ov.CompiledModel, size: int) -> None:
        self._compiled = compiled
        self._size = max(1, size)
        self._idle: list[ov.InferRequest] = []
        self._created = 0
        self._cond = threading.Condition()

    def acquire(self) -> ov.InferRequest:
        with self._cond:
            while not self._idle and self._created >= self._size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._created += 1
        try:
            return self._compiled.create_infer_request()
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def release(self, request: ov.InferRequest) -> None:
        with self._cond:
            self._idle.append(request)
            self._cond.notify()


# ---------------------------------------------------------------------- loading helpers
def resolve_model_path(model_path: str | Path) -> Path:
    """The ``.xml`` to load: the path itself, or the single / ``model.xml`` IR in a folder."""
    path = Path(model_path).expanduser()
    if not path.exists():
        raise InputFileError(f"Model {path} does not exist.")
    if path.is_dir():
        xmls = sorted(path.glob("*.xml"))
        if (path / "model.xml") in xmls:
            path = path / "model.xml"
        elif len(xmls) == 1:
            path = xmls[0]
        else:
            found = ", ".join(p.name for p in xmls) or "none"
            raise InputFileError(f"{path} is a folder; pass one OpenVINO IR .xml in it (found: {found}).")
    if path.suffix.lower() != ".xml":
        raise InputFileError(
            f"{path} is not an OpenVINO IR (.xml with its .bin beside it). "
            "Export checkpoints and ONNX files first with seg-export."
        )
    if not path.with_suffix(".bin").is_file():
        raise InputFileError(f"Weights {path.with_suffix('.bin')} are missing (keep the .bin beside the .xml).")
    return path


def read_ir(core: ov.Core, path: Path) -> ov.Model:
    """``core.read_model`` with one clear error for files that are not an OpenVINO IR."""
    try:
        return core.read_model(str(path))
    except (RuntimeError, ValueError) as exc:
        raise InputFileError(f"{path} is not a readable OpenVINO IR: {_first_line(exc)}") from None


def read_metadata(model: ov.Model, path: Path) -> ModelMetadata:
    """rt_info first, then the ``model.json`` twin; an IR without either was not made by attnseg."""
    try:
        meta = read_rt_info(model)
    except (ValueError, TypeError) as exc:
        raise InputFileError(f"{path.name}: the attnseg metadata in rt_info is unreadable: {exc}.") from None
    if meta is not None:
        return meta
    json_path = metadata_json_path(path)
    if json_path.is_file():
        return ModelMetadata.read_json(json_path)
    raise InputFileError(
        f"{path} carries no attnseg metadata (rt_info) and {json_path.name} is not beside it; "
        "export the model with seg-export."
    )


INFERENCE_PRECISIONS = ("auto", "default", "f32", "bf16", "f16")


def precision_config(device: str, inference_precision: str | None) -> dict[str, Any]:
    """``INFERENCE_PRECISION_HINT`` for ``device`` from the user's choice (see ``Segmenter``)."""
    choice = "default" if inference_precision is None else str(inference_precision).strip().lower()
    if choice not in INFERENCE_PRECISIONS:
        raise DeviceError(f"Unknown inference precision {inference_precision!r}; use one of "
                          f"{', '.join(INFERENCE_PRECISIONS)}.")
    if choice == "auto":
        preferred = preferred_cpu_inference_precision() if device == "CPU" else None
        return {"INFERENCE_PRECISION_HINT": preferred} if preferred else {}
    if choice == "default":
        return {}
    return {"INFERENCE_PRECISION_HINT": choice}


def compile_config(hint: Hint, num_streams: int | None, cache_dir: str | Path | None,
                   config: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenVINO properties for ``compile_model``; ``config`` entries win."""
    props: dict[str, Any] = {"PERFORMANCE_HINT": hint.value.upper()}
    if num_streams is not None:
        if int(num_streams) < 1:
            raise DeviceError(f"num_streams must be >= 1, got {num_streams}.")
        props["NUM_STREAMS"] = str(int(num_streams))
    if cache_dir is not None:
        cache = Path(cache_dir).expanduser()
        try:
            cache.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputFileError(f"Cannot create model cache folder {cache}: {exc.strerror}.") from None
        props["CACHE_DIR"] = str(cache)
    props.update(dict(config or {}))
    return props


def _input_spec(port: Any, meta: ModelMetadata, path: Path, policy: ResizePolicy | None = None) -> InputSpec:
    ps = port.get_partial_shape()
    if ps.rank.is_dynamic or ps.rank.get_length() != 4:
        raise ModelConfigError(f"{path.name}: the image input must be 4-D, got {ps}.")
    layout = meta.input_layout.upper() if meta.input_layout else ("NHWC" if meta.preprocessing_embedded else "NCHW")
    if layout not in ("NCHW", "NHWC"):
        raise ModelConfigError(f"{path.name}: unsupported input layout {meta.input_layout!r}.")
    hd, wd, cd = (1, 2, 3) if layout == "NHWC" else (2, 3, 1)
    if ps[0].is_static and ps[0].get_length() != 1:
        raise ModelConfigError(
            f"{path.name} has a fixed batch of {ps[0].get_length()}; export it with batch 1 "
            "(stream() runs several requests in parallel instead)."
        )
    size = None
    if ps[hd].is_static and ps[wd].is_static:
        size = (ps[hd].get_length(), ps[wd].get_length())
    elif ps[hd].is_static or ps[wd].is_static:
        raise ModelConfigError(f"{path.name}: height and width must be both static or both dynamic, got {ps}.")
    channels = ps[cd].get_length() if ps[cd].is_static else int(meta.input_channels)
    if channels not in (1, 3):
        raise ModelConfigError(f"{path.name}: the image input has {channels} channels (expected 1 or 3).")
    dtype = np.dtype(port.get_element_type().to_dtype())
    return InputSpec(
        layout=layout, dtype=dtype, channels=channels, size=size,
        normalization=meta.normalization, embedded=bool(meta.preprocessing_embedded),
        divisor=int(meta.extra.get("input_divisor", 16)) if isinstance(meta.extra, dict) else 16,
        resize_policy=policy or ResizePolicy.parse(meta.resize_policy),
        pad_value=pad_color(meta.normalization, channels),
    )


def output_spec(port: Any, meta: ModelMetadata) -> post.OutputSpec:
    """How to decode the main output ``port``: kind, channels, threshold, class names, background."""
    kind = meta.output if meta.output in ("logits", "probabilities", "mask") else "logits"
    ps = port.get_partial_shape()
    channels = None
    if kind != "mask" and ps.rank.is_static and ps.rank.get_length() == 4 and ps[1].is_static:
        channels = ps[1].get_length()
    if channels is None:
        channels = 1 if meta.task == "binary" else max(1, meta.num_classes)
    classes = list(meta.classes)
    if meta.task == "binary" or channels == 1:
        if len(classes) == 2:
            names = classes
        else:
            names = ["background", classes[0] if classes else "foreground"]
        if channels > 2:
            raise ModelConfigError(f"Binary model with {channels} output channels; expected 1 or 2.")
    else:
        names = classes[:channels] + [f"class_{i}" for i in range(len(classes), channels)]
        if len(classes) != channels:
            log.warning("metadata lists %d classes but the model outputs %d", len(classes), channels)
    lowered = [n.lower() for n in names]
    background = next((i for i, n in enumerate(lowered) if n in _BACKGROUND_NAMES), None)
    if background is None and meta.task == "binary":
        background = 0
    return post.OutputSpec(kind=kind, channels=channels, threshold=float(meta.threshold),
                           classes=tuple(names), background=background)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # OpenVINO messages start with "Exception from src/...cpp:123:"; the reason follows.
    for ln in lines:
        if not ln.startswith(("Exception from", "Check ")) and not ln.endswith(".cpp"):
            return ln[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


__all__ = ["INFERENCE_PRECISIONS", "AttnsegError", "Hint", "Segmenter", "compile_config", "output_spec",
           "precision_config", "read_ir", "read_metadata", "resolve_model_path"]
