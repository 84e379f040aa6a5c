"""Parity: the same inputs through PyTorch, ONNX Runtime and the saved OpenVINO IR.

OpenVINO is fed exactly what the runtime will feed it: images fitted to the model by the
runtime's ``ModelCodec`` (the checkpoint's resize policy, letterbox padding included), as u8
NHWC BGR pixels when preprocessing is embedded (PyTorch and ONNX Runtime get
``attnseg.imaging.normalize`` of the same pixels), the normalized f32 tensor otherwise. Masks
are decided by the codec too (the exported threshold, the IR's own output head). The IR is
read back from disk, so the check covers the file that ships. Figures: max |logit diff|, share
of equal mask pixels, Dice.

CPUs with bf16 units (and GPUs) compute in reduced precision by default; the enforced FP32
check compiles with ``INFERENCE_PRECISION_HINT=f32`` and the device default is reported too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.errors import DeviceError, ExportError, short_message
from attnseg.export.options import (
    FP32_MAX_ABS_DIFF,
    FP32_MIN_EQUAL_PIXELS,
    BackendFigures,
    OutputKind,
    ParityReport,
)
from attnseg.export.to_openvino import raw_logits_name
from attnseg.imaging import list_images, normalize, read_image
from attnseg.metadata import ModelMetadata, Normalization
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.ports import Port

log = logging.getLogger(__name__)


@dataclass
class ParityInputs:
    """Batches as each backend takes them: ``raw`` (u8 NHWC BGR) or None, and ``tensor`` (f32)."""

    raw: list[np.ndarray | None]
    tensor: list[np.ndarray]
    source: str


def make_inputs(*, size: tuple[int, int], batch: int, norm: Normalization,
                samples: str | Path | Sequence[Path] | None = None,
                count: int = 2, volumetric_shape: Sequence[int] | None = None, seed: int = 0,
                resize_policy: str = "stretch") -> ParityInputs:
    """``count`` batches: real images from ``samples`` (a folder or a list of image paths; fitted
    to ``size`` by the codec, under ``resize_policy``) or random ones."""
    rng = np.random.default_rng(seed)
    if volumetric_shape is not None:
        tensors = [rng.standard_normal((batch, *volumetric_shape)).astype(np.float32) for _ in range(count)]
        return ParityInputs([None] * count, tensors, "random")
    if samples is not None:
        listed = isinstance(samples, (list, tuple))
        paths = [Path(p) for p in samples] if listed else list_images(samples)
        if not paths:
            from attnseg.errors import InputFileError

            raise InputFileError(f"No images in {samples} for the parity check.")
        pixels = _pixel_codec(size, norm, resize_policy)
        images = [pixels.tensor(read_image(p))[0] for p in paths[: count * batch]]
        source = f"images:{len(paths)} of a data set" if listed else f"images:{samples}"
        while len(images) % batch:
            images.append(images[len(images) % len(paths)])
    else:
        images = [rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8) for _ in range(count * batch)]
        source = "random"
    raw, tensor = [], []
    for i in range(0, len(images), batch):
        group = images[i:i + batch]
        raw.append(np.stack(group))
        tensor.append(np.stack([normalize(im, norm) for im in group]))
    return ParityInputs(raw, tensor, source)


def _pixel_codec(size: tuple[int, int], norm: Normalization, resize_policy: str) -> ModelCodec:
    """A codec whose input is the fitted u8 BGR image itself (as an IR with embedded preprocessing takes it)."""
    meta = ModelMetadata(input_size=list(size), input_layout="NHWC", input_dtype="u8", normalization=norm,
                         preprocessing_embedded=True, resize_policy=resize_policy)
    return ModelCodec.from_metadata(meta, Port((1, int(size[0]), int(size[1]), 3), np.dtype(np.uint8)))


def masks_from(values: np.ndarray, kind: OutputKind, threshold: float, network_channels: int = 1) -> np.ndarray:
    """Masks of a batch of one output (logits / probabilities with channel axis 1, or a mask) of
    a network with ``network_channels`` logits (1 = binary), decided by the codec of that output
    at its own size. Class-score vectors (N, C) of patch classifiers are arg-maxed."""
    if kind != OutputKind.MASK and values.ndim == 2:
        return values.argmax(axis=1).astype(np.int64)
    binary = network_channels == 1
    classes = ["foreground"] if binary else [f"class_{i}" for i in range(network_channels)]
    meta = ModelMetadata(task="binary" if binary else "multiclass", classes=classes, output=kind.value,
                         threshold=threshold)
    codec = ModelCodec.from_metadata(meta, None, Port(tuple(values.shape), values.dtype))
    return np.stack([codec.decide_at_output_size(values[i:i + 1]) for i in range(len(values))]).astype(np.int64)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice between two label masks: foreground for binary, mean over present classes otherwise."""
    labels = np.union1d(np.unique(a), np.unique(b))
    fg = [c for c in labels if c != 0] if set(labels.tolist()) <= {0, 1} else list(labels)
    if not fg:
        return 1.0
    scores = []
    for c in fg:
        x, y = a == c, b == c
        denom = x.sum() + y.sum()
        scores.append(1.0 if denom == 0 else 2.0 * np.logical_and(x, y).sum() / denom)
    return float(np.mean(scores))


def run_torch(module: Any, inputs: ParityInputs, n_attention: int) -> list[list[np.ndarray]]:
    import torch

    outs = []
    with torch.inference_mode():
        for x in inputs.tensor:
            y = module(torch.from_numpy(x))
            y = y if isinstance(y, tuple) else (y,)
            outs.append([t.detach().float().numpy() for t in y[: 1 + n_attention]])
    return outs


def check_finite(reference: list[list[np.ndarray]]) -> None:
    """PyTorch's own outputs must be finite: parity against NaN or inf means nothing."""
    for batch in reference:
        logits = batch[0]
        bad = int(np.size(logits) - np.count_nonzero(np.isfinite(logits)))
        if bad:
            from attnseg.errors import ExportError

            raise ExportError(
                f"The model's own PyTorch outputs are not finite ({bad} of {logits.size} values are NaN or "
                "infinite) on the parity inputs: its weights hold extreme or non-finite values (a diverged or "
                "damaged checkpoint). Nothing was exported; check the training run's loss."
            )


def run_onnxruntime(onnx_path: Path, inputs: ParityInputs) -> list[list[np.ndarray]]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return [sess.run(None, {name: x}) for x in inputs.tensor]


def compile_ir(core: Any, xml_path: Path, device: str, *, expose_logits: str | None,
               f32: bool) -> tuple[Any, str]:
    """Read the saved IR, expose the inner logits tensor of that name (if any), compile;
    -> (compiled, precision)."""
    model = core.read_model(str(xml_path))
    if expose_logits:
        model.add_outputs([expose_logits])
    config = {"INFERENCE_PRECISION_HINT": "f32"} if f32 else {}
    try:
        compiled = core.compile_model(model, device, config)
    except RuntimeError as exc:
        if f32:
            raise
        raise DeviceError(f"{device} cannot compile the exported model: {short_message(exc)}") from None
    precision = execution_precision(compiled)
    return compiled, "f32" if f32 and precision == "default" else precision


def execution_precision(compiled: Any) -> str:
    try:
        return str(compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
    except Exception:  # noqa: BLE001 - virtual devices (AUTO, MULTI...) may not report it
        return "default"


def run_openvino(compiled: Any, inputs: ParityInputs, names: Sequence[str]) -> list[list[np.ndarray]]:
    request = compiled.create_infer_request()
    outs = []
    for raw, tensor in zip(inputs.raw, inputs.tensor):
        feed = raw if raw is not None and compiled.input(0).get_element_type().get_type_name() == "u8" else tensor
        res = request.infer({0: feed})
        outs.append([np.array(res[compiled.output(n)]) for n in names])
    return outs


def compare(reference: list[list[np.ndarray]], candidate_logits: list[np.ndarray],
            candidate_main: list[np.ndarray], kind: OutputKind, threshold: float, *, backend: str,
            execution: str, candidate_attention: list[list[np.ndarray]] | None = None) -> BackendFigures:
    ref = np.concatenate([r[0] for r in reference])
    got = np.concatenate(candidate_logits).astype(np.float32)
    if ref.shape != got.shape:
        raise ExportError(f"{backend} returns logits of shape {got.shape}, PyTorch {ref.shape}.")
    diff = np.abs(ref - got)
    channels = int(ref.shape[1]) if ref.ndim >= 2 else 1
    ref_mask = masks_from(ref, OutputKind.LOGITS, threshold, channels)
    main = np.concatenate(candidate_main)
    got_mask = masks_from(main.astype(np.float32) if kind != OutputKind.MASK else main, kind, threshold, channels)
    if got_mask.shape != ref_mask.shape:
        got_mask = got_mask.reshape(ref_mask.shape)
    att = None
    if candidate_attention:
        att = max(
            float(np.abs(np.concatenate([r[i + 1] for r in reference]) - np.concatenate([c[i] for c in candidate_attention])).max())
            for i in range(len(candidate_attention[0]))
        )
    return BackendFigures(
        backend=backend, execution=execution, compared="logits",
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        equal_pixels=float((ref_mask == got_mask).mean()), dice=dice(ref_mask, got_mask),
        attention_max_abs_diff=att,
    )


def check_parity(*, module: Any, onnx_path: Path, xml_path: Path, inputs: ParityInputs, kind: OutputKind,
                 threshold: float, attention_names: Sequence[str], device: str, core: Any,
                 enforce: bool, precision: str) -> ParityReport:
    """Run the three backends, compare with PyTorch, raise ``ExportError`` if FP32 parity fails."""
    n_att = len(attention_names)
    reference = run_torch(module, inputs, n_att)
    check_finite(reference)
    shape = list(inputs.raw[0].shape if inputs.raw[0] is not None else inputs.tensor[0].shape)
    report = ParityReport(inputs=inputs.source, num_inputs=sum(len(t) for t in inputs.tensor),
                          input_shape=shape, device=device, precision=precision, enforced=enforce)
    ort_out = run_onnxruntime(onnx_path, inputs)
    report.backends.append(compare(
        reference, [o[0] for o in ort_out], [o[0] for o in ort_out], OutputKind.LOGITS, threshold,
        backend="onnxruntime", execution="f32", candidate_attention=[o[1:] for o in ort_out] if n_att else None,
    ))
    report.backends[-1].enforced = enforce
    inner = raw_logits_name(kind, reference[0][0].shape[1])
    names = [kind.value] + ([inner] if inner else []) + list(attention_names)
    variants = []
    try:
        variants.append((compile_ir(core, xml_path, device, expose_logits=inner, f32=True), True))
    except RuntimeError as exc:
        report.notes.append(f"{device} cannot compute in f32 ({short_message(exc, 120)}); "
                            "figures at the device default precision are reported, not enforced.")
    default, default_prec = compile_ir(core, xml_path, device, expose_logits=inner, f32=False)
    if not variants or default_prec != variants[0][0][1]:
        variants.append(((default, default_prec), False))
    for (compiled, prec), is_f32 in variants:
        out = run_openvino(compiled, inputs, names)
        logits_i = 1 if inner else 0
        att = [o[-n_att:] for o in out] if n_att else None
        fig = compare(reference, [o[logits_i] for o in out], [o[0] for o in out], kind, threshold,
                      backend="openvino", execution=prec, candidate_attention=att)
        fig.enforced = enforce and is_f32
        report.backends.append(fig)
    if default_prec not in ("f32", "default"):
        runtime = ("attnseg's runtime measures which precision is faster on this device (inference_precision="
                   "'auto') and Segmenter(..., inference_precision='f32') gives the f32 figures")
        report.notes.append(f"{device} computes in {default_prec} by default; {runtime}.")
    failures = [
        f"{b.backend}[{b.execution}] max|diff| {b.max_abs_diff:.2e} (limit {FP32_MAX_ABS_DIFF:g}), "
        f"equal pixels {100 * b.equal_pixels:.3f}% (limit {100 * FP32_MIN_EQUAL_PIXELS:g}%)"
        for b in report.backends
        if b.enforced and (b.max_abs_diff > FP32_MAX_ABS_DIFF or b.equal_pixels < FP32_MIN_EQUAL_PIXELS)
    ]
    report.passed = not failures
    if failures and enforce:
        raise ExportError("The exported model does not match PyTorch: " + "; ".join(failures) + ". Nothing was written.")
    return report
