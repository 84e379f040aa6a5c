"""The embeddable runtime: exported IR in, masks out. Needs only openvino, numpy and OpenCV.

    from attnseg.runtime import Segmenter
    seg = Segmenter("model.xml", device="CPU")
    result = seg.predict("polyp.jpg")          # result.mask: HxW class ids at the image size
    for r in Segmenter("model.xml", hint="throughput").stream(paths):
        ...                                    # ordered results, requests run in parallel
    TiledSegmenter(seg, TileOptions(overlap=0.25)).predict("large.png")  # sliding window, blended

Layers: ``OpenVINOAdapter`` (read, device, compile config, request pool, rt_info, async queue)
and ``ModelCodec`` (image -> tensor, outputs -> ``SegmentationResult``, the background rule and
the mask encoding; built from metadata and port shapes, no OpenVINO) -> ``Segmenter`` (the
codec around the adapter) -> front ends (``seg-infer``, the server, the Ray path, the tiler,
``RemoteSegmenter``) that share the Segmenter's codec.

Names are loaded on first use, so ``attnseg.runtime.options`` (``Hint``, ``compile_config``)
imports without openvino; ``RuntimeOptions`` there is what every front end holds.
Never imports torch, nncf or onnx (a test runs it with those
imports blocked).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "FrameSource": "attnseg.runtime.sources",
    "open_source": "attnseg.runtime.sources",
    "Hint": "attnseg.runtime.options",
    "RuntimeOptions": "attnseg.runtime.options",
    "TTA": "attnseg.runtime.options",
    "compile_config": "attnseg.runtime.options",
    "OpenVINOAdapter": "attnseg.runtime.adapter",
    "LiveSegmenter": "attnseg.runtime.live",
    "LiveSource": "attnseg.runtime.live",
    "ModelCodec": "attnseg.runtime.codec",
    "Port": "attnseg.runtime.ports",
    "RemoteError": "attnseg.runtime.remote",
    "RemoteSegmenter": "attnseg.runtime.remote",
    "Segmenter": "attnseg.runtime.segmenter",
    "SegmentationResult": "attnseg.runtime.result",
    "StageTimings": "attnseg.runtime.result",
    "Blend": "attnseg.runtime.tiler",
    "TiledSegmenter": "attnseg.runtime.tiler",
    "TileOptions": "attnseg.runtime.tiler",
}

__all__ = [
    "TTA", "Blend", "FrameSource", "Hint", "LiveSegmenter", "LiveSource", "ModelCodec", "OpenVINOAdapter", "Port",
    "RemoteError", "RemoteSegmenter", "RuntimeOptions", "SegmentationResult", "Segmenter", "StageTimings",
    "TileOptions", "TiledSegmenter", "compile_config", "open_source", "overlay",
]


def __getattr__(name: str) -> Any:
    if name == "overlay":
        return importlib.import_module("attnseg.runtime.overlay")
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'attnseg.runtime' has no attribute {name!r}")
