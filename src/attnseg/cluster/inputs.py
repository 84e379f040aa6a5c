"""What a cluster run segments: a folder, a glob, a text file of paths, one image, or a video.

Local paths and ``s3://`` / ``gs://`` / ``abfs://`` URIs alike (``attnseg.cluster.storage``). The
driver lists names and paths only; Ray Data's ``read_binary_files`` reads the bytes on the
workers. A (local) video is cut into frame ranges; each worker opens the file, seeks to its
range's first frame and decodes the range itself. Frame names are the ones local ``seg-infer``
gives (``frame_000123``), whatever range they fall in.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from attnseg.cluster.storage import Location, is_uri
from attnseg.errors import InputFileError
from attnseg.imaging import IMAGE_SUFFIXES
from attnseg.runtime.output_names import check_output_names
from attnseg.runtime.sources import VIDEO_SUFFIXES, probe_video

_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class Unit:
    """One frame of a video: ``key`` names it in the manifest and in OUT."""

    key: str
    path: str
    frame: int | None = None


@dataclass
class InputPlan:
    """The input's files (or a video's frames), in order, and how to describe the input.

    ``paths`` are paths of ``root``'s filesystem (``bucket/key`` for object stores); the key of
    each image (its manifest and output name) is its file name.
    """

    kind: str  # folder | glob | list | image | video
    description: str
    root: str | None  # the URI whose filesystem holds ``paths`` (None: local)
    paths: list[str] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)  # videos only
    fps: float | None = None
    identity: str | None = None  # videos: "size:mtime_ns" of the file

    @property
    def is_video(self) -> bool:
        return self.kind == "video"

    @property
    def total(self) -> int:
        return len(self.units) if self.is_video else len(self.paths)

    def filesystem(self):
        return Location.of(self.root).filesystem() if self.root else _local_fs()


def _local_fs():
    import pyarrow.fs as pafs

    return pafs.LocalFileSystem()


def key_of(path: str) -> str:
    """The manifest and output name of an input file: its file name."""
    return posixpath.basename(path.rstrip("/"))


def plan_inputs(spec: str | Path, max_frames: int | None = None) -> InputPlan:
    """List the images (or frames) of ``spec``; one ``InputFileError`` when it names nothing."""
    text = str(spec)
    plan = _remote_plan(text) if is_uri(text) else _local_plan(text, max_frames)
    if max_frames is not None and not plan.is_video:
        plan.paths = plan.paths[:max_frames]
    if not plan.is_video:
        check_output_names((key_of(p), _shown(plan, p)) for p in plan.paths)
    return plan


def _shown(plan: InputPlan, path: str) -> str:
    if plan.root is None:
        return path
    scheme = plan.root.split("://", 1)[0]
    return f"{scheme}://{path}"


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


# ---------------------------------------------------------------------- local
def _local_plan(text: str, max_frames: int | None) -> InputPlan:
    text = text.removeprefix("file://")
    path = Path(text).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if _is_image(p.name) and p.is_file())
        if not files:
            raise InputFileError(f"Folder {path} has no images ({', '.join(IMAGE_SUFFIXES)}).")
        return InputPlan("folder", str(path), None, _absolute(files))
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return _video_plan(path, max_frames)
    if path.is_file() and _is_image(path.name):
        return InputPlan("image", str(path), None, _absolute([path]))
    if path.is_file():
        return _list_plan(str(path), _read_local_text(path), None)
    if any(c in text for c in _GLOB_CHARS):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in files if p.is_file() and _is_image(p.name)]
        if not files:
            raise InputFileError(f"The pattern {text} matches no images ({', '.join(IMAGE_SUFFIXES)}).")
        return InputPlan("glob", text, None, _absolute(files))
    raise InputFileError(
        f"Input {path} does not exist (give a folder, a glob, a text file of image paths, an image "
        "or a video; or an s3://, gs:// or abfs:// URI of one)."
    )


def _absolute(files: list[Path]) -> list[str]:
    # Absolute, symlinks kept: a file is read where the user pointed (its name is the key).
    return [os.path.abspath(p) for p in files]


def _read_local_text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path} is not a text file of image paths ({exc}).") from None


def _list_plan(where: str, text: str, root: str | None) -> InputPlan:
    """A text file with one image path per line (relative to the file's folder); # starts a comment.

    Entries live on the list's own filesystem (a local list names local files; an S3 list names
    keys of its bucket, or full s3:// URIs of the same store).
    """
    folder = posixpath.dirname(_fs_path(where, root)) if root else os.path.dirname(os.path.abspath(where))
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if root is None:
            if is_uri(line):
                raise InputFileError(f"{where} is a local list but names {line}; list local paths only, or "
                                     "put the list in the same store as its images.")
            p = os.path.expanduser(line)
            paths.append(p if os.path.isabs(p) else os.path.abspath(os.path.join(folder, p)))
        elif is_uri(line):
            if line.split("://", 1)[0] != root.split("://", 1)[0]:
                raise InputFileError(f"{where} names {line}: one run reads one store; list it in its own run.")
            paths.append(line.split("://", 1)[1])
        else:
            paths.append(posixpath.normpath(posixpath.join(folder, line)))
    if not paths:
        raise InputFileError(f"{where} lists no image paths (one per line).")
    return InputPlan("list", where, root, paths)


def _video_plan(path: Path, max_frames: int | None) -> InputPlan:
    count, fps = probe_video(path, walk_limit=max_frames)  # frames are planned up front: walk if need be
    count = count or 0
    if max_frames is not None:
        count = min(count, max_frames)
    if count == 0:
        raise InputFileError(f"Video {path} has no readable frames.")
    resolved = str(path.resolve())
    st = os.stat(resolved)
    return InputPlan("video", str(path), None, units=[Unit(f"frame_{i:06d}", resolved, i) for i in range(count)],
                     fps=fps, identity=f"{st.st_size}:{st.st_mtime_ns}")


# ---------------------------------------------------------------------- object stores
def _fs_path(uri: str, root: str | None = None) -> str:
    return uri.split("://", 1)[1].rstrip("/") if "://" in uri else uri


def _remote_plan(uri: str) -> InputPlan:
    import pyarrow.fs as pafs

    loc = Location.of(uri)
    fs = loc.filesystem()
    if os.path.splitext(loc.path)[1].lower() in VIDEO_SUFFIXES:
        raise InputFileError(f"{uri}: videos are read from local files on the cluster; copy it to a path every "
                             "node can read, or run local seg-infer on it.")
    if any(c in loc.path for c in _GLOB_CHARS):
        return _remote_glob(uri, loc, fs)
    try:
        info = fs.get_file_info(loc.path)
    except OSError as exc:
        raise InputFileError(f"Cannot read {uri}: {exc}.") from None
    if info.type == pafs.FileType.File:
        if _is_image(loc.path):
            return InputPlan("image", uri, uri, [loc.path])
        with fs.open_input_stream(loc.path) as fh:
            data = fh.readall()
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise InputFileError(f"{uri} is not a text file of image paths.") from None
        return _list_plan(uri, text, uri)
    files = _list(fs, loc.path, recursive=False)
    images = sorted(p for p in files if _is_image(p))
    if not images:
        if info.type == pafs.FileType.NotFound and not files:
            raise InputFileError(f"Input {uri} does not exist (give a folder, a glob, a text file of image "
                                 "paths or an image).")
        raise InputFileError(f"Folder {uri} has no images ({', '.join(IMAGE_SUFFIXES)}).")
    return InputPlan("folder", uri, uri, images)


def _remote_glob(uri: str, loc: Location, fs) -> InputPlan:
    cut = min(loc.path.index(c) for c in _GLOB_CHARS if c in loc.path)
    base = loc.path[:cut].rsplit("/", 1)[0]
    pattern = loc.path
    files = sorted(p for p in _list(fs, base, recursive=True) if fnmatch.fnmatchcase(p, pattern) and _is_image(p))
    if not files:
        raise InputFileError(f"The pattern {uri} matches no images ({', '.join(IMAGE_SUFFIXES)}).")
    return InputPlan("glob", uri, uri, files)


def _list(fs, path: str, recursive: bool) -> list[str]:
    import pyarrow.fs as pafs

    try:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=recursive, allow_not_found=True))
    except OSError as exc:
        raise InputFileError(f"Cannot list {path}: {exc}.") from None
    return [i.path for i in infos if i.type == pafs.FileType.File]
