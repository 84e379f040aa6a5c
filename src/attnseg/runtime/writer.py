"""``OutputWriter``: the one writer of a segmentation run's files, below every front end.

seg-infer, the cluster workers and live mode hand it results; it renders them with the model's
``ModelCodec`` (mask encoding, overlay colours, background) through ``attnseg.runtime.outputs``
and writes them: image inputs as one file per picture (atomically), video and camera inputs as
mask PNGs per frame plus one ``<picture>.mp4`` per other picture. The CLI only parses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.errors import InputFileError
from attnseg.runtime import outputs
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.result import SegmentationResult

DEFAULT_FPS = 25.0


class OutputWriter:
    """Writes each result's pictures under ``folder`` (the layout of ``attnseg.runtime.outputs``).

        with OutputWriter(out, seg.codec, OutputOptions(attention=True)) as writer:
            for result in seg.stream(paths):
                writer.write(result, image_of[result.source])
    """

    def __init__(self, folder: str | Path, codec: ModelCodec, options: outputs.OutputOptions | None = None,
                 video: bool = False, fps: float | None = None) -> None:
        self.folder = Path(folder)
        self.codec = codec
        self.options = options or outputs.OutputOptions()
        self.video = bool(video)
        self.fps = float(fps or DEFAULT_FPS)
        self._videos: dict[str, Any] = {}
        self._held: dict[str, np.ndarray] = {}  # the last picture of each video, repeated over dropped frames
        self._next_index = 0
        for name in self.options.folders(self.video):
            (self.folder / name).mkdir(parents=True, exist_ok=True)

    def files(self, result: SegmentationResult, image: np.ndarray) -> dict[str, bytes]:
        """The encoded files of one image input (``{relative path: bytes}``), nothing written:
        what a worker that writes elsewhere (object storage) uploads."""
        return outputs.encode_image_outputs(result, image, self.options, self.codec,
                                            outputs.output_stem(result.source or "image", self.video))

    def write(self, result: SegmentationResult, image: np.ndarray, *, stem: str | None = None,
              index: int | None = None,
              decorate: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Render and write one result (``image``: the BGR picture it was segmented from) and
        return the pictures. ``stem`` names its files (default: from ``result.source``).

        Video only: ``index`` is the frame's position in the input; frames skipped since the
        last call (a live run drops stale ones) repeat the last picture, so the video keeps the
        input's timing as a screen would. ``decorate`` draws on each video picture (a panel).
        """
        stem = stem or outputs.output_stem(result.source or "image", self.video)
        pictures = outputs.render(result, image, self.options, self.codec)
        for kind, picture in pictures.items():
            if self.video and kind != "mask":
                if decorate is not None:
                    picture = pictures[kind] = decorate(picture)
                self._frame(kind, picture, index)
            else:
                rel = outputs.relative_path(kind, stem)
                outputs.write_file_atomic(self.folder / rel, outputs.encode(picture, rel))
        if self.video and index is not None:
            self._next_index = index + 1
        return pictures

    def _frame(self, name: str, frame: np.ndarray, index: int | None = None) -> None:
        import cv2

        writer = self._videos.get(name)
        if writer is None:
            path = self.folder / f"{name}.mp4"
            h, w = frame.shape[:2]
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not writer.isOpened():
                raise InputFileError(f"Cannot write video {path} (OpenCV has no mp4v encoder?).")
            self._videos[name] = writer
        held = self._held.get(name, frame)
        for _ in range(self._next_index, index if index is not None else self._next_index):
            writer.write(held)
        writer.write(frame)
        self._held[name] = frame

    def close(self) -> None:
        """Finish the videos (image files are complete as soon as they are written)."""
        for writer in self._videos.values():
            writer.release()
        self._videos.clear()
        self._held.clear()

    def __enter__(self) -> OutputWriter:  # noqa: PYI034 - not subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DEFAULT_FPS", "OutputWriter"]
