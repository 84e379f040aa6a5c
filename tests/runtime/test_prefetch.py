"""prefetch: ordered, bounded, errors in place; stream() with prefetch equals predict()."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from attnseg.errors import InputFileError
from attnseg.runtime import Segmenter
from attnseg.runtime.prefetch import prefetch


def _reader_threads() -> int:
    return sum(t.name == "attnseg-prefetch-reader" for t in threading.enumerate())


def test_results_keep_input_order_when_work_finishes_out_of_order():
    def slow_first(i: int) -> int:
        time.sleep(0.002 * (20 - i))  # early items finish last
        return i * i

    assert [f.result() for f in prefetch(range(20), slow_first, workers=4, depth=6)] == [i * i for i in range(20)]


def test_an_error_is_raised_in_its_place_and_later_items_still_come():
    def fn(i: int) -> int:
        if i == 3:
            raise ValueError("item 3 is bad")
        return i

    got = []
    for f in prefetch(range(6), fn, workers=2, depth=2):
        try:
            got.append(f.result())
        except ValueError as exc:
            got.append(str(exc))
    assert got == [0, 1, 2, "item 3 is bad", 4, 5]


def test_an_iterable_that_fails_ends_after_the_items_before_it():
    def items():
        yield from range(3)
        raise InputFileError("camera unplugged")

    got = []
    with pytest.raises(InputFileError, match="camera unplugged"):
        for f in prefetch(items(), lambda i: i, workers=2, depth=2):
            got.append(f.result())
    assert got == [0, 1, 2]


def test_reads_at_most_depth_plus_one_ahead_and_stops_when_closed():
    pulled = 0
    closed = threading.Event()

    def endless():
        nonlocal pulled
        try:
            while True:
                pulled += 1
                yield pulled
        finally:
            closed.set()

    gen = prefetch(endless(), lambda i: i, workers=2, depth=3)
    assert next(gen).result() == 1
    time.sleep(0.3)  # let the reader run as far ahead as it is allowed to
    assert pulled <= 1 + 3 + 1
    gen.close()
    assert closed.wait(5) and _reader_threads() == 0


def test_stream_with_prefetch_equals_predict_in_order(embedded_att_ir, kvasir_images, tmp_path):
    seg = Segmenter(embedded_att_ir, hint="throughput")
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"not a jpeg" * 20)
    paths = list(kvasir_images) * 2
    expected = [seg.predict(p).mask for p in paths]
    for workers in (0, 1, 3):
        results = list(seg.stream(paths, max_in_flight=2, prefetch=workers))
        assert [r.source for r in results] == [str(p) for p in paths]
        assert all(np.array_equal(r.mask, e) for r, e in zip(results, expected))
        assert all(r.timings.preprocess > 0 for r in results)
        got = []
        with pytest.raises(InputFileError, match="broken.jpg"):
            for r in seg.stream(paths[:3] + [corrupt] + paths[3:], max_in_flight=2, prefetch=workers):
                got.append(r.source)
        assert got == [str(p) for p in paths[:3]]
    assert _reader_threads() == 0
