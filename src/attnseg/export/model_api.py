"""OpenVINO Model API's view of an attnseg IR: ``rt_info["model_info"]`` written from attnseg's metadata.

Model API (``openvino-model-api``, the wrapper library behind OpenVINO's demos, OTX/Geti and OVMS
pipelines) configures ``SegmentationModel.create_model(xml)`` from ``rt_info["model_info"]``. Its
contract, read from its 0.4.x source (``models/segmentation.py``, ``image_model.py``,
``parameters.py``, ``adapters/openvino_adapter.py``):

* one 4-D image input; when ``embedded_processing`` is false and the input is static, Model API
  adds its own preprocessing to the graph: u8 NHWC BGR of any size -> resize (``resize_type``) to
  the input size -> ``reverse_input_channels`` -> f32 -> ``- mean_values`` -> ``/ scale_values``
  (both in 0-255 pixel units). ``embedded_processing=True`` means the IR already resizes any-size
  input itself, which an attnseg IR does not (the runtime resizes), so it is always false here;
* outputs: one map, plus at most one output named ``feature_vector``. 2+ channels are scores and
  are arg-maxed; a 3-D map or a 1-channel 4-D map is meant as already arg-maxed class ids, but
  0.4.x then fails in its own post-processing (``np.argmax(axis=2)`` of a 2-D array). attnseg
  therefore exports binary scores as two channels (see ``to_openvino.add_output_head``), and
  ``--output-kind mask`` IRs are not Model API-compatible;
* ``labels`` name the class ids, whitespace-separated (spaces inside a name become ``_``).

What attnseg embeds is never repeated: an IR with embedded preprocessing (u8 NHWC BGR input,
channel order / scale / mean / std inside) gets empty ``mean_values`` / ``scale_values`` and
``reverse_input_channels=False``, so Model API only resizes; a ``--raw-input`` IR (normalized f32
NCHW) gets the normalization in Model API's units so Model API does all of it.

Not compatible, and why (recorded in the attnseg metadata as ``model_api``):
``--output-kind mask`` (above), letterbox-trained models (Model API resizes the whole output map,
padding included, back to the image), attention-map exports (Model API allows one map and one ``feature_vector``, the gates are 4 more
outputs), hyperspectral patch models (5-D input), raw 1-channel or 2/4+-channel inputs (Model
API's preprocessing makes 3-channel BGR), a static batch above 1, and 1-channel binary outputs of
IRs exported before attnseg wrote two channels. Dynamic height/width exports load, but Model API
then feeds every image at its own size without padding, so they only work for images whose
sides are multiples of the model's divisor (16).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attnseg.metadata import ModelMetadata

RT_INFO_KEY = "model_info"
MODEL_TYPE = "Segmentation"
#: The Model API releases these exports are tested with (``tests/export/test_model_api.py``).
TESTED_VERSIONS = ("0.4.7",)


@dataclass(frozen=True)
class Compatibility:
    """Whether ``SegmentationModel.create_model(xml)`` reads the IR as attnseg means it."""

    compatible: bool
    reason: str | None = None  # why not (or the caveat, for dynamic sizes)

    def to_dict(self) -> dict[str, Any]:
        return {"compatible": self.compatible, "reason": self.reason}


def mask_labels(meta: ModelMetadata) -> list[str]:
    """The name of each mask value: binary models get ``background`` first."""
    classes = [str(c) for c in meta.classes] or ["foreground"]
    if meta.task == "binary" and len(classes) == 1:
        classes = ["background", classes[0]]
    return [c.strip().replace(" ", "_") or f"class_{i}" for i, c in enumerate(classes)]


def model_info(meta: ModelMetadata) -> dict[str, str]:
    """The ``model_info`` entries (as Model API reads them: strings) for ``meta``."""
    norm = meta.normalization
    info = {
        "model_type": MODEL_TYPE,
        "labels": " ".join(mask_labels(meta)),
        "embedded_processing": "False",
        # stretch = Model API's "standard"; letterbox has no faithful equivalent (see compatibility)
        "resize_type": "fit_to_window_letterbox" if meta.resize_policy == "letterbox" else "standard",
        # Model API's OpenVINO adapter resizes in-graph with linear / cubic / nearest only: an IR
        # recorded with area gets linear there (the nearest it has); a linear IR matches exactly
        "interpolation_mode": "LINEAR",
        "pad_value": "0",
        "input_dtype": "u8",
        "blur_strength": "-1",
        "soft_threshold": "-inf",
        "return_soft_prediction": "True",
    }
    if meta.preprocessing_embedded:
        # the IR takes u8 BGR and does channel order, scale, mean and std itself: Model API only resizes
        info.update(reverse_input_channels="False", mean_values="", scale_values="")
    else:
        scale = float(norm.pixel_scale)
        channels = 1 if norm.channel_order.upper() == "GRAY" else 3
        info.update(
            reverse_input_channels=str(norm.channel_order.upper() == "RGB"),
            mean_values=" ".join(_num(m * scale) for m in norm.mean[:channels]),
            scale_values=" ".join(_num(s * scale) for s in norm.std[:channels]),
        )
    if meta.input_size:
        info["orig_height"], info["orig_width"] = (str(int(v)) for v in meta.input_size)
    return info


def compatibility(meta: ModelMetadata, ov_model: Any) -> Compatibility:
    """Check ``ov_model`` (an ``openvino.Model``) and its metadata against Model API's contract."""
    if meta.task not in ("binary", "multiclass"):
        return Compatibility(False, f"{meta.arch} is a {meta.task} model on hyperspectral patches; Model API's "
                                    "SegmentationModel takes images")
    inputs = list(ov_model.inputs)
    if len(inputs) != 1 or inputs[0].get_partial_shape().rank.get_length() != 4:
        return Compatibility(False, "Model API's SegmentationModel needs one 4-D image input")
    if not meta.preprocessing_embedded and (int(meta.input_channels) != 3
                                            or meta.normalization.channel_order.upper() == "GRAY"):
        return Compatibility(False, f"the raw input takes {meta.input_channels}-channel tensors and Model API "
                                    "feeds 3-channel BGR; export without --raw-input (the IR then converts BGR "
                                    "images itself)")
    if meta.resize_policy == "letterbox":
        return Compatibility(False, "the model was trained on letterboxed images; Model API's SegmentationModel "
                                    "resizes the whole output map back to the image, padding included, so its "
                                    "masks would be shifted and squeezed")
    if meta.batch not in (None, 1):
        return Compatibility(False, f"static batch {meta.batch}: Model API feeds one image per request; "
                                    "export with --batch 1")
    outputs = list(ov_model.outputs)
    if len(outputs) != 1:
        return Compatibility(False, f"{len(outputs)} outputs (the map and {len(outputs) - 1} attention maps); "
                                    "Model API's SegmentationModel accepts one map and one 'feature_vector' "
                                    "output; export without --attention-maps for Model API")
    ps = outputs[0].get_partial_shape()
    rank = ps.rank.get_length()
    if rank == 3:
        return Compatibility(False, "the output is a class-id mask; Model API 0.4.x reads such a map as arg-maxed "
                                    "ids and then fails in its own post-processing (argmax over axis 2 of a 2-D "
                                    "map); export with --output-kind logits or probabilities for Model API")
    if rank == 4 and ps[1].is_static and ps[1].get_length() < 2:
        return Compatibility(False, "the binary output has one channel, which Model API reads as class ids; "
                                    "re-export with this attnseg (it writes two channels)")
    if rank != 4:
        return Compatibility(False, f"a {rank}-D output; Model API reads (N, C, H, W) scores")
    if meta.input_size is None:
        divisor = int(meta.input_divisor)
        return Compatibility(True, f"dynamic height/width: Model API feeds each image at its own size without "
                                   f"padding, so only images whose sides are multiples of {divisor} work; "
                                   "export with a static --input-size for any image")
    return Compatibility(True, None)


def write_model_info(ov_model: Any, meta: ModelMetadata) -> Compatibility:
    """Write ``rt_info["model_info"]`` into ``ov_model`` and record the verdict in ``meta.model_api``.

    Called after the output head and preprocessing are final and before ``write_rt_info``, so
    the attnseg description (rt_info ``attnseg``, ``model.json``) carries the same verdict.
    Models Model API cannot take as images at all (hyperspectral) get no ``model_info``.
    """
    verdict = compatibility(meta, ov_model)
    meta.model_api = verdict.to_dict()
    if meta.task not in ("binary", "multiclass"):
        return verdict
    for key, value in model_info(meta).items():
        ov_model.set_rt_info(value, [RT_INFO_KEY, key])
    return verdict


def read_model_info(ov_model: Any) -> dict[str, str]:
    """The ``model_info`` entries of an IR (empty if it has none), as strings."""
    try:
        if not ov_model.has_rt_info([RT_INFO_KEY]):
            return {}
        section = ov_model.get_rt_info([RT_INFO_KEY])
    except RuntimeError:
        return {}
    items = section.astype(dict) if hasattr(section, "astype") else dict(section)
    return {str(k): (v.astype(str) if hasattr(v, "astype") else str(v)) for k, v in items.items()}


def _num(v: float) -> str:
    """A float without noise digits (``123.675`` rather than ``123.67500000000001``)."""
    return f"{float(v):.6g}"
