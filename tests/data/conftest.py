"""Real Kvasir-SEG pairs for the augmentation tests."""

from __future__ import annotations

import cv2
import pytest


@pytest.fixture(scope="session")
def kvasir_pairs_320(shared_data):
    """The first six Kvasir-SEG image/mask pairs, resized to 320 x 320 (mask nearest)."""
    from attnseg.data import load_pair, open_dataset

    info = open_dataset(f"kvasir:{shared_data / 'kvasir-seg'}")
    out = []
    for sample in info.samples[:6]:
        image, mask = load_pair(sample, "binary", 1, 255)
        out.append((cv2.resize(image, (320, 320)), cv2.resize(mask, (320, 320), interpolation=cv2.INTER_NEAREST)))
    return out
