"""The exported-model contract: the typed description every IR carries (stdlib only).

Export writes it into the IR's ``rt_info`` under the key ``attnseg`` and as JSON beside the
``.xml``; the runtime reads it back through ``ModelMetadata`` and needs nothing else. This
module imports nothing heavy, so both ``export`` and ``runtime`` may use it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError

RT_INFO_KEY = "attnseg"
SCHEMA_VERSION = 1
#: How images are fitted to the model input (``attnseg.resize_policy.ResizePolicy``); models
#: exported before the field existed were trained with ``stretch``.
RESIZE_POLICIES = ("stretch", "letterbox")


@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(pixel / pixel_scale - mean) / std`` in ``channel_order``."""

    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    channel_order: str = "RGB"  # RGB | BGR | GRAY
    pixel_scale: float = 255.0

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Normalization":
        return cls(
            mean=tuple(float(v) for v in d.get("mean", cls.mean)),
            std=tuple(float(v) for v in d.get("std", cls.std)),
            channel_order=str(d.get("channel_order", "RGB")),
            pixel_scale=float(d.get("pixel_scale", 255.0)),
        )


@dataclass
class ModelMetadata:
    """What an exported model says about itself.

    ``input_layout`` and ``input_dtype`` describe the IR's input as the runtime must feed it:
    ``NHWC``/``u8`` BGR images when preprocessing is embedded, ``NCHW``/``f32`` otherwise.
    ``input_size`` is ``[H, W]`` or ``None`` for dynamic spatial shapes. ``resize_policy`` is
    how the model's training images were fitted to ``input_size`` (``stretch`` | ``letterbox``);
    the runtime uses it by default.
    """

    task: str = "binary"  # binary | multiclass
    classes: list[str] = field(default_factory=lambda: ["foreground"])
    arch: str = ""
    input_size: list[int] | None = None
    input_layout: str = "NCHW"
    input_dtype: str = "f32"
    input_channels: int = 3
    batch: int | None = 1
    normalization: Normalization = field(default_factory=Normalization)
    preprocessing_embedded: bool = False
    output: str = "logits"  # logits | probabilities | mask
    threshold: float = 0.5
    resize_policy: str = "stretch"  # stretch | letterbox
    attention_outputs: list[str] = field(default_factory=list)
    precision: str = "fp32"  # fp32 | fp16 | int8 | int8_acq
    ignore_index: int | None = None
    source_checkpoint_sha256: str = ""
    toolkit_version: str = ""
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelMetadata":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if isinstance(kw.get("normalization"), dict):
            kw["normalization"] = Normalization.from_dict(kw["normalization"])
        for key in ("classes", "attention_outputs"):
            if key in kw and kw[key] is not None:
                kw[key] = list(kw[key])
        if kw.get("input_size") is not None:
            kw["input_size"] = [int(v) for v in kw["input_size"]]
        kw["resize_policy"] = check_resize_policy(kw.get("resize_policy", "stretch"))
        return cls(**kw)

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        return cls.from_dict(json.loads(text))

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def read_json(cls, path: str | Path) -> "ModelMetadata":
        path = Path(path)
        try:
            return cls.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputFileError(f"Metadata file {path} does not exist.") from None
        except (ValueError, TypeError) as exc:
            raise InputFileError(f"Metadata file {path} is not valid attnseg metadata: {exc}.") from None


def check_resize_policy(value: Any) -> str:
    """``value`` as one of ``RESIZE_POLICIES`` (``None`` = ``stretch``), or ``ValueError`` naming the field."""
    policy = "stretch" if value is None else str(value).strip().lower()
    if policy not in RESIZE_POLICIES:
        raise ValueError(f"resize_policy must be one of {', '.join(RESIZE_POLICIES)}, got {value!r}")
    return policy


def metadata_json_path(xml_path: str | Path) -> Path:
    """Where the JSON twin of an IR's metadata lives: ``model.xml`` -> ``model.json``."""
    return Path(xml_path).with_suffix(".json")


def write_rt_info(ov_model: Any, meta: ModelMetadata) -> None:
    """Store ``meta`` in an ``openvino.Model``'s rt_info as one JSON string under ``attnseg``."""
    ov_model.set_rt_info(meta.to_json(), [RT_INFO_KEY, "json"])


def read_rt_info(ov_model: Any) -> ModelMetadata | None:
    """The metadata stored by ``write_rt_info``, or ``None`` if the IR has none."""
    try:
        if not ov_model.has_rt_info([RT_INFO_KEY, "json"]):
            return None
        raw = ov_model.get_rt_info([RT_INFO_KEY, "json"])
    except RuntimeError:
        return None
    text = raw.astype(str) if hasattr(raw, "astype") else str(raw)
    return ModelMetadata.from_json(text)
