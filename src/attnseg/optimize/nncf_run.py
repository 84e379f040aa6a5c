"""The calls into NNCF: plain post-training quantization, accuracy-controlled quantization,
the ignored scope (including the attention gates), and keeping NNCF's console output off
stdout (``--json`` prints there). nncf is imported inside the functions: importing
``attnseg.optimize`` stays cheap.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.errors import OptimizationError
from attnseg.optimize.options import Preset
from attnseg.optimize.result import IgnoredInfo

log = logging.getLogger(__name__)

_TARGET_DEVICES = {"CPU": "CPU", "GPU": "GPU", "NPU": "NPU"}


@contextlib.contextmanager
def nncf_console(quiet: bool) -> Iterator[Any]:
    """Import nncf with its log handler and progress bars on stderr (or silenced when quiet)."""
    sink = io.StringIO() if quiet else sys.stderr
    with contextlib.redirect_stdout(sink):
        import nncf
        from nncf.common.logging.logger import nncf_logger

        for h in nncf_logger.handlers:
            if isinstance(h, logging.StreamHandler) and h.stream in (sys.__stdout__, sys.stdout):
                h.setStream(sys.stderr)
        previous = nncf_logger.level
        nncf_logger.setLevel(logging.ERROR if quiet else logging.WARNING)
        try:
            yield nncf
        finally:
            nncf_logger.setLevel(previous)


def gate_nodes(model: Any) -> list[str]:
    """Friendly names of the attention gates' Sigmoid nodes and the Multiply nodes they feed
    (``x * psi``), found by structure, so the scope works whatever the exporter named them."""
    names: list[str] = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Sigmoid":
            continue
        muls = [ti.get_node() for ti in op.output(0).get_target_inputs()
                if ti.get_node().get_type_name() == "Multiply"]
        if muls:
            names.append(op.get_friendly_name())
            names.extend(m.get_friendly_name() for m in muls)
    return names


def build_ignored_scope(model: Any, types: list[str], names: list[str], gates: bool) -> tuple[Any, IgnoredInfo]:
    """An ``nncf.IgnoredScope`` (or None) and what it matched; unknown names and types are errors
    that list what the model has."""
    import nncf

    ops = list(model.get_ordered_ops())
    present_types = sorted({op.get_type_name() for op in ops})
    all_names = [op.get_friendly_name() for op in ops]
    bad_types = [t for t in types if t not in present_types]
    if bad_types:
        raise OptimizationError(f"--ignore-types {', '.join(bad_types)} matches no operation; the model has: "
                                f"{', '.join(t for t in present_types if t not in ('Constant', 'Parameter', 'Result'))}.")
    known = set(all_names)
    for n in names:
        if n not in known:
            close = difflib.get_close_matches(n, all_names, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise OptimizationError(f"--ignore-names {n!r} is not a node of the model.{hint}")
    gate_names = gate_nodes(model) if gates else []
    if gates and not gate_names:
        log.info("No attention gates (Sigmoid feeding Multiply) in the model: nothing to ignore for them.")
    all_ignored = list(dict.fromkeys([*names, *gate_names]))
    matched = [op.get_friendly_name() for op in ops if op.get_type_name() in types or op.get_friendly_name()
               in set(all_ignored)]
    info = IgnoredInfo(types=list(types), names=list(names), gates=bool(gates), nodes=matched)
    if not types and not all_ignored:
        return None, info
    return nncf.IgnoredScope(names=all_ignored, types=list(types), validate=False), info


@dataclass
class QuantizeOptions:
    preset: Preset
    fast_bias_correction: bool
    target_device: str
    ignored_scope: Any  # nncf.IgnoredScope | None


def target_device(device: str) -> str:
    """NNCF target device for an OpenVINO device name (virtual devices -> ANY)."""
    return _TARGET_DEVICES.get(device.split(".")[0].upper(), "ANY")


def _kwargs(nncf: Any, opts: QuantizeOptions) -> dict[str, Any]:
    return {
        "preset": nncf.QuantizationPreset.MIXED if opts.preset is Preset.MIXED else nncf.QuantizationPreset.PERFORMANCE,
        "target_device": getattr(nncf.TargetDevice, opts.target_device),
        "fast_bias_correction": bool(opts.fast_bias_correction),
        "ignored_scope": opts.ignored_scope,
    }


def _wrap(exc: Exception, what: str) -> OptimizationError:
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return OptimizationError(f"NNCF {what} failed: {type(exc).__name__}: {first[:300]}")


def quantize(model: Any, items: list[np.ndarray], opts: QuantizeOptions, quiet: bool) -> Any:
    """``nncf.quantize`` on a copy of ``model`` with every calibration item."""
    with nncf_console(quiet) as nncf:
        try:
            return nncf.quantize(model.clone(), nncf.Dataset(items), subset_size=len(items), **_kwargs(nncf, opts))
        except (RuntimeError, ValueError, nncf.ValidationError, nncf.InternalError) as exc:
            raise _wrap(exc, "quantization") from exc


def quantize_with_accuracy_control(
    model: Any,
    items: list[np.ndarray],
    validation_count: int,
    validation_fn: Callable[[Any, Any], tuple[float, list[float]]],
    max_drop: float,
    opts: QuantizeOptions,
    quiet: bool,
    work_dir: Path,
    max_iterations: int | None,
) -> tuple[Any, Any]:
    """``nncf.quantize_with_accuracy_control``: (accuracy-controlled model, fully quantized model).

    Validation items are indices into the validation set (``validation_fn`` scores them with
    the project's metric); the fully quantized model is kept so the caller can keep the best
    of the two when the budget cannot be met.
    """
    with nncf_console(quiet) as nncf:
        from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

        restorer = AdvancedAccuracyRestorerParameters(intermediate_model_dir=str(work_dir))
        if max_iterations is not None:
            restorer.max_num_iterations = max(1, int(max_iterations))
        try:
            final = nncf.quantize_with_accuracy_control(
                model.clone(), nncf.Dataset(items), nncf.Dataset(list(range(validation_count))), validation_fn,
                max_drop=float(max_drop), drop_type=nncf.DropType.ABSOLUTE, subset_size=len(items),
                advanced_accuracy_restorer_parameters=restorer, **_kwargs(nncf, opts),
            )
        except (RuntimeError, ValueError, nncf.ValidationError, nncf.InternalError) as exc:
            raise _wrap(exc, "accuracy-controlled quantization") from exc
        full_xml = work_dir / "intermediate_model.xml"
        import openvino as ov

        full = ov.Core().read_model(str(full_xml)) if full_xml.is_file() else None
    return final, full
