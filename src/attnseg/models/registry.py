"""A decorator registry: ``@register_model`` on a class, ``create_model(name, **kw)``."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, TypeVar

from attnseg.errors import ModelConfigError

_REGISTRY: dict[str, type] = {}
T = TypeVar("T", bound=type)


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


def create_model(name: str, **kwargs: Any):
    """Build the architecture ``name`` with constructor arguments ``kwargs``."""
    cls = get_model_class(name)
    accepted = _constructor_args(cls)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ModelConfigError(
            f"{name} does not take {', '.join(unknown)}; it takes {', '.join(accepted)}."
        )
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
