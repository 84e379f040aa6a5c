"""Where a cluster run reads and writes: a local folder or an object store, through ``pyarrow.fs``.

``s3://``, ``gs://`` and ``abfs://`` URIs open the matching pyarrow filesystem, configured by the
standard environment of the process that opens it (``AWS_ACCESS_KEY_ID`` and friends,
``AWS_ENDPOINT_URL`` for S3-compatible servers such as MinIO; ``GOOGLE_APPLICATION_CREDENTIALS``;
``AZURE_STORAGE_ACCOUNT_NAME``...). Workers open the same URI themselves, so every node needs the
same environment (as with any Ray Data job). Anything else is a local path.

Local files are written atomically (temporary name in the same folder, then rename); objects are
written in one upload, which an object store makes visible all at once.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError

#: URI schemes handed to ``pyarrow.fs.FileSystem.from_uri``.
REMOTE_SCHEMES = ("s3", "gs", "gcs", "abfs", "abfss", "az", "hdfs")


def is_uri(spec: str | os.PathLike) -> bool:
    """True for ``scheme://...`` with a remote scheme (``file://`` counts as local)."""
    text = str(spec)
    return "://" in text and text.split("://", 1)[0].lower() in REMOTE_SCHEMES


@dataclass(frozen=True)
class Location:
    """A folder or file: its user-facing ``uri`` and, for remote ones, the filesystem path.

    Local locations are absolute, resolved paths (symlinks followed), so two spellings of one
    folder are one location. ``filesystem()`` opens the pyarrow filesystem (cheap; call it where
    the I/O happens: on the driver for listing, on each worker for its own reads and writes).
    """

    uri: str
    path: str  # local: absolute path; remote: the filesystem path (bucket/key...)
    remote: bool

    @classmethod
    def of(cls, spec: str | os.PathLike) -> Location:
        text = str(spec)
        if is_uri(text):
            fs, path = _from_uri(text)
            del fs
            return cls(text.rstrip("/"), path.rstrip("/"), True)
        text = text.removeprefix("file://")
        local = Path(text).expanduser().resolve()
        return cls(str(local), str(local), False)

    def filesystem(self) -> Any:
        import pyarrow.fs as pafs

        if not self.remote:
            return pafs.LocalFileSystem()
        return _from_uri(self.uri)[0]

    def join(self, rel: str) -> str:
        """The filesystem path of ``rel`` under this folder."""
        return posixpath.join(self.path, rel) if self.remote else os.path.join(self.path, rel)

    def uri_of(self, rel: str) -> str:
        return f"{self.uri}/{rel}"

    @property
    def local_path(self) -> Path:
        if self.remote:
            raise ValueError(f"{self.uri} is not local")
        return Path(self.path)


def _from_uri(uri: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises ArrowInvalid, ArrowNotImplementedError, OSError
        raise InputFileError(f"Cannot open {uri}: {exc} (credentials and endpoint come from the standard "
                             "environment, e.g. AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL).") from None


class Store:
    """Reads and writes files under one output ``Location`` (on the driver or on a worker)."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.fs = location.filesystem()

    def write(self, rel: str, data: bytes) -> None:
        """One file, atomically: temporary name + rename locally, one upload on an object store."""
        if not self.location.remote:
            from attnseg.runtime.outputs import write_file_atomic

            path = self.location.join(rel)
            if not os.path.isdir(os.path.dirname(path)):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            write_file_atomic(path, data)
            return
        path = self.location.join(rel)
        try:
            with self.fs.open_output_stream(path) as fh:
                fh.write(data)
        except OSError as exc:
            raise InputFileError(f"Cannot write {self.location.uri_of(rel)}: {exc}.") from None

    def read(self, rel: str) -> bytes | None:
        """A file's bytes, or None when it does not exist."""
        try:
            with self.fs.open_input_stream(self.location.join(rel)) as fh:
                return fh.readall()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "not found" in str(exc).lower() or "does not exist" in str(exc).lower():
                return None
            raise InputFileError(f"Cannot read {self.location.uri_of(rel)}: {exc}.") from None

    def list(self, rel: str = "", recursive: bool = True) -> list[tuple[str, int]]:
        """(relative path, size) of the files under ``rel`` (nothing when it does not exist)."""
        import pyarrow.fs as pafs

        base = self.location.join(rel) if rel else self.location.path
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=recursive, allow_not_found=True))
        except OSError as exc:
            raise InputFileError(f"Cannot list {self.location.uri_of(rel) if rel else self.location.uri}: "
                                 f"{exc}.") from None
        root = self.location.path.rstrip("/") + "/"
        return [(i.path.removeprefix(root), i.size or 0)
                for i in infos if i.type == pafs.FileType.File]

    def exists(self) -> bool:
        import pyarrow.fs as pafs

        info = self.fs.get_file_info(self.location.path)
        return info.type != pafs.FileType.NotFound

    def delete(self, rel: str) -> None:
        try:
            self.fs.delete_file(self.location.join(rel))
        except (FileNotFoundError, OSError):
            pass

    def clear(self) -> None:
        """Remove everything under the location (``--force``)."""
        if not self.location.remote:
            import shutil

            shutil.rmtree(self.location.path, ignore_errors=False)
            return
        try:
            self.fs.delete_dir_contents(self.location.path, missing_dir_ok=True)
        except OSError as exc:
            raise InputFileError(f"Cannot empty {self.location.uri}: {exc}.") from None

    def make_folders(self, names: list[str]) -> None:
        """Local: create ``names`` (object stores have no folders)."""
        if self.location.remote:
            return
        try:
            for name in names:
                Path(self.location.join(name)).mkdir(parents=True, exist_ok=True)
            Path(self.location.path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputFileError(f"Cannot create output folder {self.location.path}: {exc.strerror}.") from None
