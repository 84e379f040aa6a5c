"""The run folder of ``seg-train``: one writer at a time, nothing left by a run that failed
before its first checkpoint (a bad ``--resume``, an unreadable data set, a model that cannot run),
and a finished run never overwritten unless asked: a training run is the most expensive thing a
user owns. A folder holding one is refused unless the run is continued (``--resume`` of its own
``last.pt``) or replaced (``--force``); a replaced run is moved aside and only deleted once the
new run has a checkpoint of its own, so a forced run that fails early gives the old one back.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from attnseg.atomic import honour_umask, output_lock, sweep_stale, temp_path
from attnseg.errors import InputFileError, ModelConfigError, OutputExistsError

#: What a run writes; any of them in a folder means it holds a run (``split.json`` alone does not:
#: reusing a folder's split is allowed).
RUN_FILES = ("best.pt", "last.pt", "history.json", "history.csv", "curves.png")


def held_run(path: str | Path) -> list[str]:
    """The ``RUN_FILES`` present in ``path``."""
    return [n for n in RUN_FILES if (Path(path) / n).exists()]


def check_not_overwriting(path: str | Path, *, force: bool = False, resume: str | Path | None = None) -> None:
    """Refuse to train into a folder that holds a run, unless it is continued or ``force``."""
    path = Path(path)
    files = held_run(path)
    if not files:
        return
    in_place = resume is not None and Path(resume).resolve().parent == path.resolve()
    if in_place and force:
        raise ModelConfigError(f"--force would discard the run in {path} that --resume {resume} continues; "
                               "give one of them.")
    if in_place or force:
        return
    raise OutputExistsError(
        f"{path} already holds a training run ({', '.join(files)}). Continue it with --resume {path / 'last.pt'}, "
        f"replace it with --force, or write the new run to another folder with -o."
    )


class RunFolder:
    """Handle given to the body: ``keep()`` marks the run's files as worth keeping."""

    def __init__(self, path: Path, created: list[Path]):
        self.path = path
        self.created = created
        self.kept = False

    def keep(self) -> None:
        self.kept = True

    def worth_keeping(self) -> bool:
        """A checkpoint exists: the run can be resumed, so its folder stays even after a failure."""
        return self.kept or (self.path / "last.pt").exists()


@contextlib.contextmanager
def run_folder(path: str | Path, replace: bool = False, resume: str | Path | None = None) -> Iterator[RunFolder]:
    """Create (if needed) and lock the run folder; remove what this run created if it fails early.

    ``replace``: the run already in the folder (``--force``) is moved aside under the lock and
    deleted when this run keeps its folder, or put back if this run fails before a checkpoint.
    """
    path = Path(path)
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create the run folder {path}: {exc.strerror}.") from None
    for p in created:
        honour_umask(p)
    handle = RunFolder(path, created)
    aside = None
    try:
        with output_lock(path):
            sweep_stale(path)  # temporaries of a run that was killed here
            check_not_overwriting(path, force=replace, resume=resume)  # again: a run may have ended meanwhile
            if replace:
                aside = _move_aside(path)
            yield handle
            if aside is not None:
                shutil.rmtree(aside, ignore_errors=True)
    except BaseException:
        if aside is not None:
            if handle.worth_keeping():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                _put_back(aside, path)
        if not handle.worth_keeping() and aside is None:
            if path in created:
                shutil.rmtree(path, ignore_errors=True)
            for p in created[1:]:  # empty parents this run made, innermost first
                _rmdir(p)
        raise


def _rmdir(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.rmdir()


def _move_aside(path: Path) -> Path | None:
    """Move the run files of ``path`` into a PID-named temporary inside it (swept if we are killed)."""
    files = held_run(path)
    if not files:
        return None
    aside = temp_path(path, "replaced-run", directory=True)
    for name in files:
        (path / name).replace(aside / name)
    return aside


def _put_back(aside: Path, path: Path) -> None:
    for f in aside.iterdir():
        with contextlib.suppress(OSError):
            f.replace(path / f.name)
    shutil.rmtree(aside, ignore_errors=True)
