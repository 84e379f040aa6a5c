"""Evaluate a checkpoint the way users meet it: each image prepared and each output decided by
the runtime's ``ModelCodec`` (the checkpoint's resize policy, letterbox padding included; logits
resized back to the image's own size; the checkpoint's threshold), metrics against the original
mask. An exported IR of the checkpoint is fed and decoded by the same codec."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from attnseg.errors import DataError
from attnseg.metadata import LEGACY_INTERPOLATION
from attnseg.models import load_checkpoint
from attnseg.runtime.codec import ModelCodec

log = logging.getLogger(__name__)


@dataclass
class EvaluationResult:
    checkpoint: str
    data: str
    split: str
    task: str
    count: int
    metrics: dict
    per_image: list[dict] = field(default_factory=list)


def checkpoint_codec(info, input_size, task: str | None = None) -> ModelCodec:
    """The codec an exported IR of checkpoint ``info`` would have, for its raw network at ``input_size``."""
    task = task or ("binary" if len(info.classes) <= 1 else "multiclass")
    return ModelCodec.for_network(task=task, classes=info.classes, input_size=input_size,
                                  normalization=info.normalization, threshold=info.threshold,
                                  resize_policy=getattr(info, "resize_policy", None) or "stretch",
                                  in_channels=getattr(info, "in_channels", 3) or 3,
                                  input_interpolation=getattr(info, "input_interpolation", LEGACY_INTERPOLATION))


def predict_with_codec(model: torch.nn.Module, image_bgr: np.ndarray, codec: ModelCodec) -> np.ndarray:
    """Class-id mask (H, W) uint8 at the image's own size: the codec prepares, the network runs."""
    prepared = codec.prepare(image_bgr)
    return codec.decode(prepared, [_logits(model, prepared.tensor)]).mask


def predict_full_resolution(model: torch.nn.Module, image_bgr: np.ndarray, input_size, normalization,
                            task: str, threshold: float, resize_policy: str = "stretch") -> np.ndarray:
    """Class-id mask (H, W) uint8 at the image's own size, for callers without a checkpoint's
    description (``predict_with_codec`` with the codec of these settings)."""
    def codec(classes: list[str]) -> ModelCodec:
        return ModelCodec.for_network(task=task, classes=classes, input_size=input_size,
                                      normalization=normalization, threshold=threshold, resize_policy=resize_policy)

    prepared = codec(["foreground"]).prepare(image_bgr)  # the input side does not depend on the classes
    logits = _logits(model, prepared.tensor)
    classes = ["foreground"] if task == "binary" else [f"class_{i}" for i in range(logits.shape[1])]
    return codec(classes).decode(prepared, [logits]).mask


def _logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(x))
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out.float().numpy()


def run_split_file(info, checkpoint: str | Path) -> Path | None:
    """The split a checkpoint was trained with: ``trained_with.split_file`` or ``split.json`` beside it.

    Scoring without it would score training images and call them "test".
    """
    recorded = (info.trained_with or {}).get("split_file")
    for candidate in (recorded, Path(checkpoint).parent / "split.json"):
        if candidate and Path(candidate).is_file():
            log.info("Using the run's split file %s", candidate)
            return Path(candidate)
    return None


def is_exported_model(path: str | Path) -> bool:
    """An OpenVINO IR (``.xml``, or a folder holding one) rather than a torch checkpoint."""
    path = Path(path)
    return path.suffix.lower() == ".xml" or (path.is_dir() and any(path.glob("*.xml")))


def evaluate_checkpoint(checkpoint: str | Path, data: str, split_file: str | Path | None = None,
                        split_name: str = "test", input_size=None, limit: int | None = None,
                        show_progress: bool = False, arch: str | None = None, runtime=None,
                        **arch_kwargs) -> EvaluationResult:
    """Metrics of a checkpoint on one split of a data set, at the images' own resolution
    (``arch`` / ``arch_kwargs``: of a bare state_dict, as ``load_checkpoint``).

    ``checkpoint`` may also be an exported IR (``.xml`` or its folder): it is then run by a
    ``Segmenter`` made with ``runtime`` (``RuntimeOptions``), exactly as seg-infer runs it."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"--limit must be a positive number of images, got {limit!r}.")
    if is_exported_model(checkpoint):
        if input_size is not None or arch is not None or arch_kwargs:
            raise DataError("--input-size, --arch and --t describe a checkpoint; an exported model records them.")
        from attnseg.runtime import RuntimeOptions, Segmenter

        seg = Segmenter(checkpoint, options=runtime or RuntimeOptions())
        return _score(checkpoint, data, split_file, split_name, limit, show_progress, None, seg.metadata.task,
                      seg.classes, lambda image: seg.predict(image).mask)
    model, ck = load_checkpoint(checkpoint, arch, **arch_kwargs)
    task = "binary" if len(ck.classes) <= 1 else "multiclass"
    codec: list[ModelCodec] = []

    def predict(image: np.ndarray) -> np.ndarray:
        return predict_with_codec(model, image, codec[0])

    def sized(info) -> None:
        codec.append(checkpoint_codec(ck, tuple(input_size or ck.input_size or info.suggested_size), task))

    return _score(checkpoint, data, split_file, split_name, limit, show_progress, ck, task, ck.classes, predict,
                  sized)


def _score(checkpoint, data, split_file, split_name, limit, show_progress, ck, task, classes, predict,
           on_open=None) -> EvaluationResult:
    """Choose the split's samples and score ``predict`` (BGR image -> class-id mask) on them."""
    from tqdm import tqdm

    from attnseg.data import (
        BinaryMetrics,
        MulticlassMetrics,
        apply_split,
        load_pair,
        open_dataset,
        read_split,
    )

    info = open_dataset(data)
    samples = info.samples
    split_file = split_file or (run_split_file(ck, checkpoint) if ck is not None else None)
    if split_file:
        if split_name != "all":
            samples = apply_split(samples, read_split(split_file), split_name)
    elif split_name in info.predefined_splits:
        samples = apply_split(samples, info.predefined_splits, split_name)
    elif split_name != "all":
        known = ", ".join([*info.predefined_splits, "all"])
        raise DataError(
            f"{data} has no split {split_name!r} of its own ({known}) and no split file was found beside "
            f"{checkpoint}: give --split FILE:{split_name} (seg-train writes RUN/split.json), or --split all "
            "to score every image, training images included."
        )
    if limit is not None:
        samples = samples[:limit]
    if not samples:
        raise DataError(f"No samples to evaluate in split {split_name!r} of {data}.")
    if task != info.task:
        raise DataError(f"The {'checkpoint' if ck is not None else 'model'} is {task} but {data} is a "
                        f"{info.task} data set.")
    if on_open is not None:
        on_open(info)
    ignore = 255 if info.ignore_index is None else info.ignore_index
    acc = BinaryMetrics() if task == "binary" else MulticlassMetrics(len(classes), ignore, classes)
    for sample in tqdm(samples, desc="evaluate", disable=not show_progress, leave=False):
        image, mask = load_pair(sample, info.task, info.num_classes, ignore)
        pred = predict(image)
        if task == "binary":
            acc.update(pred[None], mask[None], names=[sample.name])
        else:
            acc.update(pred[None], mask[None])
    metrics = acc.compute()
    per_image = list(getattr(acc, "per_image", []) or [])
    return EvaluationResult(str(checkpoint), str(data), split_name, task, len(samples), metrics, per_image)
