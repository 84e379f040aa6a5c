"""The runtime's vocabulary, its one options object and its one compile configuration
(stdlib only, no openvino).

``RuntimeOptions`` is the single declaration of how a front end runs an exported model (device,
hint, streams, requests, cache, precision, resize policy, config file, TTA): ``Segmenter``,
seg-serve, the Ray workers and every ``seg-*`` command hold one, and the commands' flags are
generated from its fields (``attnseg.cli.common.add_dataclass_flags``), so each flag has one
spelling, one default and one vocabulary. ``Hint`` is the single performance-hint enum;
``compile_config`` is the single place OpenVINO compile properties are assembled;
``cache_folder`` the single place a model-cache folder is created. Nothing here touches the
disk unless a cache folder is asked for: there is no hidden ``./cache``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from attnseg.errors import InvalidOptionError, parse_enum
from attnseg.metadata import RESIZE_POLICIES

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


class TTA(str, Enum):
    """Test-time augmentation. ``none``: one pass; ``flip``: the image and its left-right mirror
    (2 passes); ``flip4``: also upside down and both (4 passes)."""

    NONE = "none"
    FLIP = "flip"
    FLIP4 = "flip4"

    @classmethod
    def parse(cls, value: str | TTA | None) -> TTA:
        return cls.NONE if value is None else parse_enum(cls, value, "test-time augmentation (tta)")


def cli_field(default: Any, help: str, *aliases: str, deprecated: tuple[str, ...] = (), **argparse_kw: Any) -> Any:
    """A field with its command-line form: ``--<name>`` plus ``aliases``; ``deprecated`` spellings
    still parse for one release and warn."""
    return field(default=default, metadata={"help": help, "aliases": aliases, "deprecated": deprecated,
                                            "argparse": argparse_kw})


@dataclass(frozen=True)
class RuntimeOptions:
    """How an exported model is compiled and run; the one declaration every front end holds.

    ``hint`` None lets the front end decide: the tuned ``MODEL.load_config.json``'s hint, else
    latency (``Segmenter``); throughput for seg-serve; by input kind for seg-infer.
    ``config_file``: OpenVINO properties in benchmark_app's ``-load_config`` JSON layout
    (``{"CPU": {"NUM_STREAMS": "2"}}``); its section for ``device`` applies over the tuned file.
    """

    device: str = cli_field("CPU", "OpenVINO device: CPU, GPU, NPU, AUTO, HETERO:GPU,CPU, MULTI:GPU,CPU", "-d")
    hint: Hint | None = cli_field(None, "performance hint: latency (one request fast) or throughput (many at once); "
                                    "default: the command's choice (see its description)",
                              choices=(*(h.value for h in Hint), *HINT_ALIASES))
    num_streams: int | None = cli_field(None, "OpenVINO streams (default: the hint decides)", type=int, metavar="N")
    num_requests: int | None = cli_field(None, "infer requests in flight (PERFORMANCE_HINT_NUM_REQUESTS; default: "
                                           "the device's optimum)", type=int, metavar="N")
    cache_dir: str | None = cli_field(None, "OpenVINO model cache folder (faster start-up, above all on GPU/NPU)",
                                  metavar="DIR")
    inference_precision: str = cli_field(
        "auto", "compute precision: auto (the faster of f32 and bf16 for this model on this device, measured once "
                "and cached; the tuned MODEL.load_config.json if present), default (the device's own), f32, bf16, f16",
        deprecated=("--infer-precision", "-infer_precision"), choices=INFERENCE_PRECISIONS)
    resize_policy: str | None = cli_field(None, "how images are fitted to the model input: stretch, or letterbox (keep the "
                                            "aspect ratio, pad); default: the model's own, from its metadata",
                                      choices=RESIZE_POLICIES)
    config_file: str | None = cli_field(None, "JSON of OpenVINO properties per device (benchmark_app -load_config "
                                          "layout); applies over the tuned file beside the IR", metavar="FILE")
    tta: TTA = cli_field(TTA.NONE, "test-time augmentation: flip also runs each image mirrored and averages the "
                               "two passes' probabilities (twice the inference); flip4 also upside down "
                               "and both (four times)", choices=tuple(t.value for t in TTA))

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if not isinstance(self.device, str) or not self.device.strip():
            raise InvalidOptionError(f"device must name an OpenVINO device (CPU, GPU, NPU, AUTO...), got {self.device!r}.")
        put("device", self.device.strip())
        put("hint", None if self.hint is None else Hint.parse(self.hint))
        for name in ("num_streams", "num_requests"):
            value = getattr(self, name)
            put(name, None if value is None else _positive(name, value))
        for name in ("cache_dir", "config_file"):
            value = getattr(self, name)
            put(name, None if value is None else str(value))
        precision = str(self.inference_precision or "default").strip().lower()
        if precision not in INFERENCE_PRECISIONS:
            raise InvalidOptionError(f"Unknown inference precision {self.inference_precision!r}; use one of "
                                     f"{', '.join(INFERENCE_PRECISIONS)}.")
        put("inference_precision", precision)
        if self.resize_policy is not None:
            policy = str(getattr(self.resize_policy, "value", self.resize_policy)).strip().lower()
            if policy not in RESIZE_POLICIES:
                raise InvalidOptionError(f"Unknown resize policy {self.resize_policy!r}; choose one of: "
                                         f"{', '.join(RESIZE_POLICIES)}.")
            put("resize_policy", policy)
        put("tta", TTA.parse(self.tta))

    def to_dict(self) -> dict[str, Any]:
        """Plain values (enums as their strings), for reports and JSON."""
        return {k: getattr(v, "value", v) for k, v in asdict(self).items()}


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
