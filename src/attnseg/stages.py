"""One stage recorder for the long jobs (export, quantize, the main job, compare's model files).

Reports, the CLI and tests read the timing keys (``onnx_s``, ``quantize_cpu_s``, ``total_s`` ...),
so every job times its stages the same way instead of by hand. Stdlib only: the runtime may
import it too.

Rules, chosen so a timings dict never claims work that did not finish:

- ``with recorder.stage("onnx"):`` records wall seconds under ``onnx_s`` when the block ends
  normally; a block that raises records nothing.
- ``cpu=True`` also records this process's CPU seconds (all threads) under ``<name>_cpu_s``,
  right after the wall figure.
- Stages may nest: each records its own span (the outer one includes the inner one).
- A name used twice adds up (a stage run in a loop reports its total).
- ``total()`` records ``total_s`` and ``total_cpu_s`` since the recorder was made.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class StageRecorder:
    """Wall (and optionally CPU) seconds per named stage, in the order the stages finished."""

    def __init__(self, timings: dict[str, float] | None = None, *, suffix: str = "_s") -> None:
        self.timings: dict[str, float] = timings if timings is not None else {}
        self.suffix = suffix
        self._wall0 = time.perf_counter()
        self._cpu0 = time.process_time()

    def key(self, name: str) -> str:
        return f"{name}{self.suffix}"

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to ``name`` (for figures measured elsewhere)."""
        k = self.key(name)
        self.timings[k] = self.timings.get(k, 0.0) + float(seconds)

    @contextlib.contextmanager
    def stage(self, name: str, *, cpu: bool = False) -> Iterator[None]:
        wall, cpu0 = time.perf_counter(), time.process_time()
        yield
        # reached only when the block did not raise: a failed stage leaves no key
        self.add(name, time.perf_counter() - wall)
        if cpu:
            self.add(f"{name}_cpu", time.process_time() - cpu0)

    def total(self) -> dict[str, float]:
        """Record ``total_s`` / ``total_cpu_s`` since the recorder was made; the timings."""
        self.timings[self.key("total")] = time.perf_counter() - self._wall0
        # CPU seconds of this process (all threads): the honest figure on a shared machine
        self.timings[self.key("total_cpu")] = time.process_time() - self._cpu0
        return self.timings
