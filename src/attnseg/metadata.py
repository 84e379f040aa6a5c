"""The exported-model contract: one typed, validated description every IR carries (stdlib only).

Export writes it into the IR's ``rt_info`` under the key ``attnseg`` and as JSON beside the
``.xml``; the runtime reads it back through ``ModelMetadata.from_dict`` and needs nothing else.
Each field is declared once below with its type, bounds, choices and default (``spec``).
Reading validates every field and the fields against each other, and reports every problem
in one ``MetadataError`` naming the fields; a newer ``schema_version`` is refused; keys this
version does not know are kept and written back unchanged. Schema 1 kept several fields inside
``extra``; they are moved to their own fields on read, so IRs exported by attnseg 0.1 load.

This module imports nothing heavy, so ``export``, ``optimize``, ``models`` and ``runtime`` share it.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError, InvalidOptionError, MetadataError

RT_INFO_KEY = "attnseg"
#: 2: ``extra``'s input_divisor, input_color, output_spec, ... promoted to fields; resize_policy.
SCHEMA_VERSION = 2

TASKS = ("binary", "multiclass", "pixel_classification")
OUTPUT_KINDS = ("logits", "probabilities", "mask")
CHANNEL_ORDERS = ("RGB", "BGR", "GRAY")
LAYOUTS = ("NCHW", "NHWC", "NCDHW")
INPUT_DTYPES = ("u8", "f32", "f16")
PRECISIONS = ("fp32", "fp16", "int8", "int8_acq")
#: How images are fitted to a static model input (``attnseg.resize_policy.ResizePolicy``);
#: models exported before the field existed were trained with ``stretch``.
RESIZE_POLICIES = ("stretch", "letterbox")
#: How images are resized to the model input (``attnseg.imaging.resize_image``, used by training's
#: data pipeline and the runtime's codec alike): ``area`` (OpenCV area averaging when shrinking,
#: bilinear when enlarging) or ``linear`` (bilinear always, about half the CPU on Kvasir-size JPEGs).
INTERPOLATIONS = ("area", "linear")
#: What training records in new checkpoints and a new model description says unless told otherwise.
#: Measured (benchmarks/results/input_interpolation/report.md, shipped Kvasir model, 2-core AMD EPYC):
#: ``linear`` costs 1.10 CPU ms per image to decode and resize against area's 2.83, lifts stream()
#: from JPEG files from 0.857 to 0.912 of benchmark throughput (CPU-bound ratio, median of 7 rounds)
#: and its Dice is not lower (FP32 0.8333 vs 0.8314, INT8 0.8296 vs 0.8293).
DEFAULT_INTERPOLATION = "linear"
#: What a description *without* the field means: every checkpoint and IR made before the field
#: existed was trained and served with ``area``, so reading one never changes how it resizes,
#: whatever ``DEFAULT_INTERPOLATION`` says.
LEGACY_INTERPOLATION = "area"
#: The largest model input attnseg builds: 4096 x 4096 (a base-width-64 U-Net needs ~4 GB of f32
#: activations per 1024 x 1024 image). A flag, a checkpoint or an IR asking for more is refused
#: before anything is allocated.
MAX_INPUT_PIXELS = 4096 * 4096
#: Fields schema 1 wrote inside ``extra``.
PROMOTED_FROM_EXTRA = ("input_name", "input_color", "input_divisor", "model_input_channels", "output_spec",
                       "arch_kwargs", "source", "onnx", "opset", "resize_policy")


# ----------------------------------------------------------------------------- field rules
@dataclass(frozen=True)
class Rule:
    """What one field may hold. ``kind``: bool | int | float | str | dict | list | size."""

    kind: str
    choices: tuple[Any, ...] | None = None
    lo: float | None = None
    hi: float | None = None
    open_bounds: bool = False  # (lo, hi) instead of [lo, hi]
    nullable: bool = False
    item: str | None = None  # kind of list items
    non_empty: bool = False

    def check(self, name: str, value: Any, problems: list[str]) -> Any:
        """``value`` converted to its Python form; each problem is appended to ``problems``."""
        if value is None:
            if not self.nullable:
                problems.append(f"{name}: must not be null")
            return None
        if self.kind == "list" or self.kind == "size":
            if not isinstance(value, (list, tuple)):
                problems.append(f"{name}: expected a list, got {type(value).__name__} {value!r}")
                return None
            item_rule = Rule(self.item or "int", lo=1 if self.kind == "size" else self.lo, hi=self.hi,
                             open_bounds=self.open_bounds)
            items = [item_rule.check(f"{name}[{i}]", v, problems) for i, v in enumerate(value)]
            if self.kind == "size" and len(items) != 2:
                problems.append(f"{name}: expected [height, width], got {list(value)!r}")
            elif self.kind == "size" and all(isinstance(v, int) for v in items) and items[0] * items[1] > MAX_INPUT_PIXELS:
                problems.append(f"{name}: {items[0]}x{items[1]} is {items[0] * items[1]:,} pixels, more than the "
                                f"{MAX_INPUT_PIXELS:,} (4096x4096) attnseg builds")
            if self.non_empty and not items:
                problems.append(f"{name}: must not be empty")
            return items
        value = self._typed(name, value, problems)
        if value is None:
            return None
        if self.choices is not None and value not in self.choices:
            problems.append(f"{name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        if self.kind in ("int", "float"):
            low_bad = self.lo is not None and (value <= self.lo if self.open_bounds else value < self.lo)
            high_bad = self.hi is not None and (value >= self.hi if self.open_bounds else value > self.hi)
            if low_bad or high_bad:
                lo = "-inf" if self.lo is None else f"{self.lo:g}"
                hi = "inf" if self.hi is None else f"{self.hi:g}"
                brackets = "()" if self.open_bounds else "[]"
                problems.append(f"{name}: {value!r} is outside {brackets[0]}{lo}, {hi}{brackets[1]}")
        return value

    def _typed(self, name: str, value: Any, problems: list[str]) -> Any:
        k = self.kind
        ok = {
            "bool": isinstance(value, bool),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "str": isinstance(value, str),
            "dict": isinstance(value, dict),
        }[k]
        if not ok:
            problems.append(f"{name}: expected {_KIND_WORDS[k]}, got {type(value).__name__} {value!r}")
            return None
        if k == "float":
            value = float(value)
            if math.isnan(value) or math.isinf(value):
                problems.append(f"{name}: must be a finite number, got {value!r}")
                return None
        if k == "dict":
            return dict(value)
        return value


_KIND_WORDS = {"bool": "true/false", "int": "an integer", "float": "a number", "str": "a string",
               "dict": "an object"}


def spec(default: Any = MISSING, *, factory: Any = MISSING, doc: str = "", **rule: Any) -> Any:
    """A dataclass field declared once: default, rule (type, bounds, choices) and meaning."""
    meta = {"rule": Rule(**rule), "doc": doc}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _check_fields(cls: type, data: dict[str, Any], problems: list[str], prefix: str = "") -> dict[str, Any]:
    out = {}
    for f in fields(cls):
        rule = f.metadata.get("rule")
        if rule is not None and f.name in data:
            out[f.name] = rule.check(prefix + f.name, data[f.name], problems)
    return out


# ----------------------------------------------------------------------------- normalization
@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(pixel / pixel_scale - mean) / std`` in ``channel_order``."""

    mean: tuple[float, ...] = spec((0.485, 0.456, 0.406), kind="list", item="float", non_empty=True)
    std: tuple[float, ...] = spec((0.229, 0.224, 0.225), kind="list", item="float", lo=0.0, open_bounds=True,
                                  non_empty=True)
    channel_order: str = spec("RGB", kind="str", choices=CHANNEL_ORDERS)
    pixel_scale: float = spec(255.0, kind="float", lo=0.0, open_bounds=True)

    @classmethod
    def parse(cls, d: Any, problems: list[str], prefix: str = "normalization.",
              channels: int | None = None) -> Normalization:
        """Checked ``Normalization`` from a dict; problems are appended, defaults fill gaps."""
        if not isinstance(d, dict):
            problems.append(f"{prefix.rstrip('.')}: expected an object, got {type(d).__name__} {d!r}")
            return cls()
        if isinstance(d.get("channel_order"), str):
            d = {**d, "channel_order": d["channel_order"].upper()}
        kw = _check_fields(cls, d, problems, prefix)
        kw = {k: v for k, v in kw.items() if v is not None}
        for key in ("mean", "std"):
            if key in kw:
                kw[key] = tuple(v for v in kw[key] if v is not None)
        norm = cls(**kw)
        if len(norm.mean) != len(norm.std):
            problems.append(f"{prefix}mean/std: {len(norm.mean)} means but {len(norm.std)} stds")
        elif channels is not None and len(norm.mean) != channels:
            problems.append(f"{prefix}mean/std: {len(norm.mean)} values for a model with {channels} input "
                            "channel(s)")
        return norm

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalization:
        problems: list[str] = []
        norm = cls.parse(d, problems)
        if problems:
            raise MetadataError(f"Normalization is invalid: {'; '.join(problems)}.")
        return norm


# ----------------------------------------------------------------------------- the model description
@dataclass
class ModelMetadata:
    """What an exported model says about itself.

    ``input_layout`` and ``input_dtype`` describe the IR's input as the runtime must feed it:
    ``NHWC``/``u8`` BGR images when preprocessing is embedded, ``NCHW``/``f32`` otherwise.
    ``input_size`` is ``[H, W]`` or ``None`` for dynamic spatial shapes. Keys this version does
    not know are kept in ``unknown`` and written back as they were.
    """

    task: str = spec("binary", kind="str", choices=TASKS)
    classes: list[str] = spec(factory=lambda: ["foreground"], kind="list", item="str", non_empty=True)
    arch: str = spec("", kind="str")
    input_size: list[int] | None = spec(None, kind="size", nullable=True)
    input_layout: str = spec("NCHW", kind="str", choices=LAYOUTS)
    input_dtype: str = spec("f32", kind="str", choices=INPUT_DTYPES)
    input_channels: int = spec(3, kind="int", lo=1)
    batch: int | None = spec(1, kind="int", lo=1, nullable=True)
    normalization: Normalization = field(default_factory=Normalization)
    preprocessing_embedded: bool = spec(False, kind="bool")
    output: str = spec("logits", kind="str", choices=OUTPUT_KINDS)
    threshold: float = spec(0.5, kind="float", lo=0.0, hi=1.0, open_bounds=True)
    attention_outputs: list[str] = spec(factory=list, kind="list", item="str")
    precision: str = spec("fp32", kind="str", choices=PRECISIONS)
    ignore_index: int | None = spec(None, kind="int", nullable=True)
    source_checkpoint_sha256: str = spec("", kind="str")
    toolkit_version: str = spec("", kind="str")
    schema_version: int = spec(SCHEMA_VERSION, kind="int", lo=1)
    # --- schema 2: promoted from ``extra``
    input_name: str = spec("image", kind="str", doc="name of the image input port")
    input_color: str | None = spec(None, kind="str", choices=CHANNEL_ORDERS, nullable=True,
                                   doc="colour order the IR's input expects (BGR when preprocessing is embedded)")
    input_divisor: int = spec(16, kind="int", lo=1, doc="height and width must be multiples of this")
    model_input_channels: int | None = spec(None, kind="int", lo=1, nullable=True,
                                            doc="channels the network itself takes (1 for gray models)")
    output_spec: dict[str, Any] | None = spec(None, kind="dict", nullable=True,
                                              doc="name, dtype, shape, channels, meaning of the main output")
    resize_policy: str = spec("stretch", kind="str", choices=RESIZE_POLICIES,
                              doc="how images are brought to input_size: stretch or letterbox (pad)")
    input_interpolation: str = spec(DEFAULT_INTERPOLATION, kind="str", choices=INTERPOLATIONS,
                                    doc="how images are resized to input_size: area (averaging when shrinking) or "
                                        "linear (bilinear); absent in older IRs, which mean area")
    arch_kwargs: dict[str, Any] = spec(factory=dict, kind="dict")
    source: str = spec("", kind="str", doc="checkpoint path, zoo:<path> or module:<Class>")
    onnx: dict[str, Any] | None = spec(None, kind="dict", nullable=True)
    opset: int | None = spec(None, kind="int", lo=1, nullable=True)
    conversion_route: str | None = spec(None, kind="str", choices=("torch", "onnx"), nullable=True,
                                        doc="how the IR was made: OpenVINO's PyTorch frontend or via model.onnx")
    model_api: dict[str, Any] | None = spec(None, kind="dict", nullable=True,
                                            doc="OpenVINO Model API verdict: compatible (bool), reason "
                                                "(export/model_api.py)")
    extra: dict[str, Any] = spec(factory=dict, kind="dict", doc="free-form provenance (optimization, ...)")
    unknown: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def network_channels(self) -> int | None:
        """Channels the network itself takes, when known (normalization has one value per channel)."""
        if self.model_input_channels is not None:
            return self.model_input_channels
        return None if self.preprocessing_embedded else self.input_channels

    @property
    def output_channels(self) -> int | None:
        """Channels of the main output from ``output_spec``, when known (None for masks)."""
        ch = (self.output_spec or {}).get("channels")
        return ch if isinstance(ch, int) and not isinstance(ch, bool) and ch >= 1 else None

    def problems(self) -> list[str]:
        """Everything wrong with this description (an empty list when it is valid)."""
        return _validate(self.to_dict())[1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        unknown = d.pop("unknown")
        return {**unknown, **d}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "metadata") -> ModelMetadata:
        """Validated metadata from a dict; ``MetadataError`` lists every problem, naming fields."""
        meta, problems = _validate(d, where)
        if problems:
            raise MetadataError(f"{where} is not valid attnseg metadata: {'; '.join(problems)}.")
        return meta

    @classmethod
    def from_json(cls, text: str, where: str = "metadata") -> ModelMetadata:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise MetadataError(f"{where} is not valid attnseg metadata: not JSON ({exc}).") from None
        return cls.from_dict(data, where)

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def read_json(cls, path: str | Path) -> ModelMetadata:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputFileError(f"Metadata file {path} does not exist.") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputFileError(f"Metadata file {path} is unreadable: {exc}.") from None
        return cls.from_json(text, f"Metadata file {path}")


def _validate(d: Any, where: str = "metadata") -> tuple[ModelMetadata, list[str]]:
    if not isinstance(d, dict):
        raise MetadataError(f"{where} is not valid attnseg metadata: expected a JSON object, got "
                            f"{type(d).__name__}.")
    d = _upgrade(d)
    if "input_interpolation" not in d:  # made before the field existed: keep resizing as it did then
        d = {**d, "input_interpolation": LEGACY_INTERPOLATION}
    version = d.get("schema_version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        writer = d.get("toolkit_version") or "a newer version"
        raise MetadataError(
            f"{where} uses metadata schema_version {version}, newer than this attnseg reads "
            f"({SCHEMA_VERSION}); it was written by attnseg {writer}: install attnseg >= {writer} to run it."
        )
    problems: list[str] = []
    known = {f.name for f in fields(ModelMetadata)} - {"unknown"}
    kw = _check_fields(ModelMetadata, d, problems)
    kw = {k: v for k, v in kw.items() if v is not None or ModelMetadata.__dataclass_fields__[k].metadata[
        "rule"].nullable}
    if isinstance(kw.get("input_color"), str):
        kw["input_color"] = kw["input_color"].upper()
    meta = ModelMetadata(**kw, unknown={k: v for k, v in d.items() if k not in known})
    meta.schema_version = SCHEMA_VERSION
    task_is_image = meta.task in ("binary", "multiclass")
    if "normalization" in d:
        meta.normalization = Normalization.parse(d["normalization"], problems,
                                                 channels=meta.network_channels if task_is_image else None)
    if "classes" in d and d["classes"] is None:
        pass  # reported by the rule ("must not be null")
    elif task_is_image:
        _check_classes(meta, problems)
    return meta, problems


def _check_classes(meta: ModelMetadata, problems: list[str]) -> None:
    n, ch = len(meta.classes), meta.output_channels
    if meta.task == "binary":
        if n not in (1, 2):
            problems.append(f"classes: a binary model has 1 or 2 class names, got {n}")
        if ch is not None and ch not in (1, 2):
            problems.append(f"output_spec.channels: a binary model has 1 or 2 output channels, got {ch}")
    elif ch is not None and n != ch:
        problems.append(f"classes: {n} class names for a model with {ch} output channels")
    elif n < 2:
        problems.append(f"classes: a multiclass model has at least 2 classes, got {n}")


def _upgrade(d: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: move the fields that lived in ``extra`` to the top level (top level wins)."""
    extra = d.get("extra")
    if not isinstance(extra, dict) or not any(k in extra for k in PROMOTED_FROM_EXTRA):
        return d
    d, extra = dict(d), dict(extra)
    for key in PROMOTED_FROM_EXTRA:
        if key in extra:
            value = extra.pop(key)
            d.setdefault(key, value)
    d["extra"] = extra
    return d


def check_resize_policy(value: Any) -> str:
    """``value`` as one of ``RESIZE_POLICIES`` (``None`` = ``stretch``, case-insensitive), or
    ``InvalidOptionError`` naming the field."""
    policy = "stretch" if value is None else str(value).strip().lower()
    if policy not in RESIZE_POLICIES:
        raise InvalidOptionError(f"resize_policy must be one of {', '.join(RESIZE_POLICIES)}, got {value!r}.")
    return policy


def check_interpolation(value: Any, missing: str = DEFAULT_INTERPOLATION, field_name: str = "input_interpolation") -> str:
    """``value`` as one of ``INTERPOLATIONS`` (case-insensitive; ``None`` = ``missing``), or
    ``InvalidOptionError`` naming the field."""
    if value is None:
        return missing
    choice = value.strip().lower() if isinstance(value, str) else None
    if choice not in INTERPOLATIONS:
        raise InvalidOptionError(f"{field_name} must be one of {', '.join(INTERPOLATIONS)}, got {value!r}.")
    return choice


def metadata_json_path(xml_path: str | Path) -> Path:
    """Where the JSON twin of an IR's metadata lives: ``model.xml`` -> ``model.json``."""
    return Path(xml_path).with_suffix(".json")


def write_rt_info(ov_model: Any, meta: ModelMetadata) -> None:
    """Store ``meta`` in an ``openvino.Model``'s rt_info as one JSON string under ``attnseg``."""
    ov_model.set_rt_info(meta.to_json(), [RT_INFO_KEY, "json"])


def read_rt_info(ov_model: Any, where: str = "rt_info") -> ModelMetadata | None:
    """The metadata stored by ``write_rt_info`` (validated), or ``None`` if the IR has none."""
    try:
        if not ov_model.has_rt_info([RT_INFO_KEY, "json"]):
            return None
        raw = ov_model.get_rt_info([RT_INFO_KEY, "json"])
    except RuntimeError:
        return None
    text = raw.astype(str) if hasattr(raw, "astype") else str(raw)
    return ModelMetadata.from_json(text, where)


# ----------------------------------------------------------------------------- checkpoints
#: The checkpoint keys (models/checkpoint.py) checked on load, with the same kind of rules.
CHECKPOINT_RULES: dict[str, Rule] = {
    "arch": Rule("str"),
    "arch_kwargs": Rule("dict", nullable=True),
    "classes": Rule("list", item="str", non_empty=True, nullable=True),
    "input_size": Rule("size", nullable=True),
    "in_channels": Rule("int", lo=1),
    "threshold": Rule("float", lo=0.0, hi=1.0, open_bounds=True),
    "resize_policy": Rule("str", choices=RESIZE_POLICIES),
    "input_interpolation": Rule("str", choices=INTERPOLATIONS),
    "metrics": Rule("dict", nullable=True),
    "trained_with": Rule("dict", nullable=True),
}


def checkpoint_problems(raw: dict[str, Any], num_outputs: int | None = None,
                        volumetric: bool = False) -> list[str]:
    """Every problem in a checkpoint's description (its keys besides the weights)."""
    problems: list[str] = []
    for key, rule in CHECKPOINT_RULES.items():
        if key in raw:
            rule.check(key, raw[key], problems)
    channels = raw.get("in_channels", 3)
    if raw.get("normalization"):
        Normalization.parse(raw["normalization"], problems,
                            channels=None if volumetric or not isinstance(channels, int) else channels)
    classes = raw.get("classes")
    if isinstance(classes, list) and classes and num_outputs and not volumetric:
        if num_outputs == 1 and len(classes) not in (1, 2):
            problems.append(f"classes: a single-output (binary) model has 1 or 2 class names, got {len(classes)}")
        elif num_outputs > 1 and len(classes) != num_outputs:
            problems.append(f"classes: {len(classes)} class names for a model with {num_outputs} outputs")
    return problems
