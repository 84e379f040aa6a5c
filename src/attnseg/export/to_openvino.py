"""ONNX -> OpenVINO IR: the output head, embedded preprocessing, self-description, saving.

The ONNX file is the bare network (``logits`` and attention maps). The IR adds what the
runtime would otherwise have to re-implement: preprocessing (u8 NHWC BGR -> normalized f32
NCHW, exactly as ``attnseg.imaging.normalize``) and, on request, the sigmoid/softmax or the
mask. The raw logits tensor keeps the name ``logits`` inside the graph, so the parity check
can expose it on the saved IR with ``add_outputs("logits")``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnseg.errors import ExportError, ModelConfigError, short_message
from attnseg.export.options import OutputKind
from attnseg.metadata import Normalization

# OpenCV's fixed-point BGR -> gray weights (B, G, R) and shift, Y = (b*B + g*G + r*R + 2^(s-1)) >> s:
# OpenCV 4.x/5.x use 15-bit weights, older releases 14-bit. The installed one is matched exactly.
_CV_GRAY_CANDIDATES = ((3735, 19235, 9798, 15), (1868, 9617, 4899, 14))


def convert_onnx(onnx_path: Path) -> Any:
    """Read the ONNX file into an ``openvino.Model``."""
    import openvino as ov

    try:
        return ov.convert_model(str(onnx_path))
    except Exception as exc:  # noqa: BLE001 - the frontends raise many types; one message
        raise ExportError(f"OpenVINO cannot convert {onnx_path.name}: {short_message(exc)}") from None


def convert_torch(module: Any, example: Any, output_names: Sequence[str], *, dynamic: bool = False,
                  spatial: bool = True) -> Any:
    """The PyTorch module straight to an ``openvino.Model`` (``ov.convert_model(module, example_input=...)``,
    OpenVINO's own PyTorch frontend; no ONNX in between). Input named ``image``, outputs named
    ``output_names`` (``logits`` and the attention maps), as the ONNX route names them."""
    import openvino as ov
    import torch

    shape = list(example.shape)
    if dynamic:
        shape = [-1, *shape[1:]]
        if spatial and len(shape) == 4:
            shape[2] = shape[3] = -1
    try:
        with torch.inference_mode():
            model = ov.convert_model(module, example_input=example, input=[ov.PartialShape(shape)])
    except Exception as exc:  # noqa: BLE001 - the frontend raises many types; one message
        raise ExportError(
            f"OpenVINO cannot convert the PyTorch module directly: {short_message(exc)}; "
            "try --via onnx."
        ) from None
    if len(model.outputs) != len(output_names):
        raise ExportError(f"The converted model has {len(model.outputs)} outputs, expected {len(output_names)}.")
    model.inputs[0].get_tensor().set_names({"image"})
    for port, name in zip(model.outputs, output_names):
        port.get_tensor().set_names({name})
    return model


def logit(p: float) -> float:
    """The logit whose sigmoid is ``p`` (binary masks compare logits, never probabilities)."""
    p = min(max(float(p), 1e-7), 1.0 - 1e-7)
    return math.log(p / (1.0 - p))


def mask_element_type(num_values: int) -> str:
    """``u8`` for up to 256 mask values (every model here), ``u16`` beyond."""
    return "u8" if num_values <= 256 else "u16"


#: Name the network's own one-channel logit keeps inside a binary IR whose main output is the
#: two-channel ``logits`` pair (``add_outputs(RAW_LOGITS)`` exposes it, as the parity check does).
RAW_LOGITS = "raw_logits"


def raw_logits_name(kind: OutputKind, num_outputs: int) -> str | None:
    """The tensor holding the network's logits inside the IR, or None if it is the main output."""
    if kind == OutputKind.LOGITS:
        return RAW_LOGITS if num_outputs == 1 else None
    return "logits"


def add_output_head(model: Any, kind: OutputKind, num_outputs: int, threshold: float,
                    attention_names: Sequence[str] = ()) -> Any:
    """Replace the ``logits`` result with the main output of ``kind``; attention results stay.

    Binary (1 logit z, threshold t, c = logit(t)) scores have two channels, so that every consumer
    that arg-maxes channels (OpenVINO Model API, OVMS clients) gets attnseg's mask ``z > c``:
    logits = ``[c, z]`` (softmax of it is ``[1 - q, q]``, q = sigmoid(z - c); channel 1 alone is the
    model's logit), probabilities = ``[1 - q, q]`` (q is the model's probability when t = 0.5), mask =
    ``z > c``. Multiclass: logits as is, probabilities = softmax over channels, mask = argmax.
    The mask drops the channel axis: (N, H, W) (images) or (N,) (pixel classifiers), u8.
    """
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    logits = _producer(model, "logits")
    binary_pair = num_outputs == 1 and kind != OutputKind.MASK and logits.get_partial_shape().rank.get_length() == 4
    if kind == OutputKind.LOGITS and not binary_pair:
        return model
    cut = ops.constant(np.float32(logit(threshold)))
    # The network's logits stay reachable by name inside the IR (parity exposes them): the torch
    # route names only the Result being replaced, the ONNX route the tensor itself.
    logits.get_tensor().add_names({"logits"})
    if binary_pair:
        if kind == OutputKind.LOGITS:
            logits.get_tensor().set_names({RAW_LOGITS})
            head = ops.concat([ops.broadcast(cut, ops.shape_of(logits)), logits], 1)
        else:
            q = ops.sigmoid(ops.subtract(logits, cut))
            head = ops.concat([ops.subtract(ops.constant(np.float32(1.0)), q), q], 1)
    elif kind == OutputKind.PROBABILITIES:
        head = ops.sigmoid(logits) if num_outputs == 1 else ops.softmax(logits, 1)
    else:
        if num_outputs == 1:
            fg = ops.greater(logits, cut)
            idx = ops.convert(fg, "u8")
        else:
            top = ops.topk(logits, ops.constant(np.int64(1)), 1, "max", "none", "i32")
            idx = ops.convert(top.output(1), mask_element_type(num_outputs))
        head = ops.squeeze(idx, ops.constant(np.array([1], dtype=np.int64)))
    name = kind.value
    head.set_friendly_name(name)
    head.output(0).get_tensor().set_names({name})
    results = [ops.result(head)]
    for att in attention_names:
        results.append(ops.result(_producer(model, att)))
    return ov.Model(results, model.get_parameters(), model.get_friendly_name())


def _producer(model: Any, name: str) -> Any:
    """The tensor a model output returns (the input of its Result node), not the Result itself."""
    return model.output(name).get_node().input_value(0)


def embed_preprocessing(model: Any, norm: Normalization, model_channels: int,
                        batch: int | None, size: tuple[int, int] | None) -> Any:
    """Make the IR take u8 NHWC BGR images and normalize them itself (``PrePostProcessor``).

    ``batch``/``size`` None mean dynamic. The steps reproduce ``attnseg.imaging.normalize``:
    channel order (BGR->RGB, or OpenCV's exact BGR->gray), ``/ pixel_scale``, ``- mean``, ``/ std``.
    """
    import openvino as ov
    from openvino.preprocess import ColorFormat, PrePostProcessor

    order = norm.channel_order.upper()
    want = 1 if order == "GRAY" else 3
    if want != model_channels:
        raise ModelConfigError(
            f"Normalization channel order {order} gives {want} channel(s) but the model takes "
            f"{model_channels}; fix the checkpoint's normalization or export with --raw-input."
        )
    n = batch if batch is not None else -1
    h, w = size if size is not None else (-1, -1)
    ppp = PrePostProcessor(model)
    inp = ppp.input("image")
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_shape(
        ov.PartialShape([n, h, w, 3])
    )
    inp.model().set_layout(ov.Layout("NCHW"))
    steps = inp.preprocess()
    steps.convert_element_type(ov.Type.f32)
    if order == "RGB":
        inp.tensor().set_color_format(ColorFormat.BGR)
        steps.convert_color(ColorFormat.RGB)
    elif order == "GRAY":
        steps.custom(_bgr_to_gray_like_opencv)
    steps.scale(float(norm.pixel_scale))
    steps.mean([float(v) for v in norm.mean[:want]])
    steps.scale([float(v) for v in norm.std[:want]])
    out = ppp.build()
    out.input(0).get_tensor().set_names({"image"})
    return out


def opencv_gray_weights() -> tuple[int, int, int, int]:
    """The (B, G, R, shift) fixed-point weights the installed OpenCV uses for BGR -> gray."""
    import cv2
    import numpy as np

    img = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    ref = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.int64)
    b, g, r = (img[..., i].astype(np.int64) for i in range(3))
    for wb, wg, wr, shift in _CV_GRAY_CANDIDATES:
        if np.array_equal((b * wb + g * wg + r * wr + (1 << (shift - 1))) >> shift, ref):
            return wb, wg, wr, shift
    return _CV_GRAY_CANDIDATES[0]  # unknown OpenCV: off by at most one grey level on a few pixels


def _bgr_to_gray_like_opencv(node: Any) -> Any:
    """NHWC f32 BGR (integer valued) -> NHW1 gray, bit-exact with ``cv2.COLOR_BGR2GRAY`` on u8.

    Sums stay below 2^24, so f32 holds them exactly and the floor reproduces the integer shift.
    """
    import numpy as np
    import openvino.opset13 as ops

    wb, wg, wr, shift = opencv_gray_weights()
    weights = ops.constant(np.array([wb, wg, wr], dtype=np.float32).reshape(3, 1))
    y = ops.matmul(node, weights, False, False)
    y = ops.add(y, ops.constant(np.float32(1 << (shift - 1))))
    y = ops.multiply(y, ops.constant(np.float32(1.0 / (1 << shift))))
    return ops.floor(y).output(0)


def save_ir(model: Any, xml_path: Path, fp16: bool) -> None:
    """Write ``model.xml``/``model.bin``; FP16 compresses the weights (compute stays f32/bf16).

    ``ov.save_model`` reports a full disk as ``basic_ios::clear: iostream error`` and may delete
    its partial ``.bin`` first, so the free space looks fine afterwards: a failed save is blamed
    on the disk when what is free (partial files removed) is less than the weights need."""
    import errno

    import openvino as ov

    from attnseg.atomic import free_bytes

    try:
        # ov.save_model compresses to FP16 by default: say so explicitly either way.
        ov.save_model(model, str(xml_path), compress_to_fp16=fp16)
    except RuntimeError as exc:
        for partial in (xml_path, xml_path.with_suffix(".bin")):
            partial.unlink(missing_ok=True)
        need, free = weight_bytes(model) // (2 if fp16 else 1), free_bytes(xml_path.parent)
        if free is not None and free < need:  # ENOSPC: the caller's disk_full_guard names its output
            raise OSError(errno.ENOSPC, f"No space left on device (the weights need about {need // 1024} KiB, "
                          f"{free // 1024} KiB free)", str(xml_path.with_suffix(".bin"))) from None
        raise ExportError(f"OpenVINO could not write {xml_path}: {short_message(exc)}") from None


def weight_bytes(model: Any) -> int:
    """Bytes of the model's constants: about what its ``.bin`` takes."""
    return sum(int(op.get_byte_size()) for op in model.get_ops() if op.get_type_name() == "Constant")


def describe_ports(model: Any) -> dict[str, Any]:
    """Names, shapes and element types of the IR's inputs and outputs, for the report."""

    def port(p):
        return {"shape": str(p.get_partial_shape()), "type": p.get_element_type().get_type_name()}

    return {
        "inputs": {p.get_any_name(): port(p) for p in model.inputs},
        "outputs": {p.get_any_name(): port(p) for p in model.outputs},
    }
