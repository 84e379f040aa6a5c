"""Progress bars on stderr for the slow loops (decoding calibration images, validation, timing).

rich comes with nncf; without it (FP16 compression needs no nncf) the loops just run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], description: str, total: int | None = None, quiet: bool = False) -> Iterator[T]:
    if quiet:
        yield from items
        return
    try:
        from rich.console import Console
        from rich.progress import track
    except ImportError:
        yield from items
        return
    yield from track(items, description=description, total=total, console=Console(stderr=True), transient=True)
