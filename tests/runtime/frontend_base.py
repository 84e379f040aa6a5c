"""One contract for every front end over the runtime: ``Segmenter`` today; the KServe server,
the Ray path and the tiler subclass it.

Each test segments real Kvasir-SEG images through the front end and compares with
``tests/runtime/_reference.py``, an independent reading of the IR (plain ``openvino`` compile
plus the metadata contract, no runtime code): masks equal pixel for pixel, at the image's own
size, in input order; probabilities sum to one and agree with the mask and the reference.

How to use it from another test package (``tests/serve``, ``tests/cluster``, ...; give the
folder an ``__init__.py`` like every test folder)::

    from tests.runtime.frontend_base import FrontEndContract

    class TestKServeContract(FrontEndContract):
        def segment(self, xml, images, return_probabilities=False):
            # run ``images`` (paths) through your front end serving ``xml``; return one
            # object per image, in order, with ``.mask`` (HxW uint8) and ``.probabilities``
            # ((K, H, W) float32 or None); dicts with those keys are accepted too.
            ...

The reference takes the resize policy and the threshold from each IR's metadata, and the
contract runs on the hard cases too: ``threshold_ir`` (exported with threshold 0.3),
``letterbox_ir`` (letterbox resizing: non-square images are padded), ``multiclass_ir`` and
``named_binary_ir`` (a binary model whose classes are ``normal`` / ``lesion``).

The IR fixtures (``binary_ir``, ``embedded_att_ir``, ``multiclass_ir``, ``dynamic_ir``, ...)
and ``kvasir_images`` come from ``tests/runtime/fixtures.py``, loaded for the whole suite by
``tests/conftest.py``. Set ``IRS`` to the fixture names your front end supports, and
``probabilities = False`` if it cannot return them. Start servers / clusters once per class
(a ``scope="class"`` fixture caching per ``xml``) and stop them in its teardown.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attnseg.imaging import read_image
from tests.runtime._reference import reference_mask, reference_probabilities, reference_threshold

#: Every IR the contract knows; a front end runs those of them in its ``IRS``.
CONTRACT_IRS = ("binary_ir", "embedded_att_ir", "multiclass_ir", "threshold_ir", "letterbox_ir", "named_binary_ir")


def _get(result: Any, name: str) -> Any:
    return result[name] if isinstance(result, dict) else getattr(result, name)


class FrontEndContract:
    """Override ``segment``; the tests below are inherited unchanged."""

    #: IR fixtures the contract runs on (static input: the reference fits images by the recorded policy)
    IRS: Sequence[str] = CONTRACT_IRS
    #: images per call (several, so ordering is checked)
    NUM_IMAGES = 4
    #: whether the front end can return class probabilities
    probabilities = True

    def segment(self, xml: Path, images: list[Path], return_probabilities: bool = False) -> list[Any]:
        """The front end under test; the default is the local ``Segmenter`` (stream: many in flight)."""
        from attnseg.runtime import Segmenter

        seg = Segmenter(xml, hint="throughput")
        return list(seg.stream(images, return_probabilities=return_probabilities))

    def precision(self, xml: Path) -> str:
        """The precision the runtime computes ``xml`` in on this machine (its ``auto`` decision is
        measured once per model and device, and shared by every front end); the reference uses it."""
        from attnseg.runtime import Segmenter

        return Segmenter(xml).inference_precision

    # ------------------------------------------------------------------ the contract
    def _images(self, kvasir_images: list[Path]) -> list[Path]:
        picks = list(kvasir_images[: self.NUM_IMAGES - 1]) + [kvasir_images[0]]  # a repeat too
        return picks[: self.NUM_IMAGES]

    def _check_masks(self, xml: Path, images: list[Path], results: list[Any]) -> None:
        assert len(results) == len(images), "one result per image"
        for path, result in zip(images, results):
            bgr = read_image(path)
            mask = np.asarray(_get(result, "mask"))
            assert mask.shape == bgr.shape[:2], f"{path.name}: mask {mask.shape} vs image {bgr.shape[:2]}"
            assert mask.dtype == np.uint8
            ref = reference_mask(xml, bgr, precision=self.precision(xml))
            assert np.array_equal(mask, ref), f"{path.name}: {(mask != ref).mean():.4%} pixels differ"
            assert 0.0 < (mask > 0).mean() < 1.0  # the test models give non-trivial masks

    @pytest.mark.parametrize("which", CONTRACT_IRS)
    def test_masks_equal_the_reference_in_order(self, which, request, kvasir_images):
        if which not in self.IRS:
            pytest.skip(f"{type(self).__name__} does not serve {which}")
        xml = request.getfixturevalue(which)
        images = self._images(kvasir_images)
        self._check_masks(xml, images, self.segment(xml, images))

    @pytest.mark.parametrize("which", ["binary_ir", "multiclass_ir", "threshold_ir", "letterbox_ir"])
    def test_probabilities_agree_with_mask_and_reference(self, which, request, kvasir_images):
        if which not in self.IRS or not self.probabilities:
            pytest.skip(f"{type(self).__name__} does not return probabilities for {which}")
        xml = request.getfixturevalue(which)
        images = self._images(kvasir_images)[:2]
        results = self.segment(xml, images, return_probabilities=True)
        self._check_masks(xml, images, results)
        for path, result in zip(images, results):
            probs = np.asarray(_get(result, "probabilities"))
            mask = np.asarray(_get(result, "mask"))
            ref = reference_probabilities(xml, read_image(path), precision=self.precision(xml))
            assert probs.shape == ref.shape and probs.dtype == np.float32
            np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
            np.testing.assert_allclose(probs, ref, atol=1e-4)
            if probs.shape[0] == 2:  # binary: the mask is the exported threshold on the probability
                assert np.array_equal(mask, (probs[1] > reference_threshold(xml)).astype(np.uint8))
            else:
                assert np.array_equal(mask, probs.argmax(axis=0))
