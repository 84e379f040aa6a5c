"""Where frames come from: one image, a folder of images, a video file or a camera.

Each source yields ``(name, image)`` pairs ready for ``Segmenter.stream``: file paths for
images (decoded by the runtime, so a corrupt file is reported by name) and BGR frames for
video and cameras.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2

from attnseg.errors import InputFileError, InvalidOptionError
from attnseg.imaging import IMAGE_SUFFIXES, check_pixels, list_images

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass
class FrameSource:
    """An iterable of ``(name, image)``; ``length`` is known for images, folders and most videos."""

    kind: str  # image | folder | video | camera
    description: str
    length: int | None
    fps: float | None
    _frames: Callable[[], Iterator[tuple[str, Any]]] = field(repr=False)

    @property
    def is_video(self) -> bool:
        return self.kind in ("video", "camera")

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return self._frames()


def open_source(spec: str | Path | int, max_frames: int | None = None) -> FrameSource:
    """An image, folder, video file or camera index (``0`` or ``"0"``) as a ``FrameSource``."""
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        # 0 would read nothing and -1 would slice off the last image: neither is what was meant
        raise InvalidOptionError(f"max_frames (--max-frames) must be a positive integer, got {max_frames!r}; "
                                 "leave it out to read every frame.")
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit()
                                 and not Path(spec).exists()):
        return _camera(int(spec), max_frames)
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputFileError(f"Input {path} does not exist (give an image, a folder, a video or a camera index).")
    if path.is_dir():
        images = list_images(path)
        if not images:
            raise InputFileError(f"Folder {path} has no images ({', '.join(IMAGE_SUFFIXES)}).")
        if max_frames is not None:
            images = images[:max_frames]
        return FrameSource("folder", str(path), len(images), None,
                           lambda: ((p.name, p) for p in images))
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return _video(path, max_frames)
    if suffix in IMAGE_SUFFIXES:
        return FrameSource("image", str(path), 1, None, lambda: iter([(path.name, path)]))
    raise InputFileError(
        f"{path} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video ({', '.join(VIDEO_SUFFIXES)})."
    )


def probe_video(path: Path, walk_limit: int | None = 0) -> tuple[int | None, float | None]:
    """(frame count, fps) of a video file from its header, each None when it does not say.
    ``walk_limit``: when the header has no count, count frames by grabbing them, up to this
    many (None: all; 0, the default: do not walk)."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputFileError(f"Video {path} cannot be opened (corrupt or unsupported codec).")
        check_frame_size(cap, f"Video {path}")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or None
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count <= 0 and walk_limit != 0:  # container without a frame count: walk it once
            while (walk_limit is None or count < walk_limit) and cap.grab():
                count += 1
    finally:
        cap.release()
    return (count or None), fps


def check_frame_size(cap: Any, source: str) -> None:
    """The frame size an opened capture announces, against the runtime's pixel limit
    (``imaging.check_pixels``): a 16K stream is refused before its first frame is decoded."""
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    if w > 0 and h > 0:
        check_pixels(h, w, source)


def _video(path: Path, max_frames: int | None) -> FrameSource:
    count, fps = probe_video(path)
    if count is not None and max_frames is not None:
        count = min(count, max_frames)
    return FrameSource("video", str(path), count, fps,
                       lambda: _read_frames(lambda: cv2.VideoCapture(str(path)), str(path), max_frames, count))


def _camera(index: int, max_frames: int | None) -> FrameSource:
    cap = cv2.VideoCapture(index)
    try:
        if not cap.isOpened():
            raise InputFileError(f"Camera {index} cannot be opened (is it connected and free?).")
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or None
    finally:
        cap.release()
    return FrameSource("camera", f"camera {index}", max_frames, fps,
                       lambda: _read_frames(lambda: cv2.VideoCapture(index), f"camera {index}", max_frames))


def _read_frames(opener: Callable[[], Any], what: str, max_frames: int | None,
                 expected: int | None = None) -> Iterator[tuple[str, Any]]:
    """Frames of a capture; a video that ends before the frame count its header announces is
    reported (a truncated file must not pass for a short one)."""
    cap = opener()
    try:
        if not cap.isOpened():
            raise InputFileError(f"{what} cannot be opened.")
        i = 0
        while max_frames is None or i < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            yield f"frame_{i:06d}", frame
            i += 1
        if i == 0:
            raise InputFileError(f"{what} has no readable frames.")
        if expected is not None and i < expected and (max_frames is None or i < max_frames):
            log.warning("%s: read %d of the %d frames its header announces; the file is truncated or damaged "
                        "after frame %d. Results cover the first %d frames only.", what, i, expected, i, i)
    finally:
        cap.release()
