"""Ordered, bounded asynchronous inference over an iterable (``Segmenter.stream``).

The caller's thread decodes and preprocesses the next image while OpenVINO runs up to
``jobs`` requests; completion callbacks only copy the output buffers (requests are reused as
soon as the callback returns) and record any exception. Results come back in input order;
an error raised while preparing an item or inside a callback is raised to the caller when
the stream reaches that item, after every earlier result was yielded. At most ``2 * jobs``
results are buffered, so memory stays flat on endless inputs (cameras).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import openvino as ov


@dataclass
class _Pending:
    seq: int
    item: Any  # whatever prepare() returned (passed to finish), or None on error
    t_start: float
    t_submitted: float = 0.0
    error: BaseException | None = None


@dataclass
class Completed:
    """Outputs of one request, copied out of its buffers, with the device latency."""

    outputs: list[np.ndarray]
    infer_ms: float
    t_done: float


def ordered_async(
    compiled: ov.CompiledModel,
    items: Iterable[Any],
    prepare: Callable[[Any], tuple[Any, np.ndarray]],
    finish: Callable[[Any, Completed, float, float], Any],
    input_index: int,
    output_indices: Sequence[int],
    jobs: int,
    copy_outputs: Callable[[ov.InferRequest, Sequence[int]], list[np.ndarray]] | None = None,
) -> Iterator[Any]:
    """Yield ``finish(item, completed, t_start, t_prepared)`` for each input, in order.

    ``prepare(x)`` returns ``(item, tensor)``; ``tensor`` is submitted to the device.
    """
    copy = copy_outputs or _copy_outputs
    queue = ov.AsyncInferQueue(compiled, max(1, int(jobs)))
    jobs = len(queue)
    done: dict[int, Completed | BaseException] = {}
    cond = threading.Condition()

    def on_done(request: ov.InferRequest, seq: int) -> None:
        # Runs on an OpenVINO thread; the request is reused once this returns: copy, never keep.
        try:
            payload: Completed | BaseException = Completed(
                copy(request, output_indices), float(request.latency), time.perf_counter()
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            payload = exc
        with cond:
            done[seq] = payload
            cond.notify_all()

    queue.set_callback(on_done)
    pending: deque[_Pending] = deque()

    def head_ready() -> bool:
        return pending[0].error is not None or pending[0].seq in done

    def pop_head() -> Any:
        head = pending.popleft()
        if head.error is not None:
            raise head.error
        with cond:
            while head.seq not in done:
                cond.wait(0.5)
            payload = done.pop(head.seq)
        if isinstance(payload, BaseException):
            raise payload
        return finish(head.item, payload, head.t_start, head.t_submitted)

    try:
        for seq, x in enumerate(items):
            entry = _Pending(seq=seq, item=None, t_start=time.perf_counter())
            try:
                entry.item, tensor = prepare(x)
            except Exception as exc:  # noqa: BLE001 - raised in order, see pop_head
                entry.error = exc
            else:
                entry.t_submitted = time.perf_counter()
                queue.start_async({input_index: tensor}, seq)
            pending.append(entry)
            while pending and head_ready():
                yield pop_head()
            while len(pending) >= 2 * jobs:
                yield pop_head()
        while pending:
            yield pop_head()
    finally:
        queue.wait_all()


def _copy_outputs(request: ov.InferRequest, indices: Sequence[int]) -> list[np.ndarray]:
    return [np.array(request.get_output_tensor(i).data, copy=True) for i in indices]
