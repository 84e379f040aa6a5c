"""Thread safety of predict and the ordered, bounded, error-propagating stream."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from attnseg.errors import InputFileError, InvalidOptionError
from attnseg.imaging import read_image
from attnseg.runtime import Segmenter


def distinct_images(paths, n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` different crops (sizes 40..120, flips) of real Kvasir images."""
    rng = np.random.default_rng(seed)
    sources = [cv2.resize(read_image(p), (160, 136), interpolation=cv2.INTER_AREA) for p in paths]
    out = []
    for i in range(n):
        src = sources[i % len(sources)]
        h, w = (int(v) for v in rng.integers(40, 121, size=2))
        y, x = int(rng.integers(0, src.shape[0] - h + 1)), int(rng.integers(0, src.shape[1] - w + 1))
        crop = src[y:y + h, x:x + w]
        out.append(np.ascontiguousarray(crop[:, ::-1] if i % 2 else crop))
    return out


@pytest.mark.parametrize("hint", ["latency", "throughput"])
def test_eight_threads_fifty_predicts_each_match_sequential(binary_ir, kvasir_images, hint):
    seg = Segmenter(binary_ir, hint=hint)
    images = distinct_images(kvasir_images, 8 * 50)
    sequential = [seg.predict(img).mask for img in images]
    assert len({m.tobytes() for m in sequential}) > 300  # the images really differ

    def worker(t: int) -> list[tuple[int, np.ndarray]]:
        return [(i, seg.predict(images[i]).mask) for i in range(t, len(images), 8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(itertools.chain.from_iterable(pool.map(worker, range(8))))
    assert len(results) == 400
    for i, mask in results:
        assert np.array_equal(mask, sequential[i]), f"image {i} differs under concurrency"


@pytest.fixture(scope="module")
def tput(embedded_att_ir):
    return Segmenter(embedded_att_ir, hint="throughput")


def test_stream_is_ordered_and_equals_predict(tput, kvasir_images):
    images = distinct_images(kvasir_images, 30, seed=1)
    items = [(f"img{i:02d}", img) for i, img in enumerate(images)] + list(kvasir_images[:3])
    results = list(tput.stream(items, max_in_flight=3))
    assert [r.source for r in results] == [f"img{i:02d}" for i in range(30)] + [str(p) for p in kvasir_images[:3]]
    expected = [tput.predict(img) for img in images + list(kvasir_images[:3])]
    for r, e in zip(results, expected):
        assert np.array_equal(r.mask, e.mask)
        assert r.attention.keys() == e.attention.keys()
        for k in r.attention:
            np.testing.assert_allclose(r.attention[k], e.attention[k], atol=1e-6)
        assert r.timings.infer > 0 and r.timings.total > 0


def test_stream_probabilities_and_plain_arrays(tput, kvasir_images):
    imgs = [read_image(p) for p in kvasir_images[:2]]
    results = list(tput.stream(imgs, return_probabilities=True))
    assert [r.source for r in results] == [None, None]
    for r, img in zip(results, imgs):
        assert r.probabilities.shape == (2, *img.shape[:2])


@pytest.mark.parametrize("prefetch", [0, 2])
def test_stream_keeps_a_bounded_number_of_items_in_flight(tput, kvasir_images, prefetch):
    images = distinct_images(kvasir_images, 40, seed=2)
    pulled = 0

    def counting():
        nonlocal pulled
        for img in images:
            pulled += 1
            yield img

    ahead = []
    for done, _ in enumerate(tput.stream(counting(), max_in_flight=2, prefetch=prefetch), start=1):
        ahead.append(pulled - done)
    # never more than 2 x max_in_flight pulled but not yet returned, plus what prefetch prepares ahead
    assert max(ahead) <= 2 * 2 + (max(2, prefetch) + 1 if prefetch else 0)
    assert len(ahead) == 40


def test_preprocessing_error_reaches_caller_in_order(tput, kvasir_images, tmp_path):
    corrupt = tmp_path / "broken.jpg"
    corrupt.write_bytes(b"garbage" * 50)
    items = list(kvasir_images[:2]) + [corrupt] + list(kvasir_images[2:5])
    got = []
    with pytest.raises(InputFileError, match="broken.jpg"):
        for r in tput.stream(items, max_in_flight=2):
            got.append(r.source)
    assert got == [str(p) for p in kvasir_images[:2]]
    assert tput.predict(kvasir_images[0]).mask.size > 0  # the Segmenter is still usable


def test_callback_error_reaches_caller(embedded_att_ir, kvasir_images):
    seg = Segmenter(embedded_att_ir, hint="throughput")
    calls = itertools.count()

    def failing_copy(request, indices):
        if next(calls) == 3:
            raise RuntimeError("copy failed in callback")
        return [np.array(request.get_output_tensor(i).data, copy=True) for i in indices]

    seg.adapter._copy_outputs = failing_copy  # runs inside the OpenVINO completion callback
    got = 0
    with pytest.raises(RuntimeError, match="copy failed in callback"):
        for _ in seg.stream(distinct_images(kvasir_images, 8), max_in_flight=1):
            got += 1
    assert got == 3


def test_stream_closed_early_and_edge_cases(tput, kvasir_images):
    gen = tput.stream(distinct_images(kvasir_images, 20, seed=3), max_in_flight=3)
    first = [next(gen), next(gen)]
    gen.close()  # waits for the requests still running, then lets go
    assert all(r.mask.size for r in first)
    assert list(tput.stream([])) == []
    with pytest.raises(InvalidOptionError):
        list(tput.stream(kvasir_images[:1], max_in_flight=0))
