"""The run folder of ``seg-train``: one writer at a time, and nothing left by a run that failed
before its first checkpoint (a bad ``--resume``, an unreadable data set, a model that cannot run).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from attnseg.atomic import honour_umask, output_lock, sweep_stale
from attnseg.errors import InputFileError


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
def run_folder(path: str | Path) -> Iterator[RunFolder]:
    """Create (if needed) and lock the run folder; remove what this run created if it fails early."""
    path = Path(path)
    created = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create the run folder {path}: {exc.strerror}.") from None
    for p in created:
        honour_umask(p)
    handle = RunFolder(path, created)
    try:
        with output_lock(path):
            sweep_stale(path)  # temporaries of a run that was killed here
            yield handle
    except BaseException:
        if not handle.worth_keeping():
            if path in created:
                shutil.rmtree(path, ignore_errors=True)
            for p in created[1:]:  # empty parents this run made, innermost first
                _rmdir(p)
        raise


def _rmdir(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.rmdir()
