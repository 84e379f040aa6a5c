"""``quantize()``: an exported IR (or a checkpoint, exported on the way) -> INT8 or FP16 IR
beside it, with its metadata carried over and a report of size, accuracy and latency.

Order of work: every cheap check first (options, device, output paths, input model, the
calibration and validation sources), then export / calibration / NNCF, then measurements.
Files are written under temporary names and renamed at the very end: a failure leaves
nothing behind, and an existing output is only replaced with ``force``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.atomic import disk_full_guard, output_lock, temp_path
from attnseg.errors import (
    InputFileError,
    InvalidOptionError,
    ModelConfigError,
    OptimizationError,
    OutputExistsError,
    parse_enum,
)
from attnseg.imaging import parse_size
from attnseg.metadata import ModelMetadata, metadata_json_path, write_rt_info
from attnseg.optimize import source as src
from attnseg.optimize.calibration import InputFormat, find_calibration, load_calibration
from attnseg.optimize.options import (
    DEFAULT_FAST_BIAS_CORRECTION,
    DEFAULT_IGNORE_GATES,
    DEFAULT_LATENCY_RUNS,
    DEFAULT_PRESET,
    DEFAULT_SUBSET_SIZE,
    LATENCY_WARMUP,
    MIN_RECOMMENDED_CALIBRATION,
    OptimizePrecision,
    Preset,
    output_precision_label,
)
from attnseg.optimize.progress import progress
from attnseg.optimize.result import AccuracyFigures, OptimizeResult, SizeFigures
from attnseg.stages import StageRecorder

log = logging.getLogger(__name__)

#: Compile config for accuracy figures: reference f32 arithmetic on CPU (what NNCF's accuracy
#: control uses too), so "before" and "after" differ only by the optimization.
_REFERENCE_CONFIG = {"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}


@dataclass
class _Plan:
    folder: Path  # where the output files end up
    stem: str  # output file stem, e.g. model_int8
    new_folder: bool  # checkpoint input: the whole folder (FP32 export + optimized IR) is new

    def names(self) -> list[str]:
        return [f"{self.stem}.xml", f"{self.stem}.bin", f"{self.stem}.json", f"{self.stem}_report.json",
                f"{self.stem}_report.md"]


@dataclass
class AdvancedQuantizationParameters:
    """The quantization options most runs leave alone (``quantize(..., advanced=...)``).

    ``split_name``: the split of ``split`` to calibrate on; ``fast_bias_correction`` /
    ``ignore_gates``: None = the measured defaults (``attnseg.optimize.options``);
    ``ignore_types`` / ``ignore_names``: operations NNCF leaves in float; ``validation_split``:
    the split of a validation data set spec; ``latency_runs``: timed runs per model for the side
    by side figure (0 skips it); ``max_iterations``: accuracy control's budget; ``seed``:
    calibration subset sampling.
    """

    split_name: str = "train"
    fast_bias_correction: bool | None = None
    ignore_types: Sequence[str] | str | None = None
    ignore_names: Sequence[str] | str | None = None
    ignore_gates: bool | None = None
    validation_split: str | None = None
    latency_runs: int = DEFAULT_LATENCY_RUNS
    max_iterations: int | None = None
    seed: int = 0


@dataclass
class _Settings:
    """The resolved options one quantization run works from (passed inward as one object)."""

    prec: OptimizePrecision
    cands: Any  # calibration candidates (find_calibration), set once the output plan is known
    size_override: tuple[int, int] | None
    types: list[str]
    names: list[str]
    gates: bool
    preset: Preset
    fbc: bool
    max_drop: float | None
    validation: Any
    validation_split: str | None
    metric: str | None
    latency_runs: int
    max_iterations: int | None
    seed: int
    subset_size: int


def quantize(
    model: str | Path,
    output: str | Path | None = None,
    *,
    calibration: Any = None,
    split: str | Path | None = None,
    allow_test_calibration: bool = False,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    preset: str | Preset | None = None,
    max_drop: float | None = None,
    validation: Any = None,
    metric: str | None = None,
    precision: str | OptimizePrecision = OptimizePrecision.INT8,
    device: str = "CPU",
    input_size: Sequence[int] | None = None,
    force: bool = False,
    quiet: bool = False,
    advanced: AdvancedQuantizationParameters | None = None,
) -> OptimizeResult:
    """Quantize ``model`` (an exported ``model.xml``, its folder, or a ``.pt`` checkpoint) to INT8
    with NNCF, or compress its weights to FP16 (``precision="fp16"``).

    ``output``: None writes ``<stem>_int8.xml`` beside the IR (a checkpoint gets a new folder
    ``<name>_openvino/`` with the FP32 export and ``model_int8.xml``); a ``.xml`` path names the
    output; anything else is a folder. ``calibration``: a folder of images, a data set spec
    (``kvasir:/data``, optionally ``split``/``split_name``) or a list of paths / arrays.
    ``max_drop`` (a fraction: 0.005 = 0.5 point of Dice) with ``validation`` (images + masks)
    runs NNCF's accuracy-controlled quantization with the project's metric; when the drop
    cannot be met the best model found is kept and ``result.budget_met`` is False.
    ``preset`` / ``fast_bias_correction`` / ``ignore_gates`` default to the values chosen by
    measurement (``attnseg.optimize.options``, docs/optimize_defaults.md). Rarely used options
    are in ``advanced`` (``AdvancedQuantizationParameters``).
    """
    rec = StageRecorder()
    adv = advanced if advanced is not None else AdvancedQuantizationParameters()
    s = _resolve_settings(precision, preset, calibration, max_drop, validation, metric, subset_size, input_size, adv)

    import openvino as ov

    from attnseg.devices import validate_device

    core = ov.Core()
    device = validate_device(device, core)
    kind = src.input_kind(model)
    plan = _plan_output(Path(model).expanduser(), kind, output, s.prec, force)
    if s.prec is OptimizePrecision.INT8:
        s.cands = find_calibration(calibration, split, adv.split_name, allow_test_calibration)
    if kind == "checkpoint" and validation is not None and not _is_spec(validation) \
            and not Path(validation).expanduser().is_dir():
        raise InputFileError(f"Validation folder {validation} does not exist.")
    job = _Job(core=core, device=device, prec=s.prec, plan=plan, settings=_report_settings(s, device),
               quiet=quiet, rec=rec)
    if kind == "checkpoint":
        return _quantize_checkpoint(job, model, s, force)
    return _quantize_ir(job, model, s, force)


def _resolve_settings(precision, preset, calibration, max_drop, validation, metric, subset_size, input_size,
                      adv: AdvancedQuantizationParameters) -> _Settings:
    """Parse and check every option: no device, file or model is touched yet."""
    prec = parse_enum(OptimizePrecision, precision, "precision")
    preset_v = parse_enum(Preset, preset, "preset") if preset is not None else DEFAULT_PRESET
    fbc = DEFAULT_FAST_BIAS_CORRECTION if adv.fast_bias_correction is None else bool(adv.fast_bias_correction)
    gates = DEFAULT_IGNORE_GATES if adv.ignore_gates is None else bool(adv.ignore_gates)
    types, names = _name_list(adv.ignore_types), _name_list(adv.ignore_names)
    _check_options(prec, calibration, max_drop, validation, subset_size, adv.latency_runs, types, names,
                   adv.ignore_gates, preset, adv.fast_bias_correction)
    size_override = parse_size(input_size) if input_size is not None else None
    return _Settings(
        prec=prec, cands=None, size_override=size_override, types=types, names=names, gates=gates, preset=preset_v,
        fbc=fbc, max_drop=max_drop, validation=validation, validation_split=adv.validation_split, metric=metric,
        latency_runs=int(adv.latency_runs), max_iterations=adv.max_iterations, seed=int(adv.seed),
        subset_size=int(subset_size))


def _report_settings(s: _Settings, device: str) -> dict[str, Any]:
    """The settings as the report and ``OptimizeResult.settings`` show them."""
    settings = {
        "precision": s.prec.value, "device": device, "subset_size": s.subset_size, "seed": s.seed,
        "max_drop": None if s.max_drop is None else float(s.max_drop), "latency_runs": s.latency_runs,
    }
    if s.prec is OptimizePrecision.INT8:
        from attnseg.optimize.nncf_run import target_device

        settings.update(preset=s.preset.value, fast_bias_correction=s.fbc, ignore_gates=s.gates,
                        target_device=target_device(device), max_iterations=s.max_iterations)
    return settings


def _quantize_checkpoint(job: _Job, model: str | Path, s: _Settings, force: bool) -> OptimizeResult:
    """Export the checkpoint into the new folder's staging copy, then optimize that IR beside it."""
    from attnseg.atomic import atomic_dir
    from attnseg.export import export

    with atomic_dir(job.plan.folder, force=force) as tmp:
        with job.rec.stage("export"):
            log.info("Exporting %s to OpenVINO IR first ...", model)
            exported = export(model, output_dir=tmp, input_size=s.size_override, device=job.device, force=True)
        job.exported_from = str(model)
        result = job.run(tmp / "model.xml", tmp, job.plan.folder / "model.xml", s)
        del exported
    return result


def _quantize_ir(job: _Job, model: str | Path, s: _Settings, force: bool) -> OptimizeResult:
    xml = _resolve_ir(model)
    if job.plan.folder == xml.parent and job.plan.stem == xml.stem:
        raise OutputExistsError(f"The output would overwrite the input {xml}; choose another output name.")
    with _staging(job.plan, force) as stage:
        return job.run(xml, stage, xml, s)


# ------------------------------------------------------------------------------------ the work


@dataclass
class _Input:
    """The model being optimized, read and checked, and the input format calibration uses."""

    model: Any  # the FP32 (or FP16) openvino.Model
    meta: ModelMetadata
    size: tuple[int, int]
    fmt: InputFormat  # the runtime's codec, at ``size``


@dataclass
class _Validation:
    vset: Any  # optimize.validation's images + masks
    scorer: Any  # Scorer: a compiled model and indices -> (metric, per image)


@dataclass
class _Optimized:
    model: Any  # the INT8 / FP16 openvino.Model before saving
    ignored: Any = None  # IgnoredInfo (INT8)
    accuracy_control: dict[str, Any] | None = None
    candidate_metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class _Saved:
    xml: Path  # the staged file
    model: Any  # read back from disk: what is measured is what ships
    label: str  # int8 | int8_acq | fp16


@dataclass
class _Job:
    """One run's fixed context; ``run`` is the sequence of stages, each a short method below."""

    core: Any
    device: str
    prec: OptimizePrecision
    plan: _Plan
    settings: dict[str, Any]
    quiet: bool
    rec: StageRecorder
    exported_from: str | None = None
    warnings: list[str] = field(default_factory=list)

    def run(self, xml: Path, stage: Path, final_source_xml: Path, s: _Settings) -> OptimizeResult:
        from attnseg.optimize.report import write_reports

        rec = self.rec
        with rec.stage("load"):
            inp = self._load(xml, s.size_override)
        val = None
        if s.validation is not None:
            with rec.stage("load_validation"):
                val = self._load_validation(inp, s)
        calib = None
        if self.prec is OptimizePrecision.INT8:
            with rec.stage("load_calibration"):
                calib = self._load_calibration(inp, val, s)
        for w in self.warnings:
            log.warning("%s", w)
        opt = self._optimize(inp.model, calib, val, s)
        saved = self._save(opt, inp, calib, s, stage / f"{self.plan.stem}.xml", final_source_xml)
        accuracy = latency = None
        if val is not None:
            with rec.stage("validate"):
                accuracy = self._validate(inp, val, opt, saved, s.max_drop)
        if s.latency_runs > 0:
            with rec.stage("latency"):
                latency = self._latency(inp, calib, val, saved, s.latency_runs)
        rec.total()
        result = self._result(xml, final_source_xml, inp, calib, opt, saved, accuracy, latency)
        write_reports(result, stage / f"{self.plan.stem}_report.json", stage / f"{self.plan.stem}_report.md")
        return result

    # --------------------------------------------------------------------------------- stages
    def _load(self, xml: Path, size_override: tuple[int, int] | None) -> _Input:
        from attnseg.runtime.adapter import OpenVINOAdapter
        from attnseg.runtime.ports import Port

        source = OpenVINOAdapter(xml, self.device, core=self.core, compile=False)
        fp32, meta = source.model, source.metadata
        src.check_image_model(meta, xml)
        self._check_precision(fp32, meta, xml)
        size = _model_size(meta, size_override, xml)
        port_dtype = fp32.inputs[0].get_element_type().to_dtype()
        main = next((o for o in fp32.outputs if meta.output in o.get_names()), fp32.outputs[0])
        return _Input(model=fp32, meta=meta, size=size, fmt=InputFormat.of(meta, size, port_dtype, Port.of(main)))

    def _load_validation(self, inp: _Input, s: _Settings) -> _Validation:
        from attnseg.optimize.validation import Scorer, choose_metric, load_validation

        mtr = choose_metric(s.metric, inp.meta)
        vset = load_validation(s.validation, inp.meta, inp.fmt, mtr, s.validation_split)
        return _Validation(vset=vset, scorer=Scorer(vset, inp.fmt.codec, inp.meta.output))

    def _load_calibration(self, inp: _Input, val: _Validation | None, s: _Settings):
        calib = load_calibration(s.cands, inp.fmt, s.subset_size, s.seed, quiet=self.quiet)
        self.warnings.extend(calib.warnings)
        if calib.info.used < MIN_RECOMMENDED_CALIBRATION:
            self.warnings.append(f"Only {calib.info.used} calibration images (at least {MIN_RECOMMENDED_CALIBRATION} "
                                 "recommended): the activation ranges may not represent real inputs.")
        if val is not None:
            shared = set(calib.names) & set(val.vset.names)
            if shared:
                self.warnings.append(f"{len(shared)} calibration images are also validation images: the accuracy "
                                     "figure is optimistic. Calibrate on the train split, validate on val / test.")
        return calib

    def _optimize(self, fp32: Any, calib, val: _Validation | None, s: _Settings) -> _Optimized:
        """FP16 compression, NNCF, or NNCF with accuracy control and the better of its two models
        (``quantize_s`` / ``quantize_cpu_s``, then ``select_s``)."""
        from attnseg.optimize import nncf_run

        if self.prec is OptimizePrecision.FP16:
            with self.rec.stage("quantize", cpu=True):
                optimized = _Optimized(fp32.clone())
            return optimized
        if s.max_drop is None:
            with self.rec.stage("quantize", cpu=True):
                opts, ignored = self._nncf_options(fp32, calib, s)
                optimized = _Optimized(nncf_run.quantize(fp32, calib.items, opts, self.quiet), ignored)
            return optimized
        with tempfile.TemporaryDirectory(prefix="attnseg-acq-") as work:
            with self.rec.stage("quantize", cpu=True):
                opts, ignored = self._nncf_options(fp32, calib, s)
                final, full = nncf_run.quantize_with_accuracy_control(
                    fp32, calib.items, len(val.vset), val.scorer, s.max_drop, opts, self.quiet, Path(work),
                    s.max_iterations)
            with self.rec.stage("select"):
                model, control, metrics = self._keep_best(final, full, val.scorer, val.vset, s.max_drop)
        return _Optimized(model, ignored, control, metrics)

    def _nncf_options(self, fp32: Any, calib, s: _Settings):
        from attnseg.optimize import nncf_run

        scope, ignored = nncf_run.build_ignored_scope(fp32, s.types, s.names, s.gates)
        opts = nncf_run.QuantizeOptions(preset=s.preset, fast_bias_correction=s.fbc,
                                        target_device=self.settings["target_device"], ignored_scope=scope)
        log.info("Quantizing with NNCF (%d calibration images, preset %s, fast bias correction %s) ...",
                 calib.info.used, s.preset.value, s.fbc)
        return opts, ignored

    def _save(self, opt: _Optimized, inp: _Input, calib, s: _Settings, staged_xml: Path,
              final_source_xml: Path) -> _Saved:
        """Write the staged IR and its JSON, then read it back: measurements use the saved file."""
        import openvino as ov

        from attnseg.export.model_api import write_model_info
        from attnseg.runtime.adapter import read_model

        label = output_precision_label(self.prec, s.max_drop is not None)
        out_meta = self._out_metadata(inp.meta, label, final_source_xml, calib, opt.ignored, s.preset, s.fbc,
                                      s.max_drop)
        write_model_info(opt.model, out_meta)  # Model API's view, re-derived for the file that ships
        write_rt_info(opt.model, out_meta)
        ov.save_model(opt.model, str(staged_xml), compress_to_fp16=self.prec is OptimizePrecision.FP16)
        out_meta.write_json(metadata_json_path(staged_xml))
        return _Saved(xml=staged_xml, model=read_model(self.core, staged_xml), label=label)

    def _validate(self, inp: _Input, val: _Validation, opt: _Optimized, saved: _Saved,
                  max_drop: float | None) -> AccuracyFigures:
        vset, scorer, n = val.vset, val.scorer, len(val.vset)
        before = scorer(self._compile_reference(inp.model),
                        progress(range(n), "Validating the FP32 IR", n, self.quiet))[0]
        after = opt.candidate_metrics.get("kept")
        if after is None:
            after = scorer(self._compile_reference(saved.model),
                           progress(range(n), f"Validating the {saved.label.upper()} IR", n, self.quiet))[0]
        accuracy = AccuracyFigures(
            metric=vset.metric.value, data=vset.data, count=len(vset), before=before, after=after,
            inference_precision=self._reference_precision(), max_drop=None if max_drop is None else float(max_drop),
            accuracy_control=opt.accuracy_control,
        )
        if max_drop is not None:
            accuracy.met = bool(accuracy.drop <= float(max_drop) + 1e-12)
            if not accuracy.met:
                self.warnings.append(
                    f"The accuracy budget was not met: max drop {max_drop:.4f} asked, {accuracy.drop:.4f} reached "
                    f"({vset.metric.value} {before:.4f} -> {after:.4f}); the best model found was kept. Try more "
                    "calibration images, --no-fast-bias-correction, or a larger --max-drop.")
                log.warning("%s", self.warnings[-1])
        return accuracy

    def _latency(self, inp: _Input, calib, val: _Validation | None, saved: _Saved, runs: int):
        from attnseg.optimize.latency import measure

        sample = self._latency_sample(calib, val.vset if val is not None else None, inp.fmt)
        models = {"fp32": (inp.model, {}, "FP32 IR"), "optimized": (saved.model, {}, f"{saved.label.upper()} IR")}
        if self._cpu_default_not_f32():
            models["fp32_f32"] = (inp.model, {"INFERENCE_PRECISION_HINT": "f32"}, "FP32 IR, f32 forced")
        log.info("Timing the input and the optimized model side by side for the report (%d runs each) ...", runs)
        return measure(self.core, models, self.device, sample, runs, LATENCY_WARMUP, quiet=self.quiet)

    def _result(self, xml: Path, final_source_xml: Path, inp: _Input, calib, opt: _Optimized, saved: _Saved,
                accuracy, latency) -> OptimizeResult:
        folder, stem = self.plan.folder, self.plan.stem
        final_xml = folder / f"{stem}.xml"
        return OptimizeResult(
            precision=saved.label, source_xml=final_source_xml, output_xml=final_xml,
            output_bin=final_xml.with_suffix(".bin"), metadata_path=metadata_json_path(final_xml),
            report_json=folder / f"{stem}_report.json", report_md=folder / f"{stem}_report.md",
            settings=dict(self.settings), size=SizeFigures(before_bytes=_ir_bytes(xml), after_bytes=_ir_bytes(saved.xml)),
            exported_from=self.exported_from, calibration=calib.info if calib else None, ignored=opt.ignored,
            accuracy=accuracy, latency=latency, quantizers=src.op_types(saved.model).get("FakeQuantize", 0),
            timings=self.rec.timings, warnings=self.warnings, versions=_versions(),
        )

    # -------------------------------------------------------------------------------- helpers
    def _check_precision(self, model: Any, meta: ModelMetadata, xml: Path) -> None:
        src.check_not_quantized(model, meta, xml)
        fp16 = meta.precision == "fp16" or src.fp16_weight_constants(model) > 0
        if self.prec is OptimizePrecision.FP16 and fp16:
            raise OptimizationError(f"{xml} already has FP16 weights; nothing to compress.")
        if self.prec is OptimizePrecision.INT8 and fp16:
            self.warnings.append(f"{xml.name} has FP16 weights; quantizing the FP32 export gives the most "
                                 "accurate INT8 model.")

    def _compile_reference(self, model: Any) -> Any:
        return self.core.compile_model(model, self.device, _REFERENCE_CONFIG.get(self.device, {}))

    def _reference_precision(self) -> str:
        return "f32" if self.device in _REFERENCE_CONFIG else "device default"

    def _cpu_default_not_f32(self) -> bool:
        if self.device != "CPU":
            return False
        try:
            return self.core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name() != "f32"
        except (RuntimeError, AttributeError):
            return False

    def _keep_best(self, final: Any, full: Any, scorer: Any, vset: Any, max_drop: float):
        """Of NNCF's accuracy-controlled model and the fully quantized one, keep the fully
        quantized one when it is at least as accurate (it is also faster), else NNCF's."""
        everything = range(len(vset))
        m_final = scorer(self._compile_reference(final), everything)[0]
        fq_final = src.op_types(final).get("FakeQuantize", 0)
        fq_full = src.op_types(full).get("FakeQuantize", 0) if full is not None else fq_final
        m_full = m_final
        kept, model, metric = "accuracy-controlled", final, m_final
        if full is not None and fq_full != fq_final:
            m_full = scorer(self._compile_reference(full), everything)[0]
            if m_full >= m_final:
                kept, model, metric = "fully quantized", full, m_full
        fq_kept = fq_full if model is full else fq_final
        info = {
            "quantizers_full": fq_full, "quantizers_final": fq_kept, "reverted_quantizers": max(0, fq_full - fq_kept),
            "kept": kept, "full_int8_metric": m_full, "accuracy_controlled_metric": m_final,
        }
        return model, info, {"kept": metric}

    def _out_metadata(self, meta: ModelMetadata, label: str, source_xml: Path, calib, ignored, preset, fbc,
                      max_drop) -> ModelMetadata:
        out = copy.deepcopy(meta)
        out.precision = label
        extra = dict(out.extra) if isinstance(out.extra, dict) else {}
        opt: dict[str, Any] = {"precision": label, "source": source_xml.name, "tool": "attnseg.optimize"}
        if calib is not None:
            opt.update(preset=preset.value, fast_bias_correction=bool(fbc), calibration_images=calib.info.used,
                       calibration_source=calib.info.source, calibration_split=calib.info.split)
        if ignored is not None:
            opt["ignored"] = {"types": ignored.types, "names": ignored.names, "gates": ignored.gates,
                              "nodes": len(ignored.nodes)}
        if max_drop is not None:
            opt["max_drop"] = float(max_drop)
        opt["versions"] = _versions()
        extra["optimization"] = opt
        out.extra = extra
        return out

    @staticmethod
    def _latency_sample(calib, vset, fmt: InputFormat) -> np.ndarray:
        if calib is not None:
            return calib.items[0]
        if vset is not None:
            return vset.inputs[0]
        rng = np.random.default_rng(0)
        return fmt.tensor(rng.integers(0, 256, (*fmt.size, 3), dtype=np.uint8))


# ------------------------------------------------------------------------ checks and plumbing


def _name_list(value: Sequence[str] | str | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [x for v in value for x in str(v).split(",")]
    return [x.strip() for x in items if x.strip()]


def _is_spec(value: Any) -> bool:
    from attnseg.optimize.calibration import is_dataset_spec

    return is_dataset_spec(value)


def _check_options(prec, calibration, max_drop, validation, subset_size, latency_runs, types, names, ignore_gates,
                   preset, fast_bias_correction) -> None:
    if prec is OptimizePrecision.FP16:
        extras = [n for n, v in (("calibration", calibration), ("max_drop", max_drop), ("preset", preset),
                                 ("fast_bias_correction", fast_bias_correction), ("ignore_gates", ignore_gates))
                  if v is not None] + (["ignore_types/ignore_names"] if types or names else [])
        if extras:
            raise InvalidOptionError(f"FP16 weight compression takes no {', '.join(extras)} (those are INT8 options).")
    if max_drop is not None:
        try:
            md = float(max_drop)
        except (TypeError, ValueError):
            raise InvalidOptionError(f"max_drop must be a number, got {max_drop!r}.") from None
        if not 0.0 <= md < 1.0:
            raise InvalidOptionError(f"max_drop is an absolute drop of the metric as a fraction (0.005 = 0.5 point), "
                                    f"between 0 and 1; got {max_drop}.")
        if validation is None:
            raise InvalidOptionError("--max-drop needs --validation: images with masks to measure the drop on.")
    try:
        ok = int(subset_size) >= 1 and int(subset_size) == subset_size
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidOptionError(f"subset_size must be a positive integer, got {subset_size!r}.")
    if int(latency_runs) < 0:
        raise InvalidOptionError(f"latency_runs must be >= 0, got {latency_runs}.")


def _model_size(meta: ModelMetadata, override: tuple[int, int] | None, xml: Path) -> tuple[int, int]:
    if meta.input_size:
        if override is not None and tuple(override) != tuple(meta.input_size):
            raise ModelConfigError(f"{xml.name} has a fixed input size {meta.input_size[0]}x{meta.input_size[1]}; "
                                   "drop --input-size (calibration images are resized to it).")
        return int(meta.input_size[0]), int(meta.input_size[1])
    if override is None:
        raise ModelConfigError(f"{xml.name} has dynamic height/width: give --input-size H W to calibrate and time it at.")
    return override


def _resolve_ir(model: str | Path) -> Path:
    from attnseg.runtime.adapter import resolve_model_path

    return resolve_model_path(model)


def _plan_output(model: Path, kind: str, output: str | Path | None, prec: OptimizePrecision, force: bool) -> _Plan:
    suffix = prec.value
    if kind == "checkpoint":
        if output is not None and str(output).lower().endswith(".xml"):
            raise OptimizationError("A checkpoint is exported first: give -o a folder (it will hold model.xml and "
                                    f"model_{suffix}.xml), not a .xml file.")
        folder = Path(output).expanduser() if output is not None else model.parent / f"{model.stem}_openvino"
        if folder.exists() and not force:
            raise OutputExistsError(f"{folder} already exists; pass --force to replace it.")
        if folder.exists() and not folder.is_dir():
            raise InputFileError(f"{folder} is a file; give a folder for the exported and optimized models.")
        return _Plan(folder=folder, stem=f"model_{suffix}", new_folder=True)
    xml = _resolve_ir(model)
    if output is None:
        plan = _Plan(folder=xml.parent, stem=f"{xml.stem}_{suffix}", new_folder=False)
    elif str(output).lower().endswith(".xml"):
        out = Path(output).expanduser()
        plan = _Plan(folder=out.parent, stem=out.stem, new_folder=False)
    else:
        out = Path(output).expanduser()
        if out.exists() and not out.is_dir():
            raise InputFileError(f"{out} is a file; give a folder or a .xml path for the optimized model.")
        plan = _Plan(folder=out, stem=f"{xml.stem}_{suffix}", new_folder=False)
    existing = [n for n in plan.names() if (plan.folder / n).exists()]
    if existing and not force:
        raise OutputExistsError(f"{plan.folder / existing[0]} already exists; pass --force to replace it.")
    return plan


@contextlib.contextmanager
def _staging(plan: _Plan, force: bool) -> Iterator[Path]:
    """A temporary folder inside the output folder; its files are renamed into place on success."""
    created = [p for p in (plan.folder, *plan.folder.parents) if not p.exists()]
    try:
        plan.folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create output folder {plan.folder}: {exc.strerror}.") from None
    if not os.access(plan.folder, os.W_OK):
        raise InputFileError(f"Output folder {plan.folder} is not writable.")
    ok = False
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(output_lock(plan.folder / plan.stem))
            tmp = temp_path(plan.folder, plan.stem, directory=True)
            stack.callback(shutil.rmtree, tmp, ignore_errors=True)
            stack.enter_context(disk_full_guard(plan.folder, plan.folder / f"{plan.stem}.xml"))
            yield tmp
            existing = [n for n in plan.names() if (plan.folder / n).exists()]
            if existing and not force:
                raise OutputExistsError(f"{plan.folder / existing[0]} appeared while optimizing; pass --force "
                                        "to replace it.")
            for name in plan.names():
                if (tmp / name).exists():
                    os.replace(tmp / name, plan.folder / name)
        ok = True
    finally:
        if not ok:  # leave no empty folders we made
            for d in created:
                with contextlib.suppress(OSError):
                    d.rmdir()


def _ir_bytes(xml: Path) -> int:
    return xml.stat().st_size + xml.with_suffix(".bin").stat().st_size


def _versions() -> dict[str, str]:
    import openvino

    from attnseg import __version__

    out = {"attnseg": __version__, "openvino": openvino.__version__}
    from importlib.metadata import PackageNotFoundError, version

    try:
        out["nncf"] = version("nncf")
    except PackageNotFoundError:  # nncf missing: only FP16 compression can have run
        out["nncf"] = "not installed"
    return out
