"""What ``seg-infer`` writes for each image, defined once.

The local command and the Ray path (``attnseg.cluster``) both render and encode through these
functions, with the model's ``ModelCodec`` for the mask encoding and the overlay, so their files
are the same byte for byte. An output folder for image inputs holds

    masks/<stem>.png              binary models: 0/255; multiclass: class ids
    overlays/<stem>.jpg           class colours and outlines over the image
    attention/<stem>_<gate>.jpg   attention heatmaps (when asked for)
    summary.json                  the run's summary and one entry per image

Video and camera inputs write ``masks/frame_NNNNNN.png`` and ``overlay.mp4`` instead of
``overlays/``. numpy + OpenCV only.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from attnseg.errors import InputFileError
from attnseg.runtime import overlay
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.result import SegmentationResult

SUMMARY_NAME = "summary.json"


@dataclass(frozen=True)
class OutputOptions:
    """Which pictures to write per image, and the overlay's opacity."""

    masks: bool = True
    overlays: bool = True
    attention: bool = False
    alpha: float = 0.45

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.alpha) <= 1.0:
            raise InputFileError(f"overlay alpha must be between 0 and 1, got {self.alpha}.")

    def folders(self, video: bool = False) -> list[str]:
        """Sub-folders an output folder gets (videos write overlays as ``overlay.mp4``)."""
        names = ["masks"] if self.masks else []
        if not video and self.overlays:
            names.append("overlays")
        if not video and self.attention:
            names.append("attention")
        return names


def output_stem(source: str, video: bool = False) -> str:
    """File stem of an image's outputs: the image's own stem, or the frame name for videos."""
    return source if video else Path(source).stem


def render(result: SegmentationResult, image: np.ndarray, options: OutputOptions,
           codec: ModelCodec) -> dict[str, np.ndarray]:
    """The pictures for one result of ``codec``'s model: ``mask``, ``overlay`` and
    ``attention_<gate>`` (as asked)."""
    pictures: dict[str, np.ndarray] = {}
    if options.masks:
        pictures["mask"] = codec.mask_picture(result.mask)
    if options.overlays:
        pictures["overlay"] = codec.overlay(image, result.mask, alpha=options.alpha)
    if options.attention:
        for name, amap in result.attention.items():
            pictures[f"attention_{name}"] = overlay.heatmap(amap, image)
    return pictures


def relative_path(kind: str, stem: str) -> str:
    """Where a picture of ``kind`` (``mask``, ``overlay``, ``attention_<gate>``) goes in OUT."""
    if kind == "mask":
        return f"masks/{stem}.png"
    if kind == "overlay":
        return f"overlays/{stem}.jpg"
    if kind.startswith("attention_"):
        return f"attention/{stem}_{kind.removeprefix('attention_')}.jpg"
    raise ValueError(f"unknown output kind {kind!r}")


def encode(picture: np.ndarray, relpath: str) -> bytes:
    """Encode a picture in the format its file name says (``.png`` lossless, ``.jpg`` OpenCV default)."""
    ok, buf = cv2.imencode(Path(relpath).suffix, picture)
    if not ok:
        raise InputFileError(f"OpenCV cannot encode {relpath}.")
    return buf.tobytes()


def encode_image_outputs(result: SegmentationResult, image: np.ndarray, options: OutputOptions,
                         codec: ModelCodec, stem: str | None = None) -> dict[str, bytes]:
    """Every file one image input produces, as ``{relative path: bytes}``."""
    stem = output_stem(result.source or "image") if stem is None else stem
    files = {}
    for kind, picture in render(result, image, options, codec).items():
        rel = relative_path(kind, stem)
        files[rel] = encode(picture, rel)
    return files


def write_file_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write under a temporary name in the same folder, then rename: never a half-written file.

    The temporary is named as ``attnseg.atomic`` names them (``.NAME.<pid>.<random>.tmp``), so
    ``atomic.sweep_stale`` removes what a killed writer left; unlike ``atomic_file`` it does not
    sweep the folder on every call (a folder of masks can hold thousands of files).
    """
    from attnseg.atomic import disk_full_guard, honour_umask

    path = Path(path)
    with disk_full_guard(path.parent, path):
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        except OSError as exc:
            raise InputFileError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            honour_umask(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise InputFileError(f"Cannot write {path}: {exc.strerror or exc}.") from None


def write_files(folder: str | os.PathLike, files: Mapping[str, bytes]) -> None:
    """Write ``{relative path: bytes}`` under ``folder``, each file atomically."""
    folder = Path(folder)
    for rel, data in files.items():
        write_file_atomic(folder / rel, data)


def run_summary(summaries: Sequence[Mapping[str, Any]], latencies: Sequence[float], wall: float,
                classes: Sequence[str], skipped: Sequence[str]) -> dict[str, Any]:
    """The ``summary`` block of ``summary.json``: counts, speed, latency, class totals."""
    lat = np.asarray(latencies, dtype=np.float64)
    totals: dict[str, int] = {}
    for s in summaries:
        for k, v in s["class_pixel_counts"].items():
            totals[k] = totals.get(k, 0) + int(v)
    return {
        "frames": len(summaries),
        "seconds": round(wall, 3),
        "fps": round(len(summaries) / wall, 3) if wall > 0 else 0.0,
        "latency_ms_median": round(float(np.median(lat)), 3),
        "latency_ms_p90": round(float(np.percentile(lat, 90)), 3),
        "mean_foreground_fraction": round(float(np.mean([s["foreground_fraction"] for s in summaries])), 6),
        "class_pixel_counts": totals,
        "classes": list(classes),
        "skipped": list(skipped),
    }


def write_report(folder: str | os.PathLike, report: Mapping[str, Any]) -> Path:
    """``summary.json`` (sorted keys, indented), written atomically."""
    path = Path(folder) / SUMMARY_NAME
    write_file_atomic(path, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    return path


__all__ = ["SUMMARY_NAME", "OutputOptions", "encode", "encode_image_outputs", "output_stem",
           "relative_path", "render", "run_summary", "write_file_atomic", "write_files", "write_report"]
