"""``export()``: checkpoint or module -> validated ONNX + OpenVINO IR in one folder.

Cheap checks (options, device, output folders) run before the model is even loaded; every
file is written inside ``atomic_dir`` so a failure (including failed parity) leaves nothing.
"""

from __future__ import annotations

import json
import logging
import platform
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
from attnseg.stages import StageRecorder

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
    """Everything ``export`` resolved and checked before loading the model, handed inward as one object."""

    core: Any
    device: str
    out_dir: Path
    size: tuple[int, int] | None  # as asked; the model's own size is settled in ``_network``
    prec: Precision
    kind: OutputKind
    attention: bool
    samples: str | Path | Sequence[Path] | None
    force: bool
    advanced: AdvancedExportParameters
    route: Route = DEFAULT_ROUTE


@dataclass
class _Network:
    """The loaded model, wrapped for export and run once: what every later stage writes and describes."""

    src: Any
    size: tuple[int, int]
    module: Any
    example: Any
    attention_names: list[str]
    num_outputs: int
    classes: list[str]
    task: str
    embedded: bool
    notes: list[str]


@dataclass
class _Onnx:
    path: Path
    info: dict[str, Any]  # check_onnx's description plus the exporter used


@dataclass
class _Ir:
    model: Any  # the openvino.Model as saved (head, preprocessing, rt_info)
    xml: Path
    meta: ModelMetadata


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
    rec = StageRecorder()
    plan = _check_request(output_dir, input_size, precision, attention_maps, device, samples, force, via,
                          advanced if advanced is not None else AdvancedExportParameters())
    with rec.stage("load"):
        src = _load_source(checkpoint, model, arch, classes, threshold, plan.advanced)
    if attention_maps and not src.has_attention_gates:
        raise ModelConfigError(
            f"{src.arch} has no attention gates to export; drop --attention-maps "
            "(AttU_Net and R2AttU_Net have them)."
        )
    size = _model_size(src, plan.size)
    prev_attention = getattr(src.model, "return_attention", None)
    try:
        if attention_maps:
            src.model.return_attention = True
        return _export_loaded(plan, _network(plan, src, size), rec)
    finally:
        if prev_attention is not None:
            src.model.return_attention = prev_attention


def _export_loaded(plan: _ExportPlan, net: _Network, rec: StageRecorder) -> ExportResult:
    """The stages that write files, all inside one ``atomic_dir``: published together or not at all."""
    from attnseg.atomic import atomic_dir

    with atomic_dir(plan.out_dir, force=plan.force) as tmp:
        onnx = _write_onnx(plan, net, tmp / "model.onnx", rec)
        ir = _write_ir(plan, net, onnx, tmp / "model.xml", rec)
        with rec.stage("compile_and_parity"):
            parity = _check_parity(plan, net, onnx, ir)
        ovms_dir = _write_ovms(plan, ir)
        rec.total()
        _write_report(tmp / "export_report.json", plan, net, onnx, ir, parity, ovms_dir, rec.timings)
        if plan.advanced.package:
            from attnseg.export.package import write_package

            write_package(tmp)
    xml_final = plan.out_dir / "model.xml"
    return ExportResult(
        output_dir=plan.out_dir, onnx_path=plan.out_dir / "model.onnx", xml_path=xml_final,
        bin_path=plan.out_dir / "model.bin", metadata_path=metadata_json_path(xml_final),
        report_path=plan.out_dir / "export_report.json", metadata=ir.meta, parity=parity, timings=rec.timings,
        device=plan.device, exporter=onnx.info["exporter"], ovms_model_dir=ovms_dir,
    )


# ------------------------------------------------------------------------------------ stages


def _check_request(output_dir, input_size, precision, attention_maps, device, samples, force, via,
                   adv: AdvancedExportParameters) -> _ExportPlan:
    """Every check that needs no model, made before minutes of work instead of after."""
    prec = parse_enum(Precision, precision, "precision")
    kind = parse_enum(OutputKind, adv.output, "output")
    route = parse_enum(Route, via, "conversion route (via)")
    adv = replace(adv, batch=_check_batch(adv.batch), parity_batches=max(1, int(adv.parity_batches)))
    size = parse_size(input_size) if input_size is not None else None
    out_dir = Path(output_dir)
    _check_output_dir(out_dir, force)
    core, device = _prepare_device(device, adv.dynamic, adv.cache_dir)
    if adv.ovms_repo is not None:
        from attnseg.export.ovms import check_target

        check_target(adv.ovms_repo, adv.model_name, force, output_dir=out_dir)
    if samples is not None and not isinstance(samples, (list, tuple)) and not Path(samples).is_dir():
        raise InputFileError(f"samples={str(samples)!r} (seg-export --samples) is not a folder of images "
                             "(or a list of image paths).")
    return _ExportPlan(core=core, device=device, out_dir=out_dir, size=size, prec=prec, kind=kind,
                       attention=attention_maps, samples=samples, force=force, advanced=adv, route=route)


def _load_source(checkpoint, model, arch, classes, threshold, adv: AdvancedExportParameters):
    from attnseg.export.source import resolve_source

    src = resolve_source(checkpoint, model=model, arch=arch, arch_kwargs=adv.arch_kwargs, classes=classes,
                         normalization=adv.normalization, threshold=threshold)
    if model is not None and adv.normalization is None and src.in_channels == 1:
        src.normalization = Normalization(mean=(0.0,), std=(1.0,), channel_order="GRAY")
    return src


def _network(plan: _ExportPlan, src, size: tuple[int, int]) -> _Network:
    """Wrap the model, run it once (its output count and a clear error if it cannot run) and
    settle what the IR will be: task, classes, embedded preprocessing."""
    from attnseg.export.source import check_classes
    from attnseg.export.to_onnx import wrap_for_export

    module = wrap_for_export(src.model, plan.attention)
    attention_names = ([f"attention_{n}" for n in getattr(src.model, "attention_names", [])]
                       if plan.attention else [])
    example = _example_input(src, size, plan.advanced.batch)
    num_outputs = _probe(module, example, src, attention_names)
    classes = check_classes(src, num_outputs)
    task = "pixel_classification" if src.volumetric else ("binary" if num_outputs == 1 else "multiclass")
    embed = plan.advanced.embed_preprocessing
    embedded = bool(embed) and not src.volumetric and src.in_channels in (1, 3)
    notes = []
    if embed and not embedded:
        notes.append(f"{src.arch} takes {'hyperspectral patches' if src.volumetric else f'{src.in_channels}-channel tensors'}"
                     ", not images: the IR keeps a raw f32 input.")
        log.info(notes[-1])
    return _Network(src=src, size=size, module=module, example=example, attention_names=attention_names,
                    num_outputs=num_outputs, classes=classes, task=task, embedded=embedded, notes=notes)


def _write_onnx(plan: _ExportPlan, net: _Network, path: Path, rec: StageRecorder) -> _Onnx:
    from attnseg.export.to_onnx import export_onnx

    log.info("Exporting %s to ONNX ...", net.src.arch)
    with rec.stage("onnx"):
        info = export_onnx(net.module, net.example, path, ["logits", *net.attention_names],
                           dynamic=plan.advanced.dynamic, divisor=net.src.input_divisor,
                           spatial=not net.src.volumetric)
    info.pop("seconds")  # the recorder's onnx_s times the same call
    return _Onnx(path=path, info=info)


def _write_ir(plan: _ExportPlan, net: _Network, onnx: _Onnx, xml: Path, rec: StageRecorder) -> _Ir:
    """Convert (``to_ir_s``), add the head, preprocessing and metadata, save: ``convert_s`` in all."""
    from attnseg import __version__
    from attnseg.export.model_api import write_model_info
    from attnseg.export.to_onnx import write_onnx_metadata
    from attnseg.export.to_openvino import save_ir

    log.info("Converting to OpenVINO IR (%s, via %s) ...", plan.prec.value, plan.route.value)
    with rec.stage("convert"):
        with rec.stage("to_ir"):
            ov_model = _convert(plan, net, onnx.path)
        ov_model = _with_head(plan, net, ov_model)
        meta = _metadata(plan, net, onnx.info, __version__)
        write_model_info(ov_model, meta)
        write_rt_info(ov_model, meta)
        save_ir(ov_model, xml, fp16=plan.prec == Precision.FP16)
        meta.write_json(metadata_json_path(xml))
        # the same description for ONNX Runtime users (session.get_modelmeta().custom_metadata_map)
        write_onnx_metadata(onnx.path, {"attnseg": meta.to_json()})
    return _Ir(model=ov_model, xml=xml, meta=meta)


def _convert(plan: _ExportPlan, net: _Network, onnx_path: Path):
    from attnseg.export.to_openvino import convert_onnx, convert_torch

    if plan.route == Route.TORCH:
        return convert_torch(net.module, net.example, ["logits", *net.attention_names],
                             dynamic=plan.advanced.dynamic, spatial=not net.src.volumetric)
    return convert_onnx(onnx_path)


def _with_head(plan: _ExportPlan, net: _Network, ov_model):
    """The output head (logits | probabilities | mask) and, for images, the embedded preprocessing."""
    from attnseg.export.to_openvino import add_output_head, embed_preprocessing

    src, adv = net.src, plan.advanced
    ov_model = add_output_head(ov_model, plan.kind, net.num_outputs, src.threshold, net.attention_names)
    if net.embedded:
        ov_model = embed_preprocessing(ov_model, src.normalization, src.in_channels,
                                       None if adv.dynamic else adv.batch, None if adv.dynamic else net.size)
    return ov_model


def _check_parity(plan: _ExportPlan, net: _Network, onnx: _Onnx, ir: _Ir):
    from attnseg.export.parity import check_parity, make_inputs

    log.info("Compiling on %s and checking parity against PyTorch ...", plan.device)
    src, adv = net.src, plan.advanced
    inputs = make_inputs(
        size=net.size, batch=adv.batch, norm=src.normalization, samples=plan.samples, count=adv.parity_batches,
        volumetric_shape=tuple(net.example.shape[1:]) if src.volumetric else None, resize_policy=src.resize_policy,
    )
    parity = check_parity(
        module=net.module, onnx_path=onnx.path, xml_path=ir.xml, inputs=inputs, kind=plan.kind,
        threshold=src.threshold, attention_names=net.attention_names, device=plan.device, core=plan.core,
        enforce=plan.prec == Precision.FP32, precision=plan.prec.value,
    )
    parity.notes[:0] = net.notes
    log.debug("Parity: %s", parity.summary())
    return parity


def _write_ovms(plan: _ExportPlan, ir: _Ir) -> Path | None:
    adv = plan.advanced
    if adv.ovms_repo is None:
        return None
    from attnseg.export.ovms import write_repository

    return write_repository(adv.ovms_repo, adv.model_name,
                            [ir.xml, ir.xml.with_suffix(".bin"), metadata_json_path(ir.xml)], plan.device, plan.force)


def _write_report(path: Path, plan: _ExportPlan, net: _Network, onnx: _Onnx, ir: _Ir, parity, ovms_dir,
                  timings: dict[str, float]) -> None:
    import torch

    from attnseg import __version__
    from attnseg.export.to_openvino import describe_ports

    src, adv, route = net.src, plan.advanced, plan.route
    report = {
        "versions": _versions(__version__, torch.__version__),
        "source": {"origin": src.origin, "sha256": src.sha256, "arch": src.arch, "arch_kwargs": src.arch_kwargs},
        "options": {
            "input_size": list(net.size), "batch": adv.batch, "dynamic": adv.dynamic, "precision": plan.prec.value,
            "output": plan.kind.value, "attention_maps": plan.attention, "embedded_preprocessing": net.embedded,
            "device": plan.device, "via": route.value,
        },
        "conversion": {"route": route.value, "to_ir_s": round(timings["to_ir_s"], 3),
                       "tool": ("openvino.convert_model(torch.nn.Module, example_input=...)"
                                if route == Route.TORCH else "openvino.convert_model(model.onnx)")},
        "onnx": onnx.info,
        "ir": describe_ports(ir.model),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "parity": parity.to_dict(),
        "ovms_model_dir": str(ovms_dir) if ovms_dir else None,
    }
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


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


def _metadata(plan: _ExportPlan, net: _Network, onnx_info: dict[str, Any], version: str) -> ModelMetadata:
    src, size, embedded, kind, adv = net.src, net.size, net.embedded, plan.kind, plan.advanced
    dynamic, batch, attention_names = adv.dynamic, adv.batch, net.attention_names
    layout = "NHWC" if embedded else ("NCDHW" if src.volumetric else "NCHW")
    return ModelMetadata(
        task=net.task,
        classes=list(net.classes),
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
        input_interpolation=src.input_interpolation,
        attention_outputs=list(attention_names),
        precision=plan.prec.value,
        source_checkpoint_sha256=src.sha256,
        toolkit_version=version,
        output_spec=_output_spec(kind, net.task, net.num_outputs, src.threshold),
        input_name="image",
        input_color="BGR" if embedded else src.normalization.channel_order,
        model_input_channels=int(src.in_channels),
        input_divisor=int(src.input_divisor),
        arch_kwargs=dict(src.arch_kwargs),
        source=src.origin,
        onnx={"file": "model.onnx", "opset": onnx_info["opset"], "exporter": onnx_info["exporter"],
              "outputs": list(onnx_info["outputs"]), "input": "f32 NCHW, normalized (no preprocessing)"},
        opset=OPSET,
        conversion_route=plan.route.value,
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
