"""``OpenVINOAdapter``: reading from paths and bytes, devices, no hidden cache, the async queue,
and ``Segmenter`` as a wrapper whose public stages equal ``predict``."""

from __future__ import annotations

import os

import numpy as np
import pytest

from attnseg.devices import available_devices
from attnseg.errors import DeviceError, InputFileError, InvalidOptionError, short_message
from attnseg.runtime import OpenVINOAdapter, Segmenter, compile_config


def test_bytes_and_path_give_the_same_model(embedded_att_ir, kvasir_images):
    from_path = Segmenter(embedded_att_ir)
    adapter = OpenVINOAdapter(embedded_att_ir.read_bytes(), weights=embedded_att_ir.with_suffix(".bin").read_bytes())
    assert adapter.path is None and adapter.metadata == from_path.metadata  # from rt_info alone
    from_bytes = Segmenter(adapter)
    a, b = from_path.predict(kvasir_images[1]), from_bytes.predict(kvasir_images[1])
    assert np.array_equal(a.mask, b.mask) and a.mask.any()
    assert all(np.allclose(a.attention[k], b.attention[k]) for k in a.attention)
    with pytest.raises(InputFileError, match="in-memory IR is not a readable OpenVINO IR"):
        OpenVINOAdapter(b"<net>", weights=b"")


def test_devices_and_options_are_checked(binary_ir):
    absent = next(d for d in ("NPU", "GPU") if not any(a.startswith(d) for a in available_devices()))
    with pytest.raises(DeviceError, match=rf"Device {absent} is not available.*Available devices: .*CPU"):
        OpenVINOAdapter(binary_ir, absent)
    assert OpenVINOAdapter(binary_ir, "AUTO:CPU").device == "AUTO:CPU"
    assert OpenVINOAdapter(binary_ir, "HETERO:CPU", compile=False).model is not None
    with pytest.raises(InvalidOptionError, match="drop device"):
        Segmenter(OpenVINOAdapter(binary_ir), device="AUTO")
    assert compile_config("tput", num_requests=2) == {"PERFORMANCE_HINT": "THROUGHPUT",
                                                      "PERFORMANCE_HINT_NUM_REQUESTS": "2"}
    assert compile_config(None) == {}  # no hint, no cache: nothing set behind the user's back


def test_no_cache_folder_unless_asked(binary_ir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    OpenVINOAdapter(binary_ir).infer({0: np.zeros((1, 3, 64, 64), np.float32)}, [0])
    assert os.listdir(tmp_path) == []
    cache = tmp_path / "c" / "d"
    adapter = OpenVINOAdapter(binary_ir, cache_dir=cache)
    assert adapter.compile_properties["CACHE_DIR"] == str(cache) and any(cache.iterdir())


def test_async_queue_outputs_and_stored_errors(binary_ir):
    adapter = OpenVINOAdapter(binary_ir, hint="throughput")
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 64, 64)).astype(np.float32) for _ in range(4)]
    queue = adapter.async_queue(2, [0])
    for i, x in enumerate(xs):
        queue.submit(i, {0: x})
    got = [queue.wait(i).outputs[0] for i in range(4)]
    queue.close()
    for x, out in zip(xs, got):
        assert np.allclose(out, adapter.infer({0: x}, [0])[0])
    assert not np.allclose(got[0], got[1])  # each key has its own copy, not a reused buffer

    def broken(request, indices):
        raise RuntimeError("copy failed")

    adapter._copy_outputs = broken
    queue = adapter.async_queue(1, [0])
    queue.submit("k", {0: xs[0]})
    with pytest.raises(RuntimeError, match="copy failed"):
        queue.wait("k")
    queue.close()


def test_public_stages_equal_predict(multiclass_ir, kvasir_images):
    seg = Segmenter(multiclass_ir)
    prepared = seg.preprocess(kvasir_images[2])
    raw = seg.infer(prepared)
    staged = seg.postprocess(prepared, raw, return_probabilities=True)
    direct = seg.predict(kvasir_images[2], return_probabilities=True)
    assert np.array_equal(staged.mask, direct.mask) and staged.mask.shape == prepared.original_size
    assert np.allclose(staged.probabilities, direct.probabilities)
    assert staged.timings.postprocess > 0 and staged.class_pixel_counts == direct.class_pixel_counts


def test_short_message_keeps_the_reason():
    text = ("Exception from src/inference/src/cpp/core.cpp:84:\nCheck 'x' failed at src/a.cpp:117:\n"
            "FrontEnd API failed with GeneralFailure:\nir: Could not open the file: \"/x.xml\"\n\n")
    assert short_message(RuntimeError(text)) == 'ir: Could not open the file: "/x.xml"'
    assert short_message(RuntimeError("")) == "RuntimeError"
