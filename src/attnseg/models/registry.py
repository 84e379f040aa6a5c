"""A decorator registry: ``@register_model`` on a class, ``create_model(name, **kw)``, and the
capabilities each architecture declares (``ModelCapabilities``), so code asks the class
instead of testing its name."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

from attnseg.errors import ModelConfigError
from attnseg.metadata import Normalization

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)


@dataclass(frozen=True)
class ModelCapabilities:
    """What an architecture supports, declared once on its class (``capabilities = ...``).

    ``task``: ``segmentation`` (images -> per-pixel logits) or ``pixel_classification``
    (hyperspectral patch cubes -> one label); ``input_divisor``: height and width must be
    multiples of it; ``default_size``: (H, W) it is trained at unless told otherwise (the patch
    for pixel classifiers); ``channels_arg`` / ``classes_arg``: the constructor arguments that
    ``create_model``'s common ``in_channels`` / ``num_classes`` map to.
    """

    task: str = "segmentation"
    input_divisor: int = 16
    default_size: tuple[int, int] = (256, 256)
    normalization: Normalization = field(default_factory=Normalization)
    channels_arg: str = "img_ch"
    classes_arg: str = "output_ch"

    @property
    def volumetric(self) -> bool:
        """Takes (N, 1, bands, patch, patch) cubes rather than images (HybridSN)."""
        return self.task == "pixel_classification"


def model_capabilities(arch: str | type | Any) -> ModelCapabilities:
    """The capabilities of a registered architecture (by name), a model class or instance."""
    cls = get_model_class(arch) if isinstance(arch, str) else (arch if isinstance(arch, type) else type(arch))
    return getattr(cls, "capabilities", None) or ModelCapabilities(task=getattr(cls, "task", "segmentation"))


def register_model(cls: T) -> T:
    """Register a model class under its class name (the name users type)."""
    _REGISTRY[cls.__name__] = cls
    return cls


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type:
    """The class registered as ``name``; a clear error with close matches otherwise."""
    _ensure_loaded()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelConfigError(
            f"Unknown architecture {name!r}.{hint} Known: {', '.join(sorted(_REGISTRY))}."
        )
    return _REGISTRY[name]


def create_model(name: str, *, in_channels: int | None = None, num_classes: int | None = None, **kwargs: Any):
    """Build the architecture ``name`` with constructor arguments ``kwargs``.

    ``in_channels`` / ``num_classes`` are the common names for every architecture's own
    (``img_ch`` / ``output_ch``, ``n_channels`` / ``n_classes``, ``bands`` / ``num_classes``).
    """
    cls = get_model_class(name)
    caps = model_capabilities(cls)
    for common, own, value in (("in_channels", caps.channels_arg, in_channels),
                               ("num_classes", caps.classes_arg, num_classes)):
        if value is None:
            continue
        if own in kwargs and own != common and kwargs[own] != value:
            raise ModelConfigError(f"{name}: {common}={value} contradicts {own}={kwargs[own]}; give one of them.")
        kwargs[own] = value
    accepted = _constructor_args(cls)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ModelConfigError(
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(accepted)}."
        )
    # widths, channels, classes, recurrences (``t``): a count below 1 would build a broken model
    # (``t=-1`` runs no recurrence at all) and be recorded as if it were meant
    bad = [f"{k}={v}" for k, v in kwargs.items() if isinstance(v, int) and not isinstance(v, bool) and v < 1]
    if bad:
        raise ModelConfigError(f"{name}: {', '.join(bad)} must be a positive integer (--t, --base-width, "
                               "--in-channels and --classes count something).")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ModelConfigError(f"Cannot build {name} with {kwargs}: {exc}") from exc


def _constructor_args(cls: Callable) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [p for p in params if p != "self"]


def _ensure_loaded() -> None:
    # Importing the architecture modules runs their @register_model decorators.
    from attnseg.models import hybridsn, se_unet, unet  # noqa: F401
