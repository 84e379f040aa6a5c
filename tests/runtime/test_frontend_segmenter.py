"""The shared front-end contract (frontend_base.py) run on the local Segmenter: ``predict`` one
image at a time, and ``stream`` (the base's default) with many requests in flight."""

from __future__ import annotations

from tests.runtime.frontend_base import FrontEndContract


class TestStreamContract(FrontEndContract):
    """``Segmenter.stream`` (the default ``segment``)."""


class TestPredictContract(FrontEndContract):
    def segment(self, xml, images, return_probabilities=False):
        from attnseg.runtime import Segmenter

        seg = Segmenter(xml)
        return [seg.predict(p, return_probabilities=return_probabilities) for p in images]
