"""Write files and folders under a temporary name, then rename: nothing half-written, nothing lost.

Four rules every writer of attnseg output follows through this module:

- **temporary names carry the writer's PID** (``.NAME.<pid>.<random>.tmp``), so the next run
  can remove what a killed (SIGKILL) process left and never touches a live writer's work;
- **one writer per output**: an exclusive ``fcntl.flock`` on ``.NAME.lock`` beside the output;
  a second process asking for the same output fails at once, naming the holder, instead of
  silently replacing (or being replaced by) the first one's work; every writer removes the
  temporaries and unheld locks that killed writers left in its output's folder;
- **outputs honour the umask** like any other tool (``tempfile`` makes 0700 folders and 0600
  files; they are widened to what ``mkdir`` / ``open`` would have made);
- **a full disk is named as such**: whatever a library raises while writing (OpenVINO's
  ``basic_ios::clear``, an ONNX exporter error), when the file system is out of space the
  error says "no space left on device".
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from attnseg.errors import AttnsegError, InputFileError, OutputExistsError

#: ``.NAME.<pid>.<random>.tmp``: what ``temp_path`` creates and ``sweep_stale`` may remove.
_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]{8}\.tmp$")
#: ``.NAME.lock``: what ``output_lock`` creates (empty, or the holder's PID).
_LOCK_RE = re.compile(r"^\..+\.lock$")
#: Below this many free bytes a failed write is blamed on the full disk.
_FULL_BELOW = 1 << 20


class DiskFullError(AttnsegError):
    """The file system ran out of space while an output was written."""


class OutputBusyError(OutputExistsError):
    """Another process is writing the same output right now."""


# ------------------------------------------------------------------------------ permissions


def current_umask() -> int:
    """The process umask, read without changing it (Linux ``/proc``), else set-and-restore."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a plain ``mkdir`` / ``open`` would have (0777 / 0666 minus umask)."""
    path = Path(path)
    base = 0o777 if path.is_dir() else 0o666
    with contextlib.suppress(OSError):
        os.chmod(path, base & ~current_umask())


# ------------------------------------------------------------------------ temporaries, stale ones


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists (also when it belongs to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(folder: str | os.PathLike) -> list[Path]:
    """Remove ``.NAME.<pid>.<random>.tmp`` entries in ``folder`` whose process is dead, and
    ``.NAME.lock`` files nobody holds (a killed writer's).

    A live PID (this process, another writer, or an unrelated process that reused the PID)
    keeps its temporaries: a leftover is only removed when nobody can be using it.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _LOCK_RE.match(entry.name) and _remove_if_unheld(Path(entry.path)):
            removed.append(Path(entry.path))
            continue
        m = _TEMP_RE.match(entry.name)
        if not m or pid_alive(int(m.group(1))):
            continue
        path = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
    return removed


def _remove_if_unheld(lock: Path) -> bool:
    """Unlink an attnseg lock file (empty or a PID) that no process holds, holding it meanwhile;
    a writer that opened it just before retries on the new file (``output_lock``)."""
    import fcntl

    try:
        if not lock.is_file() or lock.is_symlink() or lock.stat().st_size > 32:
            return False
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        if text and not text.isdigit():
            return False  # not a lock attnseg wrote
        os.unlink(lock)
        return True
    except OSError:  # held (BlockingIOError) or gone
        return False
    finally:
        os.close(fd)


def temp_path(folder: str | os.PathLike, name: str, *, directory: bool) -> Path:
    """A new empty temporary file or folder ``folder/.NAME.<pid>.<random>.tmp`` (umask honoured).

    Stale temporaries of dead processes in ``folder`` are removed first.
    """
    folder = Path(folder)
    sweep_stale(folder)
    prefix, suffix = f".{name}.{os.getpid()}.", ".tmp"
    with disk_full_guard(folder):
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder))
        else:
            fd, raw = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
            os.close(fd)
            tmp = Path(raw)
    honour_umask(tmp)
    return tmp


# ------------------------------------------------------------------------------------ locking


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` (``.NAME.lock`` beside it) for the block.

    Raises ``OutputBusyError`` at once if another process holds it. The lock file is removed on
    release; a lock taken on a file another process has just removed is retried, so two
    writers never both hold "the" lock.
    """
    import fcntl
    import time

    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    sweeps = 0
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666 & ~current_umask())
        except OSError as exc:
            raise InputFileError(f"Cannot create the lock {lock}: {exc.strerror}.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            if (not holder or not pid_alive(int(holder))) and sweeps < 50:
                sweeps += 1  # held for a moment by another writer's sweep of a dead writer's lock
                time.sleep(0.01)
                continue
            who = f" (process {holder})" if holder else ""
            raise OutputBusyError(
                f"Another attnseg process{who} is writing {path} right now; wait for it to finish "
                "or choose another output."
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed that file as we locked it: take the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        sweep_stale(path.parent)  # every write clears what killed writers left beside it
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        return str(int(os.pread(fd, 32, 0).decode().strip()))
    return ""


# ---------------------------------------------------------------------------------- full disk


def free_bytes(folder: str | os.PathLike) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def is_disk_full(exc: BaseException, folder: str | os.PathLike) -> bool:
    """``exc`` is, or was very probably caused by, the file system under ``folder`` being full."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    free = free_bytes(folder)
    return free is not None and free < _FULL_BELOW


@contextlib.contextmanager
def disk_full_guard(folder: str | os.PathLike, what: str | os.PathLike | None = None) -> Iterator[None]:
    """Turn any failure while writing under ``folder`` on a full file system into ``DiskFullError``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if is_disk_full(exc, folder):
            free = free_bytes(folder)
            left = f" ({free // 1024} KiB left)" if free is not None else ""
            raise DiskFullError(
                f"No space left on device while writing {what or folder}{left}; free some space or "
                "write to another disk. Nothing was left behind."
            ) from None
        raise


# --------------------------------------------------------------------------- atomic outputs


def check_output_dir(path: str | os.PathLike, force: bool) -> None:
    """The checks ``atomic_dir`` makes, made up front (before minutes of work instead of after)."""
    path = Path(path)
    if path.exists() and not path.is_dir():  # said first: --force would not help
        raise InputFileError(f"{path} is a file; give a folder name for the output.")
    if path.exists() and not force:
        raise OutputExistsError(f"{path} already exists; pass --force to replace it.")
    if path.is_dir() and os.path.ismount(path):
        raise InputFileError(
            f"{path} is a mount point: attnseg replaces an output folder by renaming a finished copy "
            "over it, which a mount point does not allow. Write to a folder inside it instead."
        )
    check_creatable(path)


def check_creatable(path: str | os.PathLike, what: str = "", inside: bool = False) -> None:
    """``path`` can be made: its nearest existing ancestor is a folder we may write in. With
    ``inside`` an existing ``path`` itself must be writable (a run folder written in place)."""
    path = Path(path)
    parent = path if inside else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputFileError(f"Cannot create {what}{path}: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputFileError(f"Cannot create {what}{path}: {parent} is not writable.")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only on success."""
    path = Path(path)
    _check_writable(path.parent)
    tmp_path = temp_path(path.parent, path.name, directory=False)
    try:
        with disk_full_guard(path.parent, path):
            yield tmp_path
            honour_umask(tmp_path)
            os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    An existing ``path`` is refused unless ``force``; with ``force`` it is only removed
    once the new content is complete. While the block runs, ``path`` is locked: a second
    writer fails at once (``OutputBusyError``), and one that finds ``path`` already written
    by another fails too (``OutputExistsError``) - never two "successes" for one folder.
    """
    path = Path(path)
    check_output_dir(path, force)
    _make_parent(path)
    _check_writable(path.parent)
    with output_lock(path):
        check_output_dir(path, force)  # written by someone else while we waited for the lock?
        tmp = temp_path(path.parent, path.name, directory=True)
        try:
            with disk_full_guard(path.parent, path):
                yield tmp
                _publish(tmp, path, force)
        except DiskFullError as exc:  # a file inside was named by its temporary path: name the output
            raise DiskFullError(str(exc).replace(str(tmp), str(path))) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, path: Path, force: bool) -> None:
    if path.exists():
        if not force:  # cannot happen under the lock, unless a non-attnseg process made it
            raise OutputExistsError(f"{path} appeared while it was being written; pass --force to replace it.")
        old = temp_path(path.parent, f"{path.name}.old", directory=True)
        os.rmdir(old)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, path)


def make_folder(path: str | os.PathLike, what: str) -> Path:
    """Create folder ``path`` with its parents unless it exists; ``what`` names it in the error
    ("model cache folder"): a file in its place or an uncreatable path is one clear message."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InputFileError(f"{what[:1].upper()}{what[1:]} {folder} exists and is not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create {what} {folder}: {exc.strerror}.") from None
    return folder


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create output folder {path.parent}: {exc.strerror}.") from exc


def _check_writable(folder: Path) -> None:
    if not folder.is_dir():
        raise InputFileError(f"Output folder {folder} does not exist.")
    if not os.access(folder, os.W_OK):
        raise InputFileError(f"Output folder {folder} is not writable.")
