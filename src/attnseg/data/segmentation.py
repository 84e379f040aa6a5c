"""``SegmentationDataset``: samples -> (normalised CxHxW float32 image, HxW int64 mask).

Torch-free on purpose (numpy + OpenCV): it works as a map-style dataset inside a torch
``DataLoader`` (the default collate turns numpy arrays into tensors) and equally feeds
exported models during evaluation and calibration. Preprocessing is ``attnseg.imaging``'s,
the same code the runtime uses, so training and inference see identical inputs.

Augmentation randomness is derived from ``(seed, epoch, index)``: reproducible whatever the
number of workers or their order. Call ``set_epoch(e)`` before each epoch so every epoch
draws new transforms (with non-persistent workers the dataset is re-sent to the workers at
each ``iter(loader)``, so the epoch reaches them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from attnseg.data.augment import Augmentation
from attnseg.data.masks import DEFAULT_IGNORE_INDEX, read_mask
from attnseg.data.samples import Sample
from attnseg.errors import DataError
from attnseg.imaging import normalize, read_image, resize_image, resize_mask
from attnseg.metadata import DEFAULT_INTERPOLATION, INTERPOLATIONS, Normalization


def load_pair(
    sample: Sample,
    task: str,
    num_classes: int | None = None,
    ignore_index: int = DEFAULT_IGNORE_INDEX,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one sample at its own resolution: (HxWx3 uint8 BGR, HxW uint8 labels).

    Used by evaluation at full resolution (e.g. exported models) and by the dataset.
    """
    if sample.mask is None:
        raise DataError(f"Sample {sample.name} ({sample.image}) has no mask.")
    image = read_image(sample.image)
    classes = None if task == "binary" else num_classes
    mask = read_mask(sample.mask, task, classes, encoding=sample.mask_encoding, ignore_index=ignore_index)
    if image.shape[:2] != mask.shape[:2]:
        raise DataError(
            f"Mask {sample.mask} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
            f"{sample.image} is {image.shape[1]}x{image.shape[0]}; masks must match their image's size."
        )
    return image, mask


class SegmentationDataset:
    """Map-style dataset over ``samples`` resized (stretched) to ``size`` = (H, W).

    ``interpolation`` (``area`` | ``linear``): how images are resized, with the runtime codec's own
    function (``attnseg.imaging.resize_image``); training records it in the checkpoint
    (``input_interpolation``) and export carries it to the IR, so inference resizes the same way.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        size: Sequence[int],
        normalization: Normalization,
        task: str,
        num_classes: int | None = None,
        ignore_index: int = DEFAULT_IGNORE_INDEX,
        augment: Augmentation | None = None,
        in_channels: int = 3,
        seed: int = 0,
        interpolation: str = DEFAULT_INTERPOLATION,
    ):
        self.samples = list(samples)
        if not self.samples:
            raise DataError("The dataset has no samples (empty split?).")
        if task not in ("binary", "multiclass"):
            raise DataError(f"Unknown task {task!r}: use 'binary' or 'multiclass'.")
        if task == "multiclass" and (num_classes is None or num_classes < 2):
            raise DataError("A multiclass dataset needs num_classes >= 2.")
        if len(size) != 2 or min(int(v) for v in size) < 1:
            raise DataError(f"size must be (H, W) with positive sides, got {tuple(size)}.")
        gray = normalization.channel_order == "GRAY"
        if (in_channels == 1) != gray or in_channels not in (1, 3):
            raise DataError(
                f"in_channels={in_channels} does not fit normalization channel order "
                f"{normalization.channel_order!r} (1 channel needs 'GRAY', 3 needs 'RGB' or 'BGR')."
            )
        if interpolation not in INTERPOLATIONS:
            raise DataError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}.")
        unlabelled = [s.name for s in self.samples if s.mask is None]
        if unlabelled:
            raise DataError(f"{len(unlabelled)} samples have no mask, e.g. {unlabelled[0]}.")
        self.size = (int(size[0]), int(size[1]))
        self.normalization = normalization
        self.task = task
        self.num_classes = num_classes if task == "multiclass" else 1
        self.ignore_index = ignore_index
        self.augment = augment
        self.in_channels = in_channels
        self.seed = seed
        self.interpolation = interpolation
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make augmentation draws depend on the epoch (call once per epoch)."""
        self.epoch = int(epoch)

    @property
    def fill(self) -> int:
        """Mask value for pixels an augmentation invents (rotation borders)."""
        return 0 if self.task == "binary" else self.ignore_index

    def __len__(self) -> int:
        return len(self.samples)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 BGR image, uint8 mask) at ``size``, augmented: what ``__getitem__`` normalises."""
        sample = self.samples[index]
        image, mask = load_pair(sample, self.task, self.num_classes, self.ignore_index)
        if self.augment is not None and self.augment.prob > 0:
            return self.augment(image, mask, self.rng(index), fill=self.fill, size=self.size,
                                interpolation=self.interpolation)
        return resize_image(image, self.size, self.interpolation), resize_mask(mask, self.size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        image, mask = self.load(index % len(self))
        return normalize(image, self.normalization), mask.astype(np.int64)

    def name(self, index: int) -> str:
        return self.samples[index].name

    def image_path(self, index: int) -> Path:
        return self.samples[index].image
