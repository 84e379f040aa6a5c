"""Benchmark options with benchmark_app's names, defaults and rules (stdlib only).

The defaults are resolved exactly as benchmark_app resolves them, so the same flags mean
the same run in both tools: no ``-api`` means sync for ``-hint latency`` and async
otherwise; no ``-hint`` means latency for sync and throughput for async; neither ``-t``
nor ``-niter`` means 60 s on CPU/GPU/NPU (120 s elsewhere); async iteration counts are
rounded up to a multiple of the number of infer requests.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError, InvalidOptionError, parse_enum
from attnseg.runtime.options import HINT_ALIASES, Hint


class Api(str, Enum):
    """Synchronous (one request, back to back) or asynchronous (a queue of requests)."""

    SYNC = "sync"
    ASYNC = "async"

    @classmethod
    def parse(cls, value: str | Api) -> Api:
        return parse_enum(cls, value, "-api")


class ReportType(str, Enum):
    """benchmark_app's ``-report_type``: per-layer counters are collected for the last two."""

    NO_COUNTERS = "no_counters"
    AVERAGE_COUNTERS = "average_counters"
    DETAILED_COUNTERS = "detailed_counters"


DEFAULT_DURATION_S = {"CPU": 60, "GPU": 60, "NPU": 60}
UNKNOWN_DEVICE_DURATION_S = 120
_SHAPE_RE = re.compile(r"([^\[\],]*)\[([^\]]*)\]")


def default_duration_s(device: str) -> int:
    """benchmark_app's default run time when neither -t nor -niter is given."""
    found = [s for name, s in DEFAULT_DURATION_S.items() if name in device.upper()]
    return max(found) if found else UNKNOWN_DEVICE_DURATION_S


def parse_shape(text: str) -> dict[str, str]:
    """``-shape``: ``[1,3,256,256]``, ``x[1,3,256,256]`` or ``a[..],b[..]`` -> {name: "[dims]"}.

    The empty name means "every input". Dims may be ints, ``?``/``-1`` or ranges ``lo..hi``.
    """
    text = text.strip()
    if not text:
        raise InvalidOptionError("-shape is empty; give e.g. -shape [1,3,256,256].")
    if "[" not in text:
        text = f"[{text}]"
    shapes: dict[str, str] = {}
    pos = 0
    for m in _SHAPE_RE.finditer(text):
        if text[pos:m.start()].strip(", ") != "":
            break
        dims = [d.strip() for d in m.group(2).split(",")]
        if not dims or not all(re.fullmatch(r"\d+|\?|-1|\d*\.\.\d*", d) for d in dims):
            raise InvalidOptionError(f"-shape {text!r}: bad dimension list [{m.group(2)}]; use e.g. [1,3,256,256].")
        shapes[m.group(1).strip()] = "[" + ",".join(dims) + "]"
        pos = m.end()
    if not shapes or text[pos:].strip(", ") != "":
        raise InvalidOptionError(f"-shape {text!r} is not understood; use [1,3,256,256] or name[1,3,256,256].")
    return shapes


@dataclass
class BenchmarkConfig:
    """What to run; ``resolved()`` fills the defaults as benchmark_app would and checks them."""

    model_path: str
    device: str = "CPU"
    hint: Hint | None = None
    api: Api | None = None
    duration_s: float | None = None
    niter: int | None = None
    nstreams: int | None = None
    nireq: int | None = None
    batch: int | None = None
    shape: str | None = None
    infer_precision: str | None = None
    cache_dir: str | None = None
    report_type: ReportType = ReportType.NO_COUNTERS
    config_file: str | None = None  # benchmark_app -load_config: OpenVINO properties per device
    resize_policy: str | None = None  # end-to-end timing only (RuntimeOptions.resize_policy)
    tta: str = "none"  # end-to-end timing only (RuntimeOptions.tta)

    def resolved(self) -> BenchmarkConfig:
        cfg = replace(self, model_path=str(self.model_path))
        path = Path(cfg.model_path)
        if not path.exists():
            raise InputFileError(f"Model {path} does not exist; give the path of an .xml (with its .bin) or .onnx.")
        if path.is_dir():
            raise InputFileError(f"{path} is a folder; give the path of the model .xml or .onnx inside it.")
        if path.suffix.lower() not in (".xml", ".onnx"):
            raise InputFileError(f"{path} is not an OpenVINO IR (.xml) or ONNX (.onnx) model.")
        if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").exists():
            raise InputFileError(f"{path.with_suffix('.bin')} (the weights of {path.name}) is missing.")
        if not cfg.device or not cfg.device.strip():
            raise InvalidOptionError("-d is empty; name a device such as CPU, GPU or NPU.")
        cfg.device = cfg.device.strip().upper()
        hint = parse_enum(Hint, cfg.hint, "-hint", HINT_ALIASES) if cfg.hint is not None else None
        api = Api.parse(cfg.api) if cfg.api is not None else None
        cfg.report_type = ReportType(cfg.report_type)
        if cfg.nstreams is not None:
            if hint is None:
                hint = Hint.NONE  # benchmark_app requires -hint none with -nstreams; imply it
            elif hint is not Hint.NONE:
                raise InvalidOptionError(
                    f"-nstreams is a fine-tuning option that -hint {hint.value} would override; "
                    "use -hint none with -nstreams."
                )
            if int(cfg.nstreams) < 1:
                raise InvalidOptionError("-nstreams must be at least 1.")
        if api is None:
            api = Api.SYNC if hint is Hint.LATENCY else Api.ASYNC
        if hint is None:
            hint = Hint.LATENCY if api is Api.SYNC else Hint.THROUGHPUT
        cfg.hint, cfg.api = hint, api
        if cfg.niter is not None and int(cfg.niter) < 1:
            raise InvalidOptionError("-niter must be at least 1.")
        if cfg.duration_s is not None and float(cfg.duration_s) <= 0:
            raise InvalidOptionError("-t must be a positive number of seconds.")
        if cfg.nireq is not None:
            if int(cfg.nireq) < 1:
                raise InvalidOptionError("-nireq must be at least 1.")
            if api is Api.SYNC and int(cfg.nireq) > 1:
                raise InvalidOptionError("-nireq applies to -api async only (sync uses one request).")
        if cfg.batch is not None and int(cfg.batch) < 1:
            raise InvalidOptionError("-b must be at least 1.")
        if cfg.shape:
            parse_shape(cfg.shape)
        if cfg.cache_dir is not None and Path(cfg.cache_dir).exists() and not Path(cfg.cache_dir).is_dir():
            raise InputFileError(f"-cdir {cfg.cache_dir} exists and is not a folder.")
        return cfg

    @property
    def limit_description(self) -> str:
        parts = []
        if self.niter:
            parts.append(f"{self.niter} iterations")
        if self.duration_s:
            parts.append(f"{self.duration_s:g} s")
        return ", ".join(parts) or f"{default_duration_s(self.device)} s"

    def benchmark_app_args(self, report_folder: str | None = None, json_stats: bool = False) -> list[tuple[str, str]]:
        """The benchmark_app command line for the same run, as (flag, value) pairs."""
        args: list[tuple[str, str]] = [("-m", str(self.model_path)), ("-d", self.device)]
        if self.hint is not None:
            args.append(("-hint", Hint.parse(self.hint).value))
        if self.api is not None:
            args.append(("-api", Api.parse(self.api).value))
        if self.niter is not None:
            args.append(("-niter", str(int(self.niter))))
        if self.duration_s is not None:
            args.append(("-t", f"{self.duration_s:g}"))
        for flag, value in (("-nstreams", self.nstreams), ("-nireq", self.nireq), ("-b", self.batch),
                            ("-shape", self.shape), ("-infer_precision", self.infer_precision),
                            ("-cdir", self.cache_dir), ("-load_config", self.config_file)):
            if value is not None and value != "":
                args.append((flag, str(value)))
        if report_folder is not None:
            args.append(("-report_type", ReportType(self.report_type).value))
            args.append(("-report_folder", str(report_folder)))
            if json_stats:
                args.append(("-json_stats", ""))
        return args

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("hint", "api", "report_type", "tta"):
            if d[key] is not None:
                d[key] = getattr(d[key], "value", d[key])
        return d
