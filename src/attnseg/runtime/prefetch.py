"""Decode and preprocess the next images while the current ones infer (ordered, bounded).

Reading a JPEG and resizing it take about as long as inferring a small model, and done in
the caller's thread they wait for each other. OpenCV and numpy release the GIL, so a couple
of threads overlap them with inference. ``prefetch`` pulls items from the iterable on one
background thread, runs ``fn`` on each in a small pool and yields the futures in input
order: the consumer calls ``.result()`` when it reaches an item, so an error is raised in
its place, after every earlier item. At most ``depth + 1`` items are taken ahead of the
consumer, so memory stays flat on endless inputs (cameras). An error raised by the iterable
itself ends the sequence after the items before it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)

DEFAULT_WORKERS = 2
_END = object()


class _IterError:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], fn: Callable[[T], R], workers: int = DEFAULT_WORKERS,
             depth: int = 4) -> Iterator[Future[R]]:
    """Yield ``Future(fn(x))`` for each ``x`` in ``items``, in order, computed ahead on ``workers`` threads."""
    workers, depth = max(1, int(workers)), max(1, int(depth))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="attnseg-prefetch")
    ahead: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                ahead.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        it = iter(items)
        try:
            while not stop.is_set():
                try:
                    x = next(it)
                except StopIteration:
                    put(_END)
                    return
                except BaseException as exc:  # noqa: BLE001 - handed to the consumer, in order
                    put(_IterError(exc))
                    return
                if not put(pool.submit(fn, x)):
                    return
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                try:
                    close()  # release cameras / files held by a generator
                except Exception as exc:  # noqa: BLE001 - closing is best effort
                    log.debug("closing the prefetched iterable failed: %s", exc)

    producer = threading.Thread(target=produce, name="attnseg-prefetch-reader", daemon=True)
    producer.start()
    try:
        while True:
            entry = ahead.get()
            if entry is _END:
                return
            if isinstance(entry, _IterError):
                raise entry.exc
            yield entry
    finally:
        stop.set()
        while True:  # drop what was prepared for nobody
            try:
                entry = ahead.get_nowait()
            except queue.Empty:
                break
            if isinstance(entry, Future):
                entry.cancel()
        producer.join(timeout=5.0)
        pool.shutdown(wait=True, cancel_futures=True)
