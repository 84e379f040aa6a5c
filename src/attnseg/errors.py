"""The one error hierarchy for everything a user can cause.

The CLI catches ``AttnsegError``, prints its message without a traceback and exits
non-zero; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AttnsegError(Exception):
    """Base class of every error a user can cause (bad file, bad flag, missing device)."""

    exit_code = 2


class InputFileError(AttnsegError):
    """A file or folder given by the user is missing, unreadable or of the wrong kind."""


class CheckpointError(AttnsegError):
    """A checkpoint cannot be read, is unsafe, or does not fit the requested architecture."""


class ModelConfigError(AttnsegError):
    """Unknown architecture, bad constructor argument or unsupported input size."""


class DataError(AttnsegError):
    """A data set is missing pieces, inconsistent or empty."""


class ExportError(AttnsegError):
    """Export or its parity check failed."""


class DeviceError(AttnsegError):
    """The requested OpenVINO device is not present or rejects the model."""


class OutputExistsError(AttnsegError):
    """The output path exists and overwriting was not asked for."""


class OptimizationError(AttnsegError):
    """Quantization or compression cannot be done as asked."""


class BenchmarkError(AttnsegError):
    """Bad benchmark options or a backend that cannot run."""


def parse_choice(cls, value, what: str, error: type[AttnsegError]):
    """``value`` as a member of the str enum ``cls`` (case-insensitive), or ``error`` listing the choices."""
    if isinstance(value, cls):
        return value
    try:
        return cls(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in cls)
        raise error(f"Unknown {what} {value!r}; choose one of: {choices}.") from None
