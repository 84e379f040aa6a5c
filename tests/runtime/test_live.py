"""Live mode (attnseg.runtime.live): newest frame wins, bounded frames in flight, drops counted.

The inputs are real: videos made of Kvasir-SEG frames at 30 fps, played at their own rate. A
model slower than the video is a real Segmenter behind a wrapper that sleeps before each
prediction, so frames must drop. No assertion is about milliseconds: the tests check counts
(frames in flight and buffered never above the bound, every frame read is either segmented or
counted as dropped, results in capture order) and files.
"""

from __future__ import annotations

import csv
import functools
import http.server
import json
import socketserver
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from attnseg.errors import InputFileError, InvalidOptionError
from attnseg.runtime.live import LiveSegmenter, LiveSource, run_live

FPS = 30


def _video(images: list[Path], path: Path, frames: int, fourcc: str = "mp4v", size=(160, 128)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), FPS, size)
    assert writer.isOpened()
    pictures = [cv2.resize(cv2.imread(str(p)), size, interpolation=cv2.INTER_AREA) for p in images]
    for i in range(frames):
        writer.write(pictures[i % len(pictures)])
    writer.release()
    return path


@pytest.fixture(scope="module")
def kvasir_video(kvasir_images, tmp_path_factory) -> Path:
    """45 frames (1.5 s at 30 fps) of real Kvasir-SEG images."""
    return _video(kvasir_images, tmp_path_factory.mktemp("live") / "kvasir30.mp4", 45)


class Slow:
    """A Segmenter that takes at least ``delay`` s per frame, counting its concurrent calls."""

    def __init__(self, seg, delay: float) -> None:
        self.seg, self.delay = seg, delay
        self.num_requests = seg.num_requests
        self.device, self.inference_precision = seg.device, seg.inference_precision
        self.codec = getattr(seg, "codec", None)
        self.model_path = seg.model_path
        self.active = self.max_active = self.calls = 0
        self._lock = threading.Lock()

    def predict(self, image):
        with self._lock:
            self.active += 1
            self.calls += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            return self.seg.predict(image)
        finally:
            with self._lock:
                self.active -= 1


@pytest.fixture(scope="module")
def segmenter(binary_ir):
    from attnseg.runtime import Segmenter

    return Segmenter(binary_ir, hint="throughput", inference_precision="f32")


def _check_accounting(live: LiveSegmenter, frames: list, read_expected: int) -> None:
    s = live.stats
    assert s.frames_read == read_expected
    assert s.frames_segmented + s.frames_dropped + s.frames_stale == s.frames_read
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)  # capture order, no repeats
    assert 1 <= s.max_in_flight_seen <= live.max_in_flight
    assert s.max_buffered_seen <= 2 * live.max_in_flight


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_model_slower_than_the_video_drops_frames_instead_of_queueing(segmenter, kvasir_video, jobs):
    jobs = min(jobs, segmenter.num_requests)
    slow = Slow(segmenter, delay=0.15)  # > 4 frame intervals at 30 fps per frame and request
    live = LiveSegmenter(slow, max_in_flight=jobs)
    frames = list(live.run(kvasir_video))
    _check_accounting(live, frames, 45)
    assert live.stats.frames_dropped > 0
    assert slow.max_active <= jobs
    assert slow.calls == live.stats.frames_segmented
    for f in frames:  # every segmented frame is a real result at the frame's size with its timings
        assert f.result.mask.shape == f.image.shape[:2] == (128, 160)
        t = f.timing
        assert t.end_to_end_ms >= t.infer_ms > 0 and t.wait_ms >= 0 and t.in_flight <= jobs
    summary = live.stats.summary()
    assert summary["frames_dropped"] == live.stats.frames_dropped
    assert set(summary["latency_ms"]["end_to_end"]) == {"p50", "p90", "p95", "p99", "max", "mean"}


def test_a_slow_consumer_slows_inference_instead_of_buffering(segmenter, kvasir_video):
    live = LiveSegmenter(segmenter, max_in_flight=1)
    frames = []
    for f in live.run(kvasir_video):
        frames.append(f)
        time.sleep(0.12)  # a display or encoder slower than the video
    _check_accounting(live, frames, 45)
    assert live.stats.frames_dropped > 0


def test_max_age_drops_stale_frames(segmenter, kvasir_video):
    live = LiveSegmenter(segmenter, max_age_ms=1e-6)  # every frame is stale by the time it is taken
    assert list(live.run(kvasir_video, max_frames=10)) == []
    assert live.stats.frames_read == 10
    assert live.stats.frames_stale + live.stats.frames_dropped == 10 and live.stats.frames_stale >= 1


def test_in_flight_is_capped_at_the_devices_requests(segmenter):
    live = LiveSegmenter(segmenter, max_in_flight=segmenter.num_requests + 5)
    assert live.max_in_flight == segmenter.num_requests
    with pytest.raises(InvalidOptionError):
        LiveSegmenter(segmenter, max_in_flight=0)


def test_run_live_writes_what_a_screen_would_show(segmenter, kvasir_video, tmp_path):
    slow = Slow(segmenter, delay=0.1)
    summary = run_live(slow, kvasir_video, output=tmp_path)
    assert summary["frames_read"] == 45 and summary["frames_dropped"] > 0
    assert summary["frames_segmented"] + summary["frames_dropped"] == 45
    assert summary["max_in_flight_seen"] <= summary["max_in_flight"]
    # overlay.mp4: one frame per captured frame up to the last segmented one (held over drops)
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    with open(tmp_path / "frames.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert count == int(rows[-1]["index"]) + 1
    assert len(rows) == summary["frames_segmented"] == len(json.loads((tmp_path / "frames.json").read_text()))
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == [f"frame_{int(r['index']):06d}.png" for r in rows]
    mask = cv2.imread(str(tmp_path / "masks" / f"frame_{int(rows[0]['index']):06d}.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (128, 160) and set(np.unique(mask)) <= {0, 255}
    report = json.loads((tmp_path / "summary.json").read_text())
    assert report["summary"]["frames_read"] == 45


def test_an_http_stream_is_read_through_ffmpeg(segmenter, kvasir_images, tmp_path):
    _video(kvasir_images, tmp_path / "clip.avi", 12, fourcc="MJPG")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            source = LiveSource.open(f"http://127.0.0.1:{server.server_address[1]}/clip.avi")
            assert source.kind == "stream" and not source.realtime
            live = LiveSegmenter(segmenter)
            frames = list(live.run(source))
        finally:
            server.shutdown()
    _check_accounting(live, frames, 12)
    assert frames


def test_errors(segmenter, kvasir_video, tmp_path):
    with pytest.raises(InputFileError, match="cannot be opened"):
        LiveSource.open(97)  # no such camera
    with pytest.raises(InputFileError, match="not a file"):
        LiveSource.open(tmp_path / "missing.mp4")

    class Broken(Slow):
        def predict(self, image):
            raise InputFileError("broken model")

    with pytest.raises(InputFileError, match="broken model"):
        list(LiveSegmenter(Broken(segmenter, 0)).run(kvasir_video))
    try:  # a window needs an OpenCV with a GUI and a display; without them the error says --no-show
        cv2.namedWindow("attnseg-test")
        cv2.destroyWindow("attnseg-test")
    except cv2.error:
        with pytest.raises(InputFileError, match="--no-show"):
            run_live(segmenter, kvasir_video, show=True)


def test_seg_infer_live_no_show_json(binary_ir, kvasir_video, tmp_path, capsys):
    from attnseg.cli.infer import main

    out = tmp_path / "live"
    assert main([str(binary_ir), str(kvasir_video), "--live", "--no-show", "-o", str(out), "--json",
                 "--max-frames", "20", "--inference-precision", "f32"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames_read"] == 20
    assert summary["frames_segmented"] + summary["frames_dropped"] == 20
    assert {"p50", "p95"} <= set(summary["latency_ms"]["end_to_end"])
    assert {p.name for p in out.iterdir()} >= {"overlay.mp4", "frames.csv", "frames.json", "summary.json", "masks"}
    assert main([str(binary_ir), str(kvasir_video), "--no-show", "-o", str(tmp_path / "x")]) == 2
    assert "--live" in capsys.readouterr().err


def test_live_mode_imports_without_torch():
    import subprocess
    import sys

    code = ("import sys\n"
            "class B:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('torch', 'nncf', 'onnx', 'onnxruntime'):\n"
            "            raise ImportError(name)\n"
            "sys.meta_path.insert(0, B())\n"
            "import attnseg.runtime.live, attnseg.runtime.outputs\n"
            "from attnseg.runtime import LiveSegmenter\n"
            "print('ok')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-2000:]


def test_a_video_over_the_pixel_limit_is_refused_before_decoding(kvasir_video, monkeypatch):
    """The runtime's image pixel limit holds for video frames too: live mode and seg-infer's
    video source refuse a video whose frames are larger, naming the limit."""
    from attnseg.imaging import ImageTooLargeError
    from attnseg.runtime.sources import open_source

    w = int(cv2.VideoCapture(str(kvasir_video)).get(cv2.CAP_PROP_FRAME_WIDTH))
    monkeypatch.setenv("ATTNSEG_MAX_IMAGE_PIXELS", str(w * 10))  # fewer than one frame's pixels
    with pytest.raises(ImageTooLargeError, match="over the limit"):
        LiveSource.open(kvasir_video)
    with pytest.raises(ImageTooLargeError, match="ATTNSEG_MAX_IMAGE_PIXELS"):
        open_source(kvasir_video)
    monkeypatch.delenv("ATTNSEG_MAX_IMAGE_PIXELS")
    assert open_source(kvasir_video).kind == "video"
