"""The runtime's vocabulary and its one compile configuration (stdlib only, no openvino).

``Hint`` is the single performance-hint enum (the runtime, ``seg-infer`` and ``seg-benchmark``
share it); ``compile_config`` is the single place OpenVINO compile properties are assembled;
``cache_folder`` the single place a model-cache folder is created. Nothing here touches the
disk unless a cache folder is asked for: there is no hidden ``./cache``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from attnseg.errors import InvalidOptionError, parse_enum

HINT_ALIASES = {"tput": "throughput", "ctput": "cumulative_throughput"}


class Hint(str, Enum):
    """OpenVINO performance hint: one request fast (latency) or many at once (throughput);
    ``none`` sets no hint (benchmark_app's ``-hint none``, for explicit ``num_streams``)."""

    LATENCY = "latency"
    THROUGHPUT = "throughput"
    CUMULATIVE_THROUGHPUT = "cumulative_throughput"
    NONE = "none"

    @classmethod
    def parse(cls, value: str | Hint) -> Hint:
        return parse_enum(cls, value, "performance hint", HINT_ALIASES)

    @property
    def ov_value(self) -> str | None:
        """The ``PERFORMANCE_HINT`` property value, or None for ``none``."""
        return None if self is Hint.NONE else self.value.upper()


INFERENCE_PRECISIONS = ("auto", "default", "f32", "bf16", "f16")


def precision_config(device: str, inference_precision: str | None) -> dict[str, Any]:
    """``INFERENCE_PRECISION_HINT`` for an explicit choice: ``f32`` / ``bf16`` / ``f16`` that
    precision; ``default`` (or None) and ``auto`` nothing here: ``auto`` is measured when the
    model is compiled (``attnseg.runtime.autotune``), ``default`` is the device's own choice.
    """
    choice = "default" if inference_precision is None else str(inference_precision).strip().lower()
    if choice not in INFERENCE_PRECISIONS:
        raise InvalidOptionError(f"Unknown inference precision {inference_precision!r}; use one of "
                                 f"{', '.join(INFERENCE_PRECISIONS)}.")
    if choice in ("auto", "default"):
        return {}
    return {"INFERENCE_PRECISION_HINT": choice}


def cache_folder(cache_dir: str | Path) -> str:
    """Create the OpenVINO model-cache folder ``cache_dir`` (with parents) and return it as str."""
    from attnseg.atomic import make_folder

    return str(make_folder(cache_dir, "model cache folder"))


def _positive(name: str, value: Any) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(value, bool):
        raise InvalidOptionError(f"{name} must be >= 1, got {value!r}.")
    return n


def compile_config(
    hint: str | Hint | None = Hint.LATENCY,
    *,
    num_streams: int | None = None,
    num_requests: int | None = None,
    cache_dir: str | Path | None = None,
    perf_count: bool | None = None,
    allow_auto_batching: bool | None = None,
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """OpenVINO properties for ``compile_model``; entries in ``config`` win.

    ``num_requests`` is ``PERFORMANCE_HINT_NUM_REQUESTS`` (benchmark_app's ``-nireq``);
    ``cache_dir`` is created (``cache_folder``) and set as ``CACHE_DIR``.
    """
    props: dict[str, Any] = {}
    h = Hint.parse(hint) if hint is not None else Hint.NONE
    if h.ov_value:
        props["PERFORMANCE_HINT"] = h.ov_value
    if num_requests is not None:
        props["PERFORMANCE_HINT_NUM_REQUESTS"] = str(_positive("num_requests", num_requests))
    if num_streams is not None:
        props["NUM_STREAMS"] = str(_positive("num_streams", num_streams))
    if cache_dir is not None:
        props["CACHE_DIR"] = cache_folder(cache_dir)
    if perf_count is not None:
        props["PERF_COUNT"] = bool(perf_count)
    if allow_auto_batching is not None:
        props["ALLOW_AUTO_BATCHING"] = bool(allow_auto_batching)
    props.update(dict(config or {}))
    return props
