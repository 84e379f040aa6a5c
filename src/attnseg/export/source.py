"""Where the model to export comes from: a checkpoint, a module the user built, or the zoo.

Everything downstream sees one ``ModelSource``: the module in eval mode plus what the
exported model must say about itself (classes, normalization, threshold, provenance).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnseg.errors import AttnsegError, CheckpointError, ModelConfigError
from attnseg.metadata import DEFAULT_INTERPOLATION, Normalization

#: CLI flag -> constructor argument names it may mean, per architecture family.
_FLAG_ARGS = {
    "in_channels": ("img_ch", "n_channels", "bands"),
    "classes": ("output_ch", "n_classes", "num_classes"),
    "base_width": ("base_width",),
    "t": ("t",),
}


@dataclass
class ModelSource:
    """The module to export and the facts the metadata needs."""

    model: Any  # torch.nn.Module, eval mode
    arch: str
    arch_kwargs: dict[str, Any]
    classes: list[str] | None  # None: decided from the number of outputs
    normalization: Normalization
    threshold: float
    input_size: tuple[int, int] | None  # what the checkpoint was trained at
    in_channels: int
    input_divisor: int
    origin: str  # checkpoint path, "zoo:<path>" or "module:<Class>"
    sha256: str = ""
    volumetric: bool = False  # HybridSN-style (N, 1, bands, p, p) patches, not images
    resize_policy: str = "stretch"  # how training fitted images to input_size (checkpoint key)
    input_interpolation: str = DEFAULT_INTERPOLATION  # how training resized images (checkpoint key)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_attention_gates(self) -> bool:
        return bool(getattr(self.model, "has_attention_gates", False)) and hasattr(self.model, "return_attention")


def arch_kwargs_from_flags(arch: str, *, base_width: int | None = None, t: int | None = None,
                           in_channels: int | None = None, classes: int | None = None) -> dict[str, Any]:
    """``--base-width/--t/--in-channels/--classes`` -> the constructor arguments of ``arch``."""
    from attnseg.models import get_model_class

    params = [p for p in inspect.signature(get_model_class(arch).__init__).parameters if p != "self"]
    out: dict[str, Any] = {}
    for flag, value in (("base_width", base_width), ("t", t), ("in_channels", in_channels), ("classes", classes)):
        if value is None:
            continue
        name = next((p for p in _FLAG_ARGS[flag] if p in params), None)
        if name is None:
            raise ModelConfigError(
                f"--{flag.replace('_', '-')} does not apply to {arch}; it takes {', '.join(params)}."
            )
        out[name] = int(value)
    return out


def load_factory(spec: str) -> Any:
    """``module:function`` -> the ``torch.nn.Module`` that calling ``function()`` returns."""
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        raise ModelConfigError(f"--model-factory wants module:function, got {spec!r}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelConfigError(f"Cannot import {module_name!r} for --model-factory: {exc}.") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise ModelConfigError(f"{module_name} has no callable {func_name!r} for --model-factory.")
    try:
        return func()
    except AttnsegError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code: report, do not crash with a traceback
        raise ModelConfigError(f"--model-factory {spec} raised {type(exc).__name__}: {exc}") from None


def resolve_source(checkpoint: str | Path | None = None, *, model: Any = None, arch: str | None = None,
                   arch_kwargs: dict[str, Any] | None = None, classes: Sequence[str] | None = None,
                   normalization: Normalization | dict | None = None,
                   threshold: float | None = None) -> ModelSource:
    """Load or wrap the model to export; explicit arguments override what the file says."""
    import torch

    if checkpoint is not None and model is not None:
        raise ModelConfigError("Give either a checkpoint or model=, not both.")
    if model is not None:
        if not isinstance(model, torch.nn.Module):
            raise ModelConfigError(f"model= must be a torch.nn.Module, got {type(model).__name__}.")
        src = _from_module(model)
    else:
        origin_prefix = ""
        if checkpoint is None:
            checkpoint = _default_checkpoint()
            origin_prefix = "zoo:"
        src = _from_checkpoint(checkpoint, arch, arch_kwargs or {})
        src.origin = origin_prefix + src.origin
    if classes is not None:
        src.classes = [str(c) for c in classes]
    if normalization is not None:
        src.normalization = (
            normalization if isinstance(normalization, Normalization) else Normalization.from_dict(dict(normalization))
        )
    if threshold is not None:
        src.threshold = float(threshold)
    if not 0.0 < src.threshold < 1.0:
        raise ModelConfigError(f"threshold must be between 0 and 1 (exclusive), got {src.threshold}.")
    return src


def _default_checkpoint() -> Path:
    try:
        from attnseg.zoo import default_checkpoint
    except ImportError:
        raise AttnsegError(
            "No model ships with this install yet; give a checkpoint: seg-export CHECKPOINT -o OUT."
        ) from None
    return Path(default_checkpoint())


def _from_checkpoint(path: str | Path, arch: str | None, arch_kwargs: dict[str, Any]) -> ModelSource:
    from attnseg.models import load_checkpoint

    model, info = load_checkpoint(path, arch=arch, **arch_kwargs)
    from attnseg.models import model_capabilities

    caps = model_capabilities(info.arch)
    return ModelSource(
        model=model,
        arch=info.arch,
        arch_kwargs=dict(info.arch_kwargs),
        classes=list(info.classes),
        normalization=info.normalization,
        threshold=info.threshold,
        input_size=tuple(info.input_size) if info.input_size else None,
        in_channels=int(getattr(model, "in_channels", info.in_channels)),
        input_divisor=caps.input_divisor,
        origin=str(Path(path)),
        sha256=info.sha256,
        volumetric=caps.volumetric,
        resize_policy=info.resize_policy,
        input_interpolation=info.input_interpolation,
        extra={"checkpoint_source": info.source, "trained_with": info.trained_with, "metrics": info.metrics},
    )


def _from_module(model: Any) -> ModelSource:
    import torch

    model.eval()
    arch = str(getattr(model, "arch", type(model).__name__))
    in_ch = getattr(model, "in_channels", None)
    if not isinstance(in_ch, int):
        first = next((m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))), None)
        if first is None:
            raise ModelConfigError(
                f"Cannot tell how many input channels {arch} takes (no convolution found); "
                "give the module an integer attribute in_channels."
            )
        in_ch = int(first.in_channels)
    volumetric = getattr(model, "task", "") == "pixel_classification"  # declared by the class
    divisor = getattr(model, "input_divisor", None)
    return ModelSource(
        model=model,
        arch=arch,
        arch_kwargs=dict(getattr(model, "arch_kwargs", {}) or {}),
        classes=None,
        normalization=Normalization(),
        threshold=0.5,
        input_size=None,
        in_channels=int(in_ch),
        input_divisor=int(divisor) if isinstance(divisor, int) and divisor > 0 else 16,
        origin=f"module:{type(model).__module__}.{type(model).__qualname__}",
        volumetric=volumetric,
        extra={"checkpoint_source": "python-module"},
    )


def check_classes(src: ModelSource, num_outputs: int) -> list[str]:
    """The class names for a model with ``num_outputs`` output channels (binary: 1 logit)."""
    from attnseg.models.checkpoint import default_classes

    if src.classes is None:
        return default_classes(num_outputs)
    if len(src.classes) != num_outputs:
        raise CheckpointError(
            f"{len(src.classes)} class names ({', '.join(src.classes[:5])}) for a model with "
            f"{num_outputs} output channel(s); a binary model has one class name."
        )
    return list(src.classes)
