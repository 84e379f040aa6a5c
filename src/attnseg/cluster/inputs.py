"""What a cluster run segments: a folder, a glob, a text file of paths, one image, or a video.

The driver only lists names and paths; workers read and decode (paths travel, not pixels).
A video is cut into frame ranges; each worker opens the file, seeks to its range's first frame
and decodes the range itself, so frames never cross the network either. Frame names are the
ones local ``seg-infer`` gives (``frame_000123``), whatever range they fall in.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from attnseg.errors import InputFileError
from attnseg.imaging import IMAGE_SUFFIXES, list_images
from attnseg.runtime.outputs import output_stem
from attnseg.runtime.sources import VIDEO_SUFFIXES, probe_video

_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Unit:
    """One image, or one frame of a video: ``key`` names it in the manifest and in OUT."""

    key: str
    path: str
    frame: int | None = None  # frame index for videos


@dataclass
class InputPlan:
    """Every unit of the input in order, and how to describe the input."""

    kind: str  # folder | glob | list | image | video
    description: str
    units: list[Unit]
    fps: float | None = None

    @property
    def is_video(self) -> bool:
        return self.kind == "video"


def plan_inputs(spec: str | Path, max_frames: int | None = None) -> InputPlan:
    """List the images (or frames) of ``spec``; one ``InputFileError`` when it names nothing."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        files = list_images(path)
        if not files:
            raise InputFileError(f"Folder {path} has no images ({', '.join(IMAGE_SUFFIXES)}).")
        plan = InputPlan("folder", str(path), _image_units(files))
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        plan = _video_plan(path, max_frames)
    elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        plan = InputPlan("image", str(path), _image_units([path]))
    elif path.is_file():
        plan = InputPlan("list", str(path), _image_units(_read_list(path)))
    elif any(c in text for c in _GLOB_CHARS):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in files if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            raise InputFileError(f"The pattern {text} matches no images ({', '.join(IMAGE_SUFFIXES)}).")
        plan = InputPlan("glob", text, _image_units(files))
    else:
        raise InputFileError(
            f"Input {path} does not exist (give a folder, a glob, a text file of image paths, an image "
            "or a video)."
        )
    if max_frames is not None and not plan.is_video:
        plan.units = plan.units[:max_frames]
    return plan


def _image_units(files: list[Path]) -> list[Unit]:
    """Units named as local seg-infer names them (file name); two inputs sharing an output name is an error."""
    units = [Unit(p.name, str(p.resolve())) for p in files]
    seen: dict[str, str] = {}
    for u in units:
        stem = output_stem(u.key)
        if stem in seen:
            raise InputFileError(
                f"{seen[stem]} and {u.path} would both write masks/{stem}.png; rename one or segment "
                "them in separate runs."
            )
        seen[stem] = u.path
    return units


def _read_list(path: Path) -> list[Path]:
    """A text file with one image path per line (relative to the file's folder); # starts a comment."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path} is not a text file of image paths ({exc}).") from None
    files = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        p = Path(line).expanduser()
        files.append(p if p.is_absolute() else path.parent / p)
    if not files:
        raise InputFileError(f"{path} lists no image paths (one per line).")
    return files


def _video_plan(path: Path, max_frames: int | None) -> InputPlan:
    count, fps = probe_video(path, walk_limit=max_frames)  # frames are planned up front: walk if need be
    count = count or 0
    if max_frames is not None:
        count = min(count, max_frames)
    if count == 0:
        raise InputFileError(f"Video {path} has no readable frames.")
    resolved = str(path.resolve())
    return InputPlan("video", str(path), [Unit(f"frame_{i:06d}", resolved, i) for i in range(count)], fps)
