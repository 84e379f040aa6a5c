"""Validation images + masks and the project's own metric on an OpenVINO model.

Scored the way users meet the model (and the way ``seg-eval`` scores checkpoints): each
image prepared and each output decoded by the model's own ``ModelCodec`` (its resize policy,
so a letterbox model's padding never reaches the mask; scores resized to the image's own size,
then the exported threshold / argmax), Dice or mIoU from ``attnseg.data.metrics`` against the
original mask. The same scorer is NNCF's
``validation_fn`` in accuracy-controlled quantization and produces the report's figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.errors import DataError, InputFileError, OptimizationError
from attnseg.metadata import ModelMetadata
from attnseg.optimize.calibration import InputFormat, is_dataset_spec
from attnseg.optimize.options import Metric
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.preprocess import Prepared


@dataclass
class ValidationSet:
    prepared: list[Prepared]  # model inputs and where each image sits in its input
    masks: list[np.ndarray]  # uint8 labels at each image's own size
    names: list[str]
    data: str
    metric: Metric
    num_classes: int  # classes the metric counts (2 for binary mIoU)
    ignore_index: int | None = None
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.prepared)

    @property
    def inputs(self) -> list[np.ndarray]:
        return [p.tensor for p in self.prepared]


def choose_metric(metric: str | Metric | None, meta: ModelMetadata) -> Metric:
    """Dice for binary models, mIoU for multiclass ones, unless asked otherwise."""
    from attnseg.errors import parse_enum

    if metric is None:
        return Metric.DICE if meta.task == "binary" else Metric.MIOU
    m = parse_enum(Metric, metric, "metric")
    if m is Metric.DICE and meta.task != "binary":
        raise OptimizationError(f"Dice is defined here for binary models; {meta.arch or 'this model'} has "
                                f"{meta.num_classes} classes: use --metric miou.")
    return m


def parse_split_arg(split: str | None) -> tuple[str, str] | None:
    """``FILE:NAME`` -> (FILE, NAME)."""
    if split is None:
        return None
    file, sep, name = str(split).rpartition(":")
    if not sep or not file or not name:
        raise DataError(f"--validation-split must be FILE:NAME (e.g. splits/kvasir-seg.json:val), got {split!r}.")
    return file, name


def load_validation(
    validation: Any,
    meta: ModelMetadata,
    fmt: InputFormat,
    metric: Metric,
    split: str | None = None,
) -> ValidationSet:
    """Images with masks from a data set spec (``kvasir:/path``) or a folder (``images/`` +
    ``masks/``, or the ISIC layout), optionally restricted to ``split`` = ``FILE:NAME``."""
    from attnseg.data import DatasetSpec, apply_split, load_pair, open_dataset, read_split

    multiclass = meta.task == "multiclass"
    if is_dataset_spec(validation):
        info = open_dataset(str(validation))
        label = str(validation)
    else:
        folder = Path(validation).expanduser()
        if not folder.is_dir():
            raise InputFileError(f"Validation folder {folder} does not exist (give images/ + masks/ folders "
                                 "or a data set spec such as kvasir:/data/kvasir-seg).")
        spec = DatasetSpec.parse(f"folder:{folder}", task=meta.task,
                                 num_classes=meta.num_classes if multiclass else None)
        info = open_dataset(spec)
        label = str(folder)
    if info.task != meta.task:
        raise DataError(f"{label} is a {info.task} data set but the model is {meta.task}.")
    if multiclass and info.num_classes != meta.num_classes:
        raise DataError(f"{label} has {info.num_classes} classes but the model predicts {meta.num_classes}.")
    samples = info.samples
    parsed = parse_split_arg(split)
    if parsed is not None:
        samples = apply_split(samples, read_split(parsed[0]), parsed[1])
        label = f"{label} split {parsed[0]}:{parsed[1]}"
    unlabelled = [s.name for s in samples if s.mask is None]
    if unlabelled:
        raise DataError(f"{len(unlabelled)} validation images have no mask (e.g. {unlabelled[0]}); accuracy needs "
                        "a mask for every validation image.")
    ignore = meta.ignore_index if meta.ignore_index is not None else info.ignore_index
    inputs, masks, names = [], [], []
    for s in samples:
        if multiclass:
            image, mask = load_pair(s, "multiclass", meta.num_classes, ignore if ignore is not None else 255)
        else:
            image, mask = load_pair(s, "binary")
        inputs.append(fmt.prepare(image))
        masks.append(np.ascontiguousarray(mask, dtype=np.uint8))
        names.append(s.name)
    return ValidationSet(
        prepared=inputs, masks=masks, names=names, data=f"{label} ({len(samples)} images)", metric=metric,
        num_classes=meta.num_classes if multiclass else 2, ignore_index=ignore if multiclass else None,
    )


class Scorer:
    """``scorer(compiled_model, indices) -> (metric, per-image values)``: NNCF's validation_fn."""

    def __init__(self, vset: ValidationSet, codec: ModelCodec, output_name: str = "logits"):
        self.vset = vset
        self.codec = codec
        self.output_name = output_name
        self._bound: tuple[Any, Any] | None = None  # (compiled model, main port)

    def _port(self, compiled: Any) -> Any:
        if self._bound is None or self._bound[0] is not compiled:
            outs = list(compiled.outputs)
            port = next((p for p in outs if self.output_name in p.get_names()), None)
            if port is None:
                plain = [p for p in outs if not any(n.startswith("attention_") for n in p.get_names())]
                port = plain[0] if plain else outs[0]
            self._bound = (compiled, port)
        return self._bound[1]

    def predict(self, compiled: Any, index: int) -> np.ndarray:
        """The class-id mask of validation image ``index`` at its own size."""
        prepared = self.vset.prepared[index]
        raw = compiled(prepared.tensor)[self._port(compiled)]
        return self.codec.decode(prepared, [np.asarray(raw)]).mask

    def __call__(self, compiled: Any, items: Iterable[Any]) -> tuple[float, list[float]]:
        from attnseg.data.metrics import MulticlassMetrics, binary_metrics

        v = self.vset
        per_item: list[float] = []
        total = MulticlassMetrics(v.num_classes, ignore_index=v.ignore_index) if v.metric is Metric.MIOU else None
        for item in items:
            i = int(item)
            pred, gt = self.predict(compiled, i), v.masks[i]
            if v.metric is Metric.DICE:
                per_item.append(binary_metrics(pred, gt)["dice"])
            else:
                one = MulticlassMetrics(v.num_classes, ignore_index=v.ignore_index)
                one.update(pred, gt)
                total.update(pred, gt)
                per_item.append(_miou_or_nan(one))
        if not per_item:
            raise DataError("No validation images were scored.")
        if v.metric is Metric.DICE:
            return float(np.mean(per_item)), per_item
        return float(total.compute()["miou"]), [0.0 if np.isnan(x) else x for x in per_item]


def _miou_or_nan(m: Any) -> float:
    try:
        return float(m.compute()["miou"])
    except DataError:  # every pixel of this image is void
        return float("nan")
