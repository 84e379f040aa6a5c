"""The embeddable runtime: exported IR in, masks out. Needs only openvino, numpy and OpenCV.

    from attnseg.runtime import Segmenter
    seg = Segmenter("model.xml", device="CPU")
    result = seg.predict("polyp.jpg")          # result.mask: HxW class ids at the image size
    for r in Segmenter("model.xml", hint="throughput").stream(paths):
        ...                                    # ordered results, requests run in parallel
    TiledSegmenter(seg, TileOptions(overlap=0.25)).predict("large.png")  # sliding window, blended

Never imports torch, nncf or onnx (a test runs it with those imports blocked).
"""

from attnseg.runtime import overlay
from attnseg.runtime.remote import RemoteError, RemoteSegmenter
from attnseg.runtime.result import SegmentationResult, StageTimings
from attnseg.runtime.segmenter import Hint, Segmenter
from attnseg.runtime.sources import FrameSource, open_source
from attnseg.runtime.tiler import Blend, TiledSegmenter, TileOptions

__all__ = [
    "Blend", "FrameSource", "Hint", "RemoteError", "RemoteSegmenter", "SegmentationResult", "Segmenter",
    "StageTimings", "TileOptions", "TiledSegmenter", "open_source", "overlay",
]
