"""Moving rarely used keyword arguments into ``Advanced*Parameters`` dataclasses (NNCF style),
with the old keywords still accepted for one release behind a ``DeprecationWarning``."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, TypeVar

A = TypeVar("A")

#: The release that drops the moved keyword arguments.
REMOVED_IN = "0.3"


def merge_moved(function: str, advanced: A | None, cls: type[A], moved: dict[str, Any]) -> A:
    """``advanced`` (or ``cls()``) with the old keyword arguments ``moved`` applied.

    Each moved keyword warns once per call site; a keyword that is not a field of ``cls`` is a
    ``TypeError``, as for any unknown keyword argument.
    """
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(moved) - names)
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    base = advanced if advanced is not None else cls()
    if not moved:
        return base
    for key in sorted(moved):
        warnings.warn(
            f"{function}({key}=...) is deprecated and goes in attnseg {REMOVED_IN}: pass "
            f"advanced={cls.__name__}({key}=...) instead.", DeprecationWarning, stacklevel=3)
    return dataclasses.replace(base, **moved)
