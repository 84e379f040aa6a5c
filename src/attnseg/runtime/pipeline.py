"""Ordered, bounded asynchronous inference over an iterable (``Segmenter.stream``).

With ``prefetch_workers`` > 0 a small thread pool decodes and preprocesses the next images
(``attnseg.runtime.prefetch``) while the adapter runs up to ``jobs`` requests
(``OpenVINOAdapter.async_queue``: its callbacks copy the outputs and keep any exception); with
0 the caller's thread does it between submissions. Results come back in input order; an error
raised while preparing an item or inside a callback is raised to the caller when the stream
reaches that item, after every earlier result was yielded; an error raised by the iterable
itself comes after every result before it. At most ``2 * jobs`` results are buffered (plus
``max(jobs, prefetch_workers) + 1`` items prepared ahead with prefetch), so memory stays flat on
endless inputs (cameras). Any object with ``async_queue(jobs, output_indices)`` returning
``submit(key, inputs) / ready(key) / wait(key) / close() / len()`` can drive it (a remote
backend too).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnseg.runtime.adapter import Completed

__all__ = ["Completed", "ordered_async"]


@dataclass
class _Pending:
    seq: int
    item: Any  # whatever prepare() returned (passed to finish), or None on error
    t_start: float
    t_submitted: float = 0.0
    error: BaseException | None = None


def ordered_async(
    adapter: Any,
    items: Iterable[Any],
    prepare: Callable[[Any], tuple[Any, np.ndarray]],
    finish: Callable[[Any, Completed, float, float], Any],
    input_index: int,
    output_indices: Sequence[int],
    jobs: int,
    prefetch_workers: int = 0,
) -> Iterator[Any]:
    """Yield ``finish(item, completed, t_start, t_prepared)`` for each input, in order.

    ``prepare(x)`` returns ``(item, tensor)``; ``tensor`` is submitted to the adapter.
    """
    queue = adapter.async_queue(max(1, int(jobs)), output_indices)
    jobs = len(queue)
    pending: deque[_Pending] = deque()

    def head_ready() -> bool:
        return pending[0].error is not None or queue.ready(pending[0].seq)

    def pop_head() -> Any:
        head = pending.popleft()
        if head.error is not None:
            raise head.error
        return finish(head.item, queue.wait(head.seq), head.t_start, head.t_submitted)

    def timed(x: Any) -> tuple[Any, np.ndarray, float, float]:
        t0 = time.perf_counter()
        item, tensor = prepare(x)
        return item, tensor, t0, time.perf_counter()

    if prefetch_workers > 0:
        from attnseg.runtime.prefetch import prefetch

        prepared: Iterable[Any] = prefetch(items, timed, prefetch_workers, depth=max(jobs, prefetch_workers))
    else:
        prepared = items
    source = iter(prepared)
    deferred: BaseException | None = None
    seq = -1
    try:
        while True:
            try:
                x = next(source)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - the iterable failed: raised after earlier results
                deferred = exc
                break
            seq += 1
            entry = _Pending(seq=seq, item=None, t_start=time.perf_counter())
            try:
                entry.item, tensor, entry.t_start, entry.t_submitted = (
                    x.result() if prefetch_workers > 0 else timed(x))
            except Exception as exc:  # noqa: BLE001 - raised in order, see pop_head
                entry.error = exc
            else:
                queue.submit(seq, {input_index: tensor})
            pending.append(entry)
            while pending and head_ready():
                yield pop_head()
            while len(pending) >= 2 * jobs:
                yield pop_head()
        while pending:
            yield pop_head()
        if deferred is not None:
            raise deferred
    finally:
        close = getattr(source, "close", None)
        if close is not None and prefetch_workers > 0:
            close()  # stop the prefetch threads when the caller stops early
        queue.close()
