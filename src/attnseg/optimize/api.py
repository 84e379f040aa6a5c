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
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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

    cands: Any
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
    adv = advanced if advanced is not None else AdvancedQuantizationParameters()
    split_name, fast_bias_correction, ignore_gates = adv.split_name, adv.fast_bias_correction, adv.ignore_gates
    ignore_types, ignore_names, validation_split = adv.ignore_types, adv.ignore_names, adv.validation_split
    latency_runs, max_iterations, seed = adv.latency_runs, adv.max_iterations, adv.seed
    t_start, cpu_start = time.perf_counter(), time.process_time()
    timings: dict[str, float] = {}
    prec = parse_enum(OptimizePrecision, precision, "precision")
    preset_v = parse_enum(Preset, preset, "preset") if preset is not None else DEFAULT_PRESET
    fbc = DEFAULT_FAST_BIAS_CORRECTION if fast_bias_correction is None else bool(fast_bias_correction)
    gates = DEFAULT_IGNORE_GATES if ignore_gates is None else bool(ignore_gates)
    types, names = _name_list(ignore_types), _name_list(ignore_names)
    _check_options(prec, calibration, max_drop, validation, subset_size, latency_runs, types, names,
                   ignore_gates, preset, fast_bias_correction)
    size_override = parse_size(input_size) if input_size is not None else None

    import openvino as ov

    from attnseg.devices import validate_device

    core = ov.Core()
    device = validate_device(device, core)
    kind = src.input_kind(model)
    plan = _plan_output(Path(model).expanduser(), kind, output, prec, force)
    cands = (find_calibration(calibration, split, split_name, allow_test_calibration)
             if prec is OptimizePrecision.INT8 else None)
    if kind == "checkpoint" and validation is not None and not _is_spec(validation) \
            and not Path(validation).expanduser().is_dir():
        raise InputFileError(f"Validation folder {validation} does not exist.")

    settings = {
        "precision": prec.value, "device": device, "subset_size": int(subset_size), "seed": int(seed),
        "max_drop": None if max_drop is None else float(max_drop), "latency_runs": int(latency_runs),
    }
    if prec is OptimizePrecision.INT8:
        from attnseg.optimize.nncf_run import target_device

        settings.update(preset=preset_v.value, fast_bias_correction=fbc, ignore_gates=gates,
                        target_device=target_device(device), max_iterations=max_iterations)

    settings_run = _Settings(
        cands=cands, size_override=size_override, types=types, names=names, gates=gates, preset=preset_v, fbc=fbc,
        max_drop=max_drop, validation=validation, validation_split=validation_split, metric=metric,
        latency_runs=int(latency_runs), max_iterations=max_iterations, seed=int(seed), subset_size=int(subset_size))
    job = _Job(core=core, device=device, prec=prec, plan=plan, settings=settings, timings=timings, quiet=quiet,
               t_start=t_start, cpu_start=cpu_start)
    if kind == "checkpoint":
        from attnseg.atomic import atomic_dir
        from attnseg.export import export

        with atomic_dir(plan.folder, force=force) as tmp:
            t = time.perf_counter()
            log.info("Exporting %s to OpenVINO IR first ...", model)
            exported = export(model, output_dir=tmp, input_size=size_override, device=device, force=True)
            timings["export_s"] = time.perf_counter() - t
            job.exported_from = str(model)
            result = job.run(tmp / "model.xml", tmp, plan.folder / "model.xml", settings_run)
            del exported
        return result
    xml = _resolve_ir(model)
    if plan.folder == xml.parent and plan.stem == xml.stem:
        raise OutputExistsError(f"The output would overwrite the input {xml}; choose another output name.")
    with _staging(plan, force) as stage:
        return job.run(xml, stage, xml, settings_run)


# ------------------------------------------------------------------------------------ the work


@dataclass
class _Job:
    core: Any
    device: str
    prec: OptimizePrecision
    plan: _Plan
    settings: dict[str, Any]
    timings: dict[str, float]
    quiet: bool
    t_start: float
    cpu_start: float
    exported_from: str | None = None

    def run(self, xml: Path, stage: Path, final_source_xml: Path, s: _Settings) -> OptimizeResult:
        cands, size_override, types, names, gates, preset, fbc = (
            s.cands, s.size_override, s.types, s.names, s.gates, s.preset, s.fbc)
        max_drop, validation, validation_split, metric = s.max_drop, s.validation, s.validation_split, s.metric
        latency_runs, max_iterations, seed, subset_size = s.latency_runs, s.max_iterations, s.seed, s.subset_size
        from attnseg.optimize import nncf_run
        from attnseg.optimize.report import write_reports
        from attnseg.optimize.validation import Scorer, choose_metric, load_validation
        from attnseg.runtime.adapter import OpenVINOAdapter, read_model
        from attnseg.runtime.ports import Port

        t = time.perf_counter()
        source = OpenVINOAdapter(xml, self.device, core=self.core, compile=False)
        fp32, meta = source.model, source.metadata
        src.check_image_model(meta, xml)
        warnings: list[str] = []
        self._check_precision(fp32, meta, xml, warnings)
        size = _model_size(meta, size_override, xml)
        port_dtype = fp32.inputs[0].get_element_type().to_dtype()
        main = next((o for o in fp32.outputs if meta.output in o.get_names()), fp32.outputs[0])
        fmt = InputFormat.of(meta, size, port_dtype, Port.of(main))  # the runtime's codec, at ``size``
        self.timings["load_s"] = time.perf_counter() - t

        vset = scorer = None
        if validation is not None:
            t = time.perf_counter()
            mtr = choose_metric(metric, meta)
            vset = load_validation(validation, meta, fmt, mtr, validation_split)
            scorer = Scorer(vset, fmt.codec, meta.output)
            self.timings["load_validation_s"] = time.perf_counter() - t

        calib = ignored = None
        if self.prec is OptimizePrecision.INT8:
            t = time.perf_counter()
            calib = load_calibration(cands, fmt, subset_size, seed, quiet=self.quiet)
            warnings.extend(calib.warnings)
            if calib.info.used < MIN_RECOMMENDED_CALIBRATION:
                warnings.append(f"Only {calib.info.used} calibration images (at least {MIN_RECOMMENDED_CALIBRATION} "
                                "recommended): the activation ranges may not represent real inputs.")
            if vset is not None:
                shared = set(calib.names) & set(vset.names)
                if shared:
                    warnings.append(f"{len(shared)} calibration images are also validation images: the accuracy "
                                    "figure is optimistic. Calibrate on the train split, validate on val / test.")
            self.timings["load_calibration_s"] = time.perf_counter() - t
        for w in warnings:
            log.warning("%s", w)

        # ---- optimize
        t = time.perf_counter()
        cpu = time.process_time()
        accuracy_control: dict[str, Any] | None = None
        candidate_metrics: dict[str, float] = {}
        if self.prec is OptimizePrecision.FP16:
            optimized = fp32.clone()
        else:
            scope, ignored = nncf_run.build_ignored_scope(fp32, types, names, gates)
            opts = nncf_run.QuantizeOptions(preset=preset, fast_bias_correction=fbc,
                                            target_device=self.settings["target_device"], ignored_scope=scope)
            log.info("Quantizing with NNCF (%d calibration images, preset %s, fast bias correction %s) ...",
                     calib.info.used, preset.value, fbc)
            if max_drop is None:
                optimized = nncf_run.quantize(fp32, calib.items, opts, self.quiet)
            else:
                with tempfile.TemporaryDirectory(prefix="attnseg-acq-") as work:
                    final, full = nncf_run.quantize_with_accuracy_control(
                        fp32, calib.items, len(vset), scorer, max_drop, opts, self.quiet, Path(work), max_iterations)
                    self.timings["quantize_s"] = time.perf_counter() - t
                    self.timings["quantize_cpu_s"] = time.process_time() - cpu
                    t = time.perf_counter()
                    optimized, accuracy_control, candidate_metrics = self._keep_best(
                        final, full, scorer, vset, max_drop)
                    self.timings["select_s"] = time.perf_counter() - t
        self.timings.setdefault("quantize_s", time.perf_counter() - t)
        self.timings.setdefault("quantize_cpu_s", time.process_time() - cpu)

        # ---- save (staged)
        label = output_precision_label(self.prec, max_drop is not None)
        out_meta = self._out_metadata(meta, label, final_source_xml, calib, ignored, preset, fbc, max_drop)
        from attnseg.export.model_api import write_model_info

        write_model_info(optimized, out_meta)  # Model API's view, re-derived for the file that ships
        write_rt_info(optimized, out_meta)
        staged_xml = stage / f"{self.plan.stem}.xml"
        import openvino as ov

        ov.save_model(optimized, str(staged_xml), compress_to_fp16=self.prec is OptimizePrecision.FP16)
        out_meta.write_json(metadata_json_path(staged_xml))
        saved = read_model(self.core, staged_xml)

        # ---- measure
        accuracy = None
        if vset is not None:
            t = time.perf_counter()
            n = len(vset)
            before = scorer(self._compile_reference(fp32), progress(range(n), "Validating the FP32 IR", n, self.quiet))[0]
            after = candidate_metrics.get("kept")
            if after is None:
                after = scorer(self._compile_reference(saved),
                               progress(range(n), f"Validating the {label.upper()} IR", n, self.quiet))[0]
            accuracy = AccuracyFigures(
                metric=vset.metric.value, data=vset.data, count=len(vset), before=before, after=after,
                inference_precision=self._reference_precision(), max_drop=None if max_drop is None else float(max_drop),
                accuracy_control=accuracy_control,
            )
            if max_drop is not None:
                accuracy.met = bool(accuracy.drop <= float(max_drop) + 1e-12)
                if not accuracy.met:
                    warnings.append(
                        f"The accuracy budget was not met: max drop {max_drop:.4f} asked, {accuracy.drop:.4f} reached "
                        f"({vset.metric.value} {before:.4f} -> {after:.4f}); the best model found was kept. Try more "
                        "calibration images, --no-fast-bias-correction, or a larger --max-drop.")
                    log.warning("%s", warnings[-1])
            self.timings["validate_s"] = time.perf_counter() - t
        latency = None
        if latency_runs > 0:
            from attnseg.optimize.latency import measure

            t = time.perf_counter()
            sample = self._latency_sample(calib, vset, fmt)
            models = {"fp32": (fp32, {}, "FP32 IR"), "optimized": (saved, {}, f"{label.upper()} IR")}
            if self._cpu_default_not_f32():
                models["fp32_f32"] = (fp32, {"INFERENCE_PRECISION_HINT": "f32"}, "FP32 IR, f32 forced")
            log.info("Timing the input and the optimized model side by side for the report (%d runs each) ...",
                     latency_runs)
            latency = measure(self.core, models, self.device, sample, latency_runs, LATENCY_WARMUP, quiet=self.quiet)
            self.timings["latency_s"] = time.perf_counter() - t

        size_fig = SizeFigures(before_bytes=_ir_bytes(xml), after_bytes=_ir_bytes(staged_xml))
        self.timings["total_s"] = time.perf_counter() - self.t_start
        self.timings["total_cpu_s"] = time.process_time() - self.cpu_start
        final_xml = self.plan.folder / f"{self.plan.stem}.xml"
        result = OptimizeResult(
            precision=label, source_xml=final_source_xml, output_xml=final_xml,
            output_bin=final_xml.with_suffix(".bin"), metadata_path=metadata_json_path(final_xml),
            report_json=self.plan.folder / f"{self.plan.stem}_report.json",
            report_md=self.plan.folder / f"{self.plan.stem}_report.md",
            settings=dict(self.settings), size=size_fig, exported_from=self.exported_from,
            calibration=calib.info if calib else None, ignored=ignored, accuracy=accuracy, latency=latency,
            quantizers=src.op_types(saved).get("FakeQuantize", 0), timings=self.timings, warnings=warnings,
            versions=_versions(),
        )
        write_reports(result, stage / f"{self.plan.stem}_report.json", stage / f"{self.plan.stem}_report.md")
        return result

    # -------------------------------------------------------------------------------- helpers
    def _check_precision(self, model: Any, meta: ModelMetadata, xml: Path, warnings: list[str]) -> None:
        src.check_not_quantized(model, meta, xml)
        fp16 = meta.precision == "fp16" or src.fp16_weight_constants(model) > 0
        if self.prec is OptimizePrecision.FP16 and fp16:
            raise OptimizationError(f"{xml} already has FP16 weights; nothing to compress.")
        if self.prec is OptimizePrecision.INT8 and fp16:
            warnings.append(f"{xml.name} has FP16 weights; quantizing the FP32 export gives the most accurate INT8 model.")

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
