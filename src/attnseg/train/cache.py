"""Decode-once training data: Kvasir-SEG images are up to 1920 px JPEGs, and decoding them
every epoch costs more than the forward pass of a small model on 2 cores."""

from __future__ import annotations

import logging

import numpy as np

from attnseg.data import SegmentationDataset, load_pair
from attnseg.imaging import resize_image, resize_mask

log = logging.getLogger(__name__)


class CachedSegmentationDataset(SegmentationDataset):
    """A ``SegmentationDataset`` that decodes every pair once and keeps it in memory: at
    ``cache_scale`` x the model size when it augments (headroom for crops and rotations), at
    the file's own size when the augmentation asks for it (``native_resolution``: tile-scale
    crops), else at the model size itself, resized once from the decoded file exactly as the
    runtime's codec resizes it (``resize_image`` with the dataset's ``interpolation``).

    Call ``preload()`` before building a multi-worker DataLoader: forked workers then share
    the decoded arrays instead of each decoding its own copy.
    """

    def __init__(self, *args, cache_scale: float = 1.25, **kwargs):
        super().__init__(*args, **kwargs)
        h, w = self.size
        augmented = self.augment is not None and self.augment.prob > 0
        self._cache_size: tuple[int, int] | None = (h, w)
        if augmented:
            native = getattr(self.augment, "native_resolution", False)
            self._cache_size = None if native else (round(h * cache_scale), round(w * cache_scale))
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self._cache:
            image, mask = load_pair(self.samples[index], self.task, self.num_classes, self.ignore_index)
            if self._cache_size is not None:
                image = resize_image(image, self._cache_size, self.interpolation)
                mask = resize_mask(mask, self._cache_size)
            self._cache[index] = (image, mask)
        return self._cache[index]

    def preload(self, progress: bool = False, desc: str = "decode") -> CachedSegmentationDataset:
        from tqdm import tqdm

        for i in tqdm(range(len(self)), desc=desc, leave=False, disable=not progress, dynamic_ncols=True):
            self._pair(i)
        mb = sum(a.nbytes + b.nbytes for a, b in self._cache.values()) / 2**20
        log.info("Cached %d decoded samples (%.0f MB)", len(self), mb)
        return self

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        image, mask = self._pair(index)
        if self.augment is not None and self.augment.prob > 0:
            return self.augment(image, mask, self.rng(index), fill=self.fill, size=self.size,
                                interpolation=self.interpolation)
        return resize_image(image, self.size, self.interpolation), resize_mask(mask, self.size)
