"""RemoteSegmenter (attnseg.runtime, standard library only) gives what Segmenter gives."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import cv2
import numpy as np
import pytest

from attnseg.errors import AttnsegError, InputFileError
from attnseg.runtime import RemoteError, RemoteSegmenter

from .conftest import MODEL_NAME


def assert_same(remote, local):
    np.testing.assert_array_equal(remote.mask, local.mask)
    assert remote.mask.dtype == local.mask.dtype
    assert remote.classes == local.classes
    assert remote.class_pixel_counts == local.class_pixel_counts
    assert remote.foreground_fraction == local.foreground_fraction
    assert sorted(remote.attention) == sorted(local.attention)
    for k in local.attention:
        np.testing.assert_array_equal(remote.attention[k], local.attention[k])
    if local.probabilities is None:
        assert remote.probabilities is None
    else:
        np.testing.assert_array_equal(remote.probabilities, local.probabilities)
    assert remote.source == local.source


def test_predict_paths_and_arrays_equal_segmenter(server, reference, jpegs):
    remote = RemoteSegmenter(server.url, MODEL_NAME)
    assert remote.ready() and remote.attention_names == reference.attention_names
    for p in jpegs[:2]:
        assert_same(remote.predict(p, return_probabilities=True), reference.predict(p, return_probabilities=True))
        assert_same(remote.predict(str(p)), reference.predict(str(p)))
    img = cv2.imread(str(jpegs[2]))
    assert_same(remote.predict(img), reference.predict(img))
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)  # converted as Segmenter converts it
    assert_same(remote.predict(gray), reference.predict(gray))


def test_stream_equals_segmenter_stream_in_order(server, reference, jpegs):
    remote = RemoteSegmenter(server.url, MODEL_NAME)
    items = [*jpegs[:5], ("frame-7", cv2.imread(str(jpegs[5])))]
    got = list(remote.stream(items, max_in_flight=3))
    want = list(reference.stream(items))
    assert [r.source for r in got] == [r.source for r in want] == [*map(str, jpegs[:5]), "frame-7"]
    for g, w in zip(got, want):
        assert_same(g, w)


def test_stream_raises_an_items_error_in_order(server, jpegs, tmp_path):
    remote = RemoteSegmenter(server.url, MODEL_NAME)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    it = remote.stream([jpegs[0], bad, jpegs[1]], max_in_flight=2)
    assert next(it).source == str(jpegs[0])
    with pytest.raises(RemoteError) as err:
        next(it)
    assert err.value.status == 400 and "broken.jpg" in str(err.value) and "cannot be decoded" in str(err.value)


def test_eight_concurrent_clients_all_correct(server, reference, jpegs):
    expected = {p: reference.predict(p).mask for p in jpegs}
    failures: list[str] = []
    done = []

    def client(k: int) -> None:
        remote = RemoteSegmenter(server.url, MODEL_NAME, attention=False)
        try:
            for j in range(3):
                p = jpegs[(k + j) % len(jpegs)]
                if not np.array_equal(remote.predict(p).mask, expected[p]):
                    failures.append(f"client {k}: {p.name}")
                done.append(1)
        except AttnsegError as exc:  # reported below, not swallowed
            failures.append(f"client {k}: {exc}")
        finally:
            remote.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads)
    assert failures == [] and len(done) == 24


def test_client_errors(server, jpegs, tmp_path):
    with pytest.raises(RemoteError) as unknown:
        RemoteSegmenter(server.url, "nope").predict(jpegs[0])
    assert unknown.value.status == 404 and "nope" in str(unknown.value)
    with pytest.raises(InputFileError, match="does not exist"):
        RemoteSegmenter(server.url, MODEL_NAME).predict(tmp_path / "missing.jpg")
    closed = RemoteSegmenter("http://127.0.0.1:9", MODEL_NAME, timeout=5)
    assert not closed.ready()
    with pytest.raises(RemoteError, match="Cannot reach"):
        closed.predict(jpegs[0])


SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys

    BLOCKED = {"kserve", "grpc", "fastapi", "uvicorn", "starlette", "requests", "torch", "ray"}

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"import of {name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    from attnseg.runtime import RemoteSegmenter
    r = RemoteSegmenter(sys.argv[1], sys.argv[2]).predict(sys.argv[3])
    print(json.dumps({"fg": r.foreground_fraction, "shape": list(r.mask.shape),
                      "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}))
    """
)


def test_client_needs_no_server_packages(server, reference, jpegs):
    """An edge app with the core install only (no kserve, grpc, requests) can use the server."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT, server.url, MODEL_NAME, str(jpegs[0])],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    ref = reference.predict(jpegs[0])
    assert out["loaded"] == [] and out["shape"] == list(ref.mask.shape)
    assert out["fg"] == ref.foreground_fraction
