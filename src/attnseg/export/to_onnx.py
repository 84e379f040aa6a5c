"""PyTorch -> ONNX with the ``torch.export``-based exporter (``dynamo=True``).

Why this exporter: it is the default and the maintained path since PyTorch 2.9 (the TorchScript
exporter warns that it is deprecated), writes opset 18 graphs with BatchNorm folded and no
leftover ``Identity``/``Constant`` nodes for these models, and expresses "height divisible by
16" as a real shape constraint (``16 * Dim("h")``) for ``--dynamic``. Modules that
``torch.export`` cannot capture (data-dependent Python control flow in a user's model) fall
back to the TorchScript exporter at opset 17; the report records which one ran.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnseg.errors import ExportError
from attnseg.export.options import OPSET

log = logging.getLogger(__name__)
LEGACY_OPSET = 17


def wrap_for_export(model: Any, attention: bool) -> Any:
    """A module returning ``logits`` or ``(logits, *attention maps)`` whatever ``model`` returns.

    Dict outputs (torchvision style ``{"out": ...}``) and tuples are reduced to their logits.
    """
    import torch

    class ExportWrapper(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module, with_attention: bool):
            super().__init__()
            self.inner = inner
            self.with_attention = with_attention

        def forward(self, x):
            out = self.inner(x)
            if isinstance(out, dict):
                out = out["out"] if "out" in out else next(iter(out.values()))
            if isinstance(out, (tuple, list)):
                return tuple(out) if self.with_attention else out[0]
            return out

    return ExportWrapper(model, attention).eval()


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs every skipped torchvision op and warns about internals: not for users."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "torch.fx", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(module: Any, example: Any, path: Path, output_names: Sequence[str], *,
                dynamic: bool = False, divisor: int = 16, spatial: bool = True) -> dict[str, Any]:
    """Write ``module`` to ``path`` as one self-contained ONNX file; returns what happened.

    ``dynamic`` makes batch (and, for images, height and width as multiples of ``divisor``)
    dynamic. Raises ``ExportError`` if neither exporter manages.
    """
    import torch

    t0 = time.perf_counter()
    dyn_error = None
    chatter = io.StringIO()  # torch.export prints the partial graph when it fails
    try:
        with _quiet_exporter(), contextlib.redirect_stderr(chatter), contextlib.redirect_stdout(chatter):
            program = torch.onnx.export(
                module, (example,), dynamo=True, verbose=False, optimize=True, opset_version=OPSET,
                input_names=["image"], output_names=list(output_names),
                dynamic_shapes=_dynamic_shapes(example, divisor, spatial) if dynamic else None,
            )
            program.save(str(path), external_data=False)
        exporter = "torch.onnx.export(dynamo=True)"
    except ExportError:
        raise
    except Exception as exc:  # noqa: BLE001 - torch.export could not capture the module: try TorchScript
        dyn_error = _root_cause(exc)
        log.debug("torch.export output:\n%s", chatter.getvalue())
        log.warning("torch.export cannot capture this model (%s); falling back to the TorchScript exporter",
                    dyn_error)
        path.unlink(missing_ok=True)
        exporter = _export_legacy(module, example, path, output_names, dynamic, spatial)
    info = check_onnx(path)
    info.update(exporter=exporter, seconds=time.perf_counter() - t0)
    if dyn_error:
        info["dynamo_error"] = dyn_error
    return info


def _root_cause(exc: BaseException) -> str:
    """``Type: first line`` of the innermost cause, without terminal colour codes."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {line[:200]}"


def _dynamic_shapes(example: Any, divisor: int, spatial: bool) -> dict[str, Any]:
    from torch.export import Dim

    dims: dict[int, Any] = {0: Dim("batch", min=1, max=1024)}
    if spatial and example.dim() == 4:
        if divisor > 1:
            dims[2] = divisor * Dim("h", min=1, max=8192 // divisor)
            dims[3] = divisor * Dim("w", min=1, max=8192 // divisor)
        else:
            dims[2], dims[3] = Dim("h", min=1, max=8192), Dim("w", min=1, max=8192)
    return {"x": dims}


def _export_legacy(module: Any, example: Any, path: Path, output_names: Sequence[str],
                   dynamic: bool, spatial: bool) -> str:
    import torch

    axes = None
    if dynamic:
        in_axes = {0: "batch", 2: "height", 3: "width"} if spatial and example.dim() == 4 else {0: "batch"}
        axes = {"image": in_axes, **{n: {0: "batch"} for n in output_names}}
    try:
        with _quiet_exporter():
            torch.onnx.export(
                module, (example,), str(path), dynamo=False, opset_version=LEGACY_OPSET,
                input_names=["image"], output_names=list(output_names), dynamic_axes=axes,
            )
    except Exception as exc:  # noqa: BLE001 - the last exporter: report why, without a traceback
        path.unlink(missing_ok=True)
        raise ExportError(
            f"Neither ONNX exporter can convert this model: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300] if str(exc) else ''}"
        ) from None
    return "torch.onnx.export(dynamo=False)"


def check_onnx(path: Path) -> dict[str, Any]:
    """Validate the ONNX file and describe it: opset, inputs, outputs, node count."""
    import onnx

    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"The exported ONNX graph is invalid: {str(exc).splitlines()[0]}") from None
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < 17:
        raise ExportError(f"The exported ONNX graph uses opset {opset}; attnseg needs >= 17.")

    def shape(v):
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    return {
        "opset": opset,
        "inputs": {v.name: shape(v) for v in proto.graph.input},
        "outputs": {v.name: shape(v) for v in proto.graph.output},
        "nodes": len(proto.graph.node),
    }


def write_onnx_metadata(path: Path, props: dict[str, str]) -> None:
    """Set ``metadata_props`` (key -> string) in the ONNX file at ``path``, replacing same keys.

    ONNX Runtime exposes them as ``session.get_modelmeta().custom_metadata_map``."""
    import onnx

    proto = onnx.load(str(path))
    kept = [p for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))
