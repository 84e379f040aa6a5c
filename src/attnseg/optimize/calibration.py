"""Calibration images -> exactly the tensors the IR takes at inference time.

Every image is prepared by the model's own ``ModelCodec`` (``attnseg.runtime``): its colour
order, resize policy (a letterbox model is calibrated on letterboxed images, padding
included), normalization or raw u8 input when preprocessing is embedded, layout and type. That
is what the runtime feeds the same IR, so the quantizers see the real input distribution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.errors import AttnsegError, DataError, InputFileError
from attnseg.imaging import IMAGE_SUFFIXES, list_images, read_image, to_bgr8
from attnseg.metadata import ModelMetadata
from attnseg.optimize.progress import progress
from attnseg.optimize.result import CalibrationInfo
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.ports import Port
from attnseg.runtime.preprocess import Prepared

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputFormat:
    """What the IR's image input takes at ``size``: the model's codec, static at that size
    (models with dynamic height/width are calibrated and scored at one size)."""

    codec: ModelCodec

    @classmethod
    def of(cls, meta: ModelMetadata, size: tuple[int, int], port_dtype: np.dtype | None = None,
           output_port: Port | None = None) -> InputFormat:
        embedded = bool(meta.preprocessing_embedded)
        layout = (meta.input_layout or ("NHWC" if embedded else "NCHW")).upper()
        dtype = np.dtype(port_dtype) if port_dtype is not None else np.dtype(np.uint8 if embedded else np.float32)
        h, w, c = int(size[0]), int(size[1]), int(meta.input_channels)
        port = Port((1, h, w, c) if layout == "NHWC" else (1, c, h, w), dtype)
        return cls(ModelCodec.from_metadata(meta, port, output_port))

    @property
    def size(self) -> tuple[int, int]:
        return self.codec.input_size

    @property
    def embedded(self) -> bool:
        return self.codec.input.embedded

    @property
    def layout(self) -> str:
        return self.codec.input.layout

    @property
    def dtype(self) -> np.dtype:
        return self.codec.input.dtype

    @property
    def normalization(self) -> Any:
        return self.codec.input.normalization

    def describe(self) -> str:
        policy = self.codec.resize_policy.value
        if self.embedded:
            return f"{self.dtype.name} {self.layout} BGR, {policy} (preprocessing embedded in the IR)"
        return f"{self.dtype.name} {self.layout} normalized ({self.normalization.channel_order}), {policy}"

    def prepare(self, bgr: np.ndarray) -> Prepared:
        """One decoded image (any size) -> the batch the IR takes and where the image sits in it."""
        return self.codec.prepare(bgr)

    def tensor(self, bgr: np.ndarray) -> np.ndarray:
        """One HxWx3 uint8 BGR image (any size) -> the (1, ...) batch the IR takes."""
        return self.codec.tensor(bgr)


@dataclass
class Candidates:
    """Calibration images found (listed, not decoded yet): cheap to check before any export."""

    images: list[Any]  # paths or arrays
    source: str
    split: str | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class CalibrationSet:
    items: list[np.ndarray]
    info: CalibrationInfo
    names: list[str] = field(default_factory=list)  # image stems, to detect overlap with validation
    warnings: list[str] = field(default_factory=list)


def is_dataset_spec(value: Any) -> bool:
    """``kvasir:/path``-style strings (a known data set kind before the colon)."""
    from attnseg.data import DatasetKind

    if not isinstance(value, str) or ":" not in value:
        return False
    kind = value.partition(":")[0].strip().lower().replace("-", "_")
    return kind in {k.value for k in DatasetKind}


def _candidates(calibration: Any, split: str | Path | None, split_name: str,
                warnings: list[str]) -> tuple[list[Any], str, str | None]:
    """(images as paths or arrays, description, split label) before decoding."""
    from attnseg.data import apply_split, open_dataset, read_split

    split_label = f"{split}:{split_name}" if split is not None else None
    if isinstance(calibration, (list, tuple)):
        if not calibration:
            raise DataError("The calibration image list is empty.")
        if split is not None:
            raise DataError("--split selects images of a folder or data set, not of an explicit image list.")
        return list(calibration), f"list of {len(calibration)} images", None
    if isinstance(calibration, np.ndarray):
        raise DataError("Pass calibration images as a list of arrays or paths, not one array.")
    if is_dataset_spec(calibration):
        info = open_dataset(str(calibration))
        samples = info.samples
        if split is not None:
            samples = apply_split(samples, read_split(split), split_name)
        else:
            warnings.append(f"Calibrating on all {len(samples)} images of {calibration}: pass --split "
                            "FILE:train to keep validation / test images out of calibration.")
        return [s.image for s in samples], str(calibration), split_label
    folder = Path(calibration).expanduser()
    if not folder.exists():
        raise InputFileError(f"Calibration folder {folder} does not exist.")
    if not folder.is_dir():
        raise InputFileError(f"Calibration source {folder} is a file; give a folder of images or a data set spec "
                             "such as kvasir:/data/kvasir-seg.")
    images = list_images(folder)
    if not images and (folder / "images").is_dir():
        images = list_images(folder / "images")  # Kvasir-style data set root
    if not images:
        raise DataError(f"Calibration folder {folder} contains no images (looked for {', '.join(IMAGE_SUFFIXES)}).")
    if split is not None:
        parts = read_split(split)
        if split_name not in parts:
            raise DataError(f"Split '{split_name}' is not in {split} (it has: {', '.join(parts) or 'nothing'}).")
        wanted = set(parts[split_name])
        images = [p for p in images if p.stem in wanted]
        if not images:
            raise DataError(f"None of the images in {folder} is in split '{split_name}' of {split}.")
    return images, str(folder), split_label


def find_calibration(calibration: Any, split: str | Path | None = None, split_name: str = "train",
                     allow_test: bool = False) -> Candidates:
    """List the calibration images of a folder, a data set spec (optionally one split of it)
    or an explicit list of paths / arrays; empty or missing sources are errors.

    The test split is refused unless ``allow_test``: calibrating on it makes every test figure
    of the quantized model optimistic."""
    if str(split_name).strip().lower() == "test" and not allow_test:
        raise DataError("Calibrating on the test split is refused: the quantized model's test figures would be "
                        "optimistic. Use --split FILE:train (or FILE:val); to do it anyway pass --allow-test-calibration.")
    if calibration is None:
        raise DataError("INT8 quantization needs calibration images: pass a folder of images or a data set spec "
                        "(--calibration kvasir:/data/kvasir-seg --split splits/kvasir-seg.json:train).")
    warnings: list[str] = []
    images, source, split_label = _candidates(calibration, split, split_name, warnings)
    if split is not None and split_name.strip().lower() == "test":
        warnings.append("Calibrating on the test split: test figures of the quantized model will be optimistic. "
                        "Calibrate on train (or val) and keep test for measuring.")
    return Candidates(images=images, source=source, split=split_label, warnings=warnings)


def load_calibration(cands: Candidates, fmt: InputFormat, subset_size: int, seed: int = 0,
                     quiet: bool = True) -> CalibrationSet:
    """Pick up to ``subset_size`` images (a seeded random subset when there are more), decode
    them, skip unreadable ones with a warning, and build the model inputs."""
    if int(subset_size) < 1:
        raise DataError(f"subset_size must be >= 1, got {subset_size}.")
    warnings = list(cands.warnings)
    candidates, source, split_label = cands.images, cands.source, cands.split
    order = np.random.default_rng(seed).permutation(len(candidates)) if len(candidates) > subset_size \
        else np.arange(len(candidates))
    items: list[np.ndarray] = []
    names: list[str] = []
    skipped: list[str] = []
    first_error = ""
    resized = 0
    for idx in progress(order, "Reading calibration images", min(len(order), subset_size), quiet):
        if len(items) >= subset_size:
            break
        cand = candidates[int(idx)]
        try:
            if isinstance(cand, (str, Path)):
                bgr = read_image(cand)
                name = Path(cand).stem
            else:
                bgr = to_bgr8(np.asarray(cand), source=f"calibration image {int(idx)}")
                name = f"array_{int(idx)}"
        except AttnsegError as exc:
            skipped.append(str(cand) if isinstance(cand, (str, Path)) else f"array {int(idx)}")
            first_error = first_error or str(exc)
            log.warning("Skipping unreadable calibration image: %s", exc)
            continue
        resized += bgr.shape[:2] != fmt.size
        items.append(fmt.tensor(bgr))
        names.append(name)
    if not items:
        raise DataError(f"None of the {len(candidates)} calibration images in {source} could be read "
                        f"(first error: {first_error}). Give a folder of readable images.")
    info = CalibrationInfo(
        source=source, found=len(candidates), used=len(items), skipped=skipped, resized=int(resized),
        input_size=list(fmt.size), model_input=fmt.describe(), split=split_label, seed=seed,
    )
    if skipped:
        warnings.append(f"{len(skipped)} unreadable calibration images were skipped (first: {skipped[0]}).")
    return CalibrationSet(items=items, info=info, names=names, warnings=warnings)
