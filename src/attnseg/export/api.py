"""``export()``: checkpoint or module -> validated ONNX + OpenVINO IR in one folder.

Cheap checks (options, device, output folders) run before the model is even loaded; every
file is written inside ``atomic_dir`` so a failure (including failed parity) leaves nothing.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError, ModelConfigError, parse_enum
from attnseg.export.options import (
    OPSET,
    ExportResult,
    OutputKind,
    Precision,
    Route,
)
from attnseg.imaging import parse_size
from attnseg.metadata import ModelMetadata, Normalization, metadata_json_path, write_rt_info

log = logging.getLogger(__name__)
DEFAULT_INPUT_SIZE = (256, 256)
#: How the IR is made unless ``via=`` says otherwise (measured: docs/conversion_routes.md).
DEFAULT_ROUTE = Route.ONNX
PARITY_BATCHES = 2


@dataclass
class AdvancedExportParameters:
    """The export options most runs leave alone (``export(..., advanced=...)``).

    ``arch_kwargs``: constructor arguments for a bare state_dict; ``batch`` / ``dynamic``: the IR's
    batch size, or dynamic batch, height and width; ``embed_preprocessing``: the IR takes u8 BGR
    NHWC images and normalizes itself; ``output``: the IR's main output (logits | probabilities |
    mask); ``normalization``: overrides the checkpoint's; ``cache_dir``: OpenVINO model cache for
    the parity compile; ``ovms_repo`` / ``model_name``: also write an OVMS model repository;
    ``parity_batches``: batches compared against PyTorch and ONNX Runtime; ``package``: also
    write ``package.zip`` (``export.package``) in the same folder, published with the IR or not
    at all (a kill or a full disk while zipping leaves no export without its package).
    """

    arch_kwargs: dict[str, Any] | None = None
    batch: int = 1
    dynamic: bool = False
    embed_preprocessing: bool = True
    output: str | OutputKind = "logits"
    normalization: Normalization | dict | None = None
    cache_dir: str | Path | None = None
    ovms_repo: str | Path | None = None
    model_name: str = "model"
    parity_batches: int = PARITY_BATCHES
    package: bool = False


@dataclass
class _ExportPlan:
    """Everything ``export`` resolved and checked, handed inward as one object."""

    src: Any
    core: Any
    device: str
    out_dir: Path
    size: tuple[int, int]
    prec: Precision
    kind: OutputKind
    attention: bool
    samples: str | Path | Sequence[Path] | None
    force: bool
    advanced: AdvancedExportParameters
    timings: dict[str, float]
    t_start: float
    cpu_start: float
    route: Route = DEFAULT_ROUTE


def export(
    checkpoint: str | Path | None = None,
    *,
    model: Any = None,
    output_dir: str | Path,
    arch: str | None = None,
    input_size: Sequence[int] | None = None,
    precision: str | Precision = "fp32",
    attention_maps: bool = False,
    device: str = "CPU",
    samples: str | Path | Sequence[Path] | None = None,
    classes: Sequence[str] | None = None,
    threshold: float | None = None,
    force: bool = False,
    via: str | Route = DEFAULT_ROUTE,
    advanced: AdvancedExportParameters | None = None,
) -> ExportResult:
    """Export a checkpoint (or ``model=``, or the shipped model) to ``output_dir``.

    Writes ``model.onnx`` (the bare network, opset 18), ``model.xml``/``.bin`` (with the
    output head, embedded preprocessing unless ``embed_preprocessing=False`` and its metadata
    in rt_info), ``model.json`` and ``export_report.json``. The IR is compiled on ``device``
    and checked against PyTorch and ONNX Runtime; FP32 parity failures raise ``ExportError``.
    ``threshold``/``classes``/``normalization`` default to the checkpoint's values.
    ``via``: ``onnx`` converts the written ONNX file, ``torch`` converts the module itself with
    OpenVINO's PyTorch frontend; both pass the same parity gate and ``model.onnx`` is written either way.
    Models whose input is not an image (HybridSN patches, 2 or 4+ channels) keep a raw input.
    Rarely used options are in ``advanced`` (``AdvancedExportParameters``).
    """
    t_start = time.perf_counter()
    cpu_start = time.process_time()
    timings: dict[str, float] = {}
    adv = advanced if advanced is not None else AdvancedExportParameters()
    arch_kwargs, dynamic, normalization = adv.arch_kwargs, adv.dynamic, adv.normalization
    prec = parse_enum(Precision, precision, "precision")
    kind = parse_enum(OutputKind, adv.output, "output")
    route = parse_enum(Route, via, "conversion route (via)")
    adv = replace(adv, batch=_check_batch(adv.batch), parity_batches=max(1, int(adv.parity_batches)))
    size = parse_size(input_size) if input_size is not None else None
    out_dir = Path(output_dir)
    _check_output_dir(out_dir, force)
    core, device = _prepare_device(device, dynamic, adv.cache_dir)
    if adv.ovms_repo is not None:
        from attnseg.export.ovms import check_target

        check_target(adv.ovms_repo, adv.model_name, force, output_dir=out_dir)
    if samples is not None and not isinstance(samples, (list, tuple)) and not Path(samples).is_dir():
        raise InputFileError(f"samples={str(samples)!r} (seg-export --samples) is not a folder of images "
                             "(or a list of image paths).")

    from attnseg.export.source import resolve_source

    t = time.perf_counter()
    src = resolve_source(checkpoint, model=model, arch=arch, arch_kwargs=arch_kwargs, classes=classes,
                         normalization=normalization, threshold=threshold)
    if model is not None and normalization is None and src.in_channels == 1:
        src.normalization = Normalization(mean=(0.0,), std=(1.0,), channel_order="GRAY")
    timings["load_s"] = time.perf_counter() - t
    if attention_maps and not src.has_attention_gates:
        raise ModelConfigError(
            f"{src.arch} has no attention gates to export; drop --attention-maps "
            "(AttU_Net and R2AttU_Net have them)."
        )
    size = _model_size(src, size)
    prev_attention = getattr(src.model, "return_attention", None)
    try:
        if attention_maps:
            src.model.return_attention = True
        return _export_loaded(_ExportPlan(
            src=src, core=core, device=device, out_dir=out_dir, size=size, prec=prec, kind=kind,
            attention=attention_maps, samples=samples, force=force, advanced=adv, timings=timings,
            t_start=t_start, cpu_start=cpu_start, route=route,
        ))
    finally:
        if prev_attention is not None:
            src.model.return_attention = prev_attention


def _export_loaded(plan: _ExportPlan) -> ExportResult:
    import torch

    from attnseg import __version__
    from attnseg.atomic import atomic_dir
    from attnseg.export.model_api import write_model_info
    from attnseg.export.parity import check_parity, make_inputs
    from attnseg.export.source import check_classes
    from attnseg.export.to_onnx import export_onnx, wrap_for_export, write_onnx_metadata
    from attnseg.export.to_openvino import (
        add_output_head,
        convert_onnx,
        convert_torch,
        describe_ports,
        embed_preprocessing,
        save_ir,
    )

    src, core, device, out_dir, size, prec, kind, attention, samples, force, timings, route = (
        plan.src, plan.core, plan.device, plan.out_dir, plan.size, plan.prec, plan.kind, plan.attention,
        plan.samples, plan.force, plan.timings, plan.route)
    adv = plan.advanced
    batch, dynamic, embed, ovms_repo, model_name = adv.batch, adv.dynamic, adv.embed_preprocessing, \
        adv.ovms_repo, adv.model_name
    module = wrap_for_export(src.model, attention)
    attention_names = [f"attention_{n}" for n in getattr(src.model, "attention_names", [])] if attention else []
    example = _example_input(src, size, batch)
    num_outputs = _probe(module, example, src, attention_names)
    classes = check_classes(src, num_outputs)
    task = "pixel_classification" if src.volumetric else ("binary" if num_outputs == 1 else "multiclass")
    embedded = bool(embed) and not src.volumetric and src.in_channels in (1, 3)
    notes = []
    if embed and not embedded:
        notes.append(f"{src.arch} takes {'hyperspectral patches' if src.volumetric else f'{src.in_channels}-channel tensors'}"
                     ", not images: the IR keeps a raw f32 input.")
        log.info(notes[-1])

    with atomic_dir(out_dir, force=force) as tmp:
        onnx_path, xml_path = tmp / "model.onnx", tmp / "model.xml"
        log.info("Exporting %s to ONNX ...", src.arch)
        onnx_info = export_onnx(module, example, onnx_path, ["logits", *attention_names], dynamic=dynamic,
                                divisor=src.input_divisor, spatial=not src.volumetric)
        timings["onnx_s"] = onnx_info.pop("seconds")

        log.info("Converting to OpenVINO IR (%s, via %s) ...", prec.value, route.value)
        t = time.perf_counter()
        if route == Route.TORCH:
            ov_model = convert_torch(module, example, ["logits", *attention_names], dynamic=dynamic,
                                     spatial=not src.volumetric)
        else:
            ov_model = convert_onnx(onnx_path)
        timings["to_ir_s"] = time.perf_counter() - t
        ov_model = add_output_head(ov_model, kind, num_outputs, src.threshold, attention_names)
        if embedded:
            ov_model = embed_preprocessing(ov_model, src.normalization, src.in_channels,
                                           None if dynamic else batch, None if dynamic else size)
        meta = _metadata(src, classes=classes, task=task, size=size, batch=batch, dynamic=dynamic, embedded=embedded,
                         kind=kind, attention_names=attention_names, prec=prec, num_outputs=num_outputs,
                         version=__version__, onnx_info=onnx_info)
        meta.conversion_route = route.value
        write_model_info(ov_model, meta)
        write_rt_info(ov_model, meta)
        save_ir(ov_model, xml_path, fp16=prec == Precision.FP16)
        meta.write_json(metadata_json_path(xml_path))
        # the same description for ONNX Runtime users (session.get_modelmeta().custom_metadata_map)
        write_onnx_metadata(onnx_path, {"attnseg": meta.to_json()})
        timings["convert_s"] = time.perf_counter() - t

        log.info("Compiling on %s and checking parity against PyTorch ...", device)
        t = time.perf_counter()
        inputs = make_inputs(
            size=size, batch=batch, norm=src.normalization, samples=samples, count=adv.parity_batches,
            volumetric_shape=tuple(example.shape[1:]) if src.volumetric else None, resize_policy=src.resize_policy,
        )
        parity = check_parity(
            module=module, onnx_path=onnx_path, xml_path=xml_path, inputs=inputs, kind=kind,
            threshold=src.threshold, attention_names=attention_names, device=device, core=core,
            enforce=prec == Precision.FP32, precision=prec.value,
        )
        parity.notes[:0] = notes
        timings["compile_and_parity_s"] = time.perf_counter() - t
        log.debug("Parity: %s", parity.summary())

        ovms_dir = None
        if ovms_repo is not None:
            from attnseg.export.ovms import write_repository

            ovms_dir = write_repository(ovms_repo, model_name, [xml_path, xml_path.with_suffix(".bin"),
                                                               metadata_json_path(xml_path)], device, force)
        timings["total_s"] = time.perf_counter() - plan.t_start
        # CPU seconds of this process (all threads): the honest figure on a shared machine
        timings["total_cpu_s"] = time.process_time() - plan.cpu_start
        report = {
            "versions": _versions(__version__, torch.__version__),
            "source": {"origin": src.origin, "sha256": src.sha256, "arch": src.arch, "arch_kwargs": src.arch_kwargs},
            "options": {
                "input_size": list(size), "batch": batch, "dynamic": dynamic, "precision": prec.value,
                "output": kind.value, "attention_maps": attention, "embedded_preprocessing": embedded,
                "device": device, "via": route.value,
            },
            "conversion": {"route": route.value, "to_ir_s": round(timings["to_ir_s"], 3),
                           "tool": ("openvino.convert_model(torch.nn.Module, example_input=...)"
                                    if route == Route.TORCH else "openvino.convert_model(model.onnx)")},
            "onnx": onnx_info,
            "ir": describe_ports(ov_model),
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "parity": parity.to_dict(),
            "ovms_model_dir": str(ovms_dir) if ovms_dir else None,
        }
        (tmp / "export_report.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        if adv.package:
            from attnseg.export.package import write_package

            write_package(tmp)

    xml_final = out_dir / "model.xml"
    return ExportResult(
        output_dir=out_dir, onnx_path=out_dir / "model.onnx", xml_path=xml_final,
        bin_path=out_dir / "model.bin", metadata_path=metadata_json_path(xml_final),
        report_path=out_dir / "export_report.json", metadata=meta, parity=parity, timings=timings,
        device=device, exporter=onnx_info["exporter"], ovms_model_dir=ovms_dir,
    )


# ---------------------------------------------------------------- checks that need no model


def _check_batch(batch: Any) -> int:
    try:
        b = int(batch)
    except (TypeError, ValueError):
        b = 0
    if b < 1 or b != batch:
        raise ModelConfigError(f"batch must be a positive integer, got {batch!r}.")
    return b


def _check_output_dir(out_dir: Path, force: bool) -> None:
    """The checks ``atomic_dir`` makes, made before minutes of work instead of after."""
    from attnseg.atomic import check_output_dir

    check_output_dir(out_dir, force)


def _prepare_device(device: str, dynamic: bool, cache_dir: str | Path | None):
    import openvino as ov

    from attnseg.devices import validate_device
    from attnseg.errors import DeviceError

    core = ov.Core()
    name = validate_device(device, core)
    if dynamic and "NPU" in name:
        raise DeviceError(f"{name} needs static shapes; drop --dynamic (and give --input-size H W).")
    if cache_dir is not None:
        from attnseg.runtime.options import cache_folder

        core.set_property({"CACHE_DIR": cache_folder(cache_dir)})
    return core, name


def _model_size(src, size: tuple[int, int] | None) -> tuple[int, int]:
    from attnseg.models.base import nearest_valid_sizes

    if src.volumetric:
        p = int(src.arch_kwargs.get("patch_size", 0)) or (size[0] if size else 0)
        if size is not None and tuple(size) != (p, p):
            raise ModelConfigError(f"{src.arch} takes {p}x{p} patches; drop --input-size or give {p} {p}.")
        return (p, p)
    size = size or src.input_size or DEFAULT_INPUT_SIZE
    d = src.input_divisor
    bad = [s for s in size if s % d]
    if bad:
        hint = " x ".join("/".join(str(v) for v in nearest_valid_sizes(s, d)) for s in size)
        raise ModelConfigError(
            f"{src.arch} needs height and width divisible by {d}; got {size[0]}x{size[1]}. "
            f"Nearest valid sizes: {hint}."
        )
    return tuple(int(s) for s in size)


def _example_input(src, size: tuple[int, int], batch: int):
    import torch

    g = torch.Generator().manual_seed(0)
    if src.volumetric:
        bands = int(src.arch_kwargs.get("bands", src.in_channels))
        return torch.randn(batch, 1, bands, size[0], size[1], generator=g)
    return torch.randn(batch, src.in_channels, size[0], size[1], generator=g)


def _probe(module, example, src, attention_names) -> int:
    """Run the model once: its number of output channels, and a clear error if it cannot run."""
    import torch

    from attnseg.errors import AttnsegError

    try:
        with torch.inference_mode():
            out = module(example)
    except AttnsegError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the user's model becomes one clear message
        raise ModelConfigError(
            f"{src.arch} fails on an input of shape {tuple(example.shape)}: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"
        ) from None
    outs = out if isinstance(out, tuple) else (out,)
    if len(outs) != 1 + len(attention_names):
        raise ModelConfigError(f"{src.arch} returned {len(outs)} outputs, expected {1 + len(attention_names)}.")
    logits = outs[0]
    if not isinstance(logits, torch.Tensor) or logits.dim() not in (2, 4):
        raise ModelConfigError(f"{src.arch} must return (N, C, H, W) or (N, C) logits.")
    if logits.dim() == 4 and tuple(logits.shape[2:]) != tuple(example.shape[2:]):
        raise ModelConfigError(
            f"{src.arch} returns {tuple(logits.shape[2:])} logits for a {tuple(example.shape[2:])} input; "
            "attnseg exports models whose output has the input's size."
        )
    return int(logits.shape[1])


def _output_spec(kind: OutputKind, task: str, num_outputs: int, threshold: float) -> dict[str, Any]:
    from attnseg.export.to_openvino import mask_element_type

    spatial = task != "pixel_classification"
    chw = ["N", "C", "H", "W"] if spatial else ["N", "C"]
    if kind == OutputKind.MASK:
        meaning = (f"1 where sigmoid(logit) > threshold ({threshold}), else 0" if num_outputs == 1
                   else "class index (argmax over classes)")
        return {"name": "mask", "dtype": mask_element_type(max(2, num_outputs)),
                "shape": ["N", "H", "W"] if spatial else ["N"], "meaning": meaning}
    if spatial and num_outputs == 1:  # binary scores come as a pair (to_openvino.add_output_head)
        c = f"logit({threshold})"
        meaning = (f"two-class logits [{c}, logit]: argmax = mask, sigmoid(channel 1) = foreground probability"
                   if kind == OutputKind.LOGITS else
                   f"two-class probabilities [1 - q, q], q = sigmoid(logit - {c}): argmax = mask "
                   "(q is the foreground probability when the threshold is 0.5)")
        return {"name": kind.value, "dtype": "f32", "shape": chw, "channels": 2, "meaning": meaning,
                "binary_pair": True}
    if kind == OutputKind.PROBABILITIES:
        meaning = "sigmoid of the single logit" if num_outputs == 1 else "softmax over classes (axis 1)"
    else:
        meaning = ("one logit; foreground where logit > log(t / (1 - t))" if num_outputs == 1
                   else "class logits; mask = argmax over axis 1")
    return {"name": kind.value, "dtype": "f32", "shape": chw, "channels": num_outputs, "meaning": meaning}


def _metadata(src, *, classes, task, size, batch, dynamic, embedded, kind, attention_names, prec, num_outputs,
              version, onnx_info) -> ModelMetadata:
    layout = "NHWC" if embedded else ("NCDHW" if src.volumetric else "NCHW")
    return ModelMetadata(
        task=task,
        classes=list(classes),
        arch=src.arch,
        input_size=None if dynamic else [int(size[0]), int(size[1])],
        input_layout=layout,
        input_dtype="u8" if embedded else "f32",
        input_channels=3 if embedded else int(src.in_channels),
        batch=None if dynamic else int(batch),
        normalization=src.normalization,
        preprocessing_embedded=embedded,
        output=kind.value,
        threshold=float(src.threshold),
        resize_policy=src.resize_policy,
        attention_outputs=list(attention_names),
        precision=prec.value,
        source_checkpoint_sha256=src.sha256,
        toolkit_version=version,
        output_spec=_output_spec(kind, task, num_outputs, src.threshold),
        input_name="image",
        input_color="BGR" if embedded else src.normalization.channel_order,
        model_input_channels=int(src.in_channels),
        input_divisor=int(src.input_divisor),
        arch_kwargs=dict(src.arch_kwargs),
        source=src.origin,
        onnx={"file": "model.onnx", "opset": onnx_info["opset"], "exporter": onnx_info["exporter"],
              "outputs": list(onnx_info["outputs"]), "input": "f32 NCHW, normalized (no preprocessing)"},
        opset=OPSET,
    )


def _versions(attnseg_version: str, torch_version: str) -> dict[str, str]:
    import numpy
    import onnx
    import onnxruntime
    import openvino

    return {
        "attnseg": attnseg_version, "torch": torch_version, "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__,
        "numpy": numpy.__version__, "python": platform.python_version(),
    }
