"""The one error hierarchy for everything a user can cause.

The CLI catches ``AttnsegError``, prints its message without a traceback and exits with
``exit_code``; a server answers with ``http_status``. Anything else is a bug and keeps its
traceback. Errors are classed by cause (a bad option, a bad file, a missing device), not by
the module that noticed them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar


class AttnsegError(Exception):
    """Base class of every error a user can cause (bad file, bad flag, missing device)."""

    exit_code = 2
    http_status = 400


class InvalidOptionError(AttnsegError, ValueError):
    """An option (argument, flag, enum choice, number out of range) has a value that is not allowed."""

    http_status = 400


class InputFileError(AttnsegError):
    """A file or folder given by the user is missing, unreadable or of the wrong kind."""

    http_status = 400


class MetadataError(InputFileError):
    """A model's or checkpoint's description is invalid; the message lists every bad field."""

    http_status = 422


class CheckpointError(AttnsegError):
    """A checkpoint cannot be read, is unsafe, or does not fit the requested architecture."""

    http_status = 422


class ModelConfigError(AttnsegError):
    """Unknown architecture, bad constructor argument or unsupported input size."""

    http_status = 422


class DataError(AttnsegError):
    """A data set is missing pieces, inconsistent or empty."""

    http_status = 422


class ExportError(AttnsegError):
    """Export or its parity check failed."""

    http_status = 500


class DeviceError(AttnsegError):
    """The requested OpenVINO device is not present or rejects the model."""

    http_status = 503


class OutputExistsError(AttnsegError):
    """The output path exists and overwriting was not asked for."""

    http_status = 409


class OptimizationError(AttnsegError):
    """Quantization or compression cannot be done as asked."""

    http_status = 422


class BenchmarkError(AttnsegError):
    """Bad benchmark options or a backend that cannot run."""

    http_status = 400


E = TypeVar("E", bound=Enum)


def parse_enum(cls: type[E], value: Any, what: str, aliases: dict[str, str] | None = None) -> E:
    """``value`` as a member of the str enum ``cls`` (case-insensitive, ``-`` = ``_``), or an
    ``InvalidOptionError`` listing the choices. ``aliases`` maps extra spellings to values."""
    if isinstance(value, cls):
        return value
    text = str(getattr(value, "value", value)).strip().lower()
    text = (aliases or {}).get(text, text)
    for candidate in (text, text.replace("-", "_")):
        try:
            return cls(candidate)
        except ValueError:
            continue
    choices = ", ".join(str(m.value) for m in cls)
    raise InvalidOptionError(f"Unknown {what} {value!r}; choose one of: {choices}.") from None


def short_message(exc: BaseException | str, limit: int = 300) -> str:
    """The reason in an exception's text, on one line.

    OpenVINO's messages start with C++ locations (``Exception from src/...cpp:84:``,
    ``Check '...' failed at ...``) and end with the reason; those location lines are dropped
    and the last remaining line that is not a heading (ending in ``:``) is kept.
    """
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from", "Check '")) and not ln.endswith(".cpp")]
    reasons = [ln for ln in useful if not ln.endswith(":")] or useful or lines
    if not reasons:
        return type(exc).__name__ if isinstance(exc, BaseException) else ""
    return reasons[-1][:limit]
