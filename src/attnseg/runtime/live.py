"""Live mode: the newest frame wins, and end-to-end latency stays bounded.

``Segmenter.stream`` is ordered and lossless: right for folders and recorded videos, wrong for a
live feed, where a model slower than the camera lets frames queue and latency grow without
limit. ``LiveSegmenter`` runs the same ``Segmenter`` (one codec, one adapter, its pooled
asynchronous requests) under a latest-only policy:

- a capture thread reads the source as fast as it delivers (a camera or an RTSP/HTTP stream
  at its own rate; a video file paced at its own frame rate, as if it were a camera) into a
  one-frame slot; a frame replaced in the slot before inference took it is **dropped** and
  counted, never queued;
- at most ``max_in_flight`` frames are being segmented at once (one worker per request, each
  calling ``Segmenter.predict``), and at most as many finished results wait for the consumer:
  a slow consumer (display, video encoder) slows inference down instead of growing a queue;
- a frame older than ``max_age_ms`` when a request frees up is dropped as stale (optional);
- every segmented frame carries its timings: capture (reading/decoding it), wait (capture to
  start of inference), preprocess, infer, postprocess and end-to-end (frame delivered by the
  capture to result ready).

``run_live`` adds what an edge app shows or keeps: an optional window with the overlay and a
performance panel (FPS, latency p50/p95, frames dropped, device, precision), or, without a
window, ``overlay.mp4`` (the picture a screen would have shown, one frame per captured frame),
``masks/frame_NNNNNN.png``, ``frames.csv`` / ``frames.json`` (per-frame latencies) and
``summary.json``. Pictures come from ``attnseg.runtime.outputs`` like ``seg-infer``'s.

openvino (through the Segmenter), numpy and OpenCV only.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from attnseg.errors import InputFileError, InvalidOptionError
from attnseg.runtime.sources import check_frame_size

log = logging.getLogger(__name__)

URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
FRAMES_CSV = "frames.csv"
FRAMES_JSON = "frames.json"
STREAM_TIMEOUT_MS = 10_000  # opening an RTSP/HTTP stream, and each read from it
PERCENTILES = (50, 90, 95, 99)


# ----------------------------------------------------------------------------- sources
def is_url(spec: Any) -> bool:
    return isinstance(spec, str) and spec.strip().lower().startswith(URL_SCHEMES)


@dataclass
class LiveSource:
    """A camera index, a video file or a stream URL, opened with OpenCV.

    ``kind``: ``camera`` | ``video`` | ``stream``. ``fps``: what the source announces (None when
    it does not). ``realtime``: pace reads at ``fps`` (default: video files only; cameras and
    streams deliver at their own rate). ``loop``: restart a video file at its end (``-loop``).
    """

    spec: str | int
    kind: str
    description: str
    fps: float | None
    realtime: bool
    loop: bool = False
    _cap: Any = field(default=None, repr=False)

    @classmethod
    def open(cls, spec: str | Path | int, realtime: bool | None = None, loop: bool = False,
             fps: float | None = None) -> LiveSource:
        """Open ``spec``: ``0`` / ``"0"`` (camera), a video path, or an ``rtsp://`` / ``http(s)://`` URL
        (OpenCV's FFmpeg backend). ``fps`` overrides the rate the source announces."""
        if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isdigit() and not Path(spec).exists()):
            index = int(spec)
            cap = cv2.VideoCapture(index)
            kind, desc, target = "camera", f"camera {index}", index
            if cap.isOpened():
                cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep the driver from queueing old frames
        elif is_url(spec):
            target = str(spec).strip()
            # bounded waits: an unreachable or stalled server fails instead of hanging the app
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                                             cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
            kind, desc = "stream", target
        else:
            path = Path(spec).expanduser()
            if not path.is_file():
                raise InputFileError(f"Live input {path} is not a file, a camera index or an rtsp:// / http:// URL.")
            target = str(path)
            cap = cv2.VideoCapture(target)
            kind, desc = "video", target
        if not cap.isOpened():
            cap.release()
            hint = {"camera": "is it connected and free?", "stream": "is the URL reachable, and does OpenCV "
                    "have FFmpeg?", "video": "corrupt or unsupported codec?"}[kind]
            raise InputFileError(f"Live input {desc} cannot be opened ({hint}).")
        try:
            check_frame_size(cap, f"Live input {desc}")
        except InputFileError:
            cap.release()
            raise
        announced = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        rate = float(fps) if fps else (announced if 0.0 < announced < 1000.0 else None)
        if fps is not None and fps <= 0:
            raise InvalidOptionError(f"fps must be > 0, got {fps}.")
        pace = (kind == "video") if realtime is None else bool(realtime)
        if pace and rate is None:
            rate = 25.0
            log.warning("%s does not announce a frame rate; playing it at %.0f FPS", desc, rate)
        return cls(target, kind, desc, rate, pace, bool(loop) and kind == "video", cap)

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, frame = self._cap.read()
        if not ok and self.loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        return ok and frame is not None, frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# ----------------------------------------------------------------------------- records
@dataclass
class FrameTiming:
    """Timings of one segmented frame, in milliseconds; ``captured_at_ms`` is since the start."""

    index: int
    captured_at_ms: float
    capture_ms: float  # reading + decoding the frame from the source
    wait_ms: float  # frame delivered -> inference starts (time in the latest-only slot)
    preprocess_ms: float
    infer_ms: float
    postprocess_ms: float
    end_to_end_ms: float  # frame delivered by the capture -> result ready
    dropped_before: int  # frames dropped so far (when this result was ready)
    in_flight: int  # frames being segmented when this one started (itself included)


@dataclass
class LiveFrame:
    """One segmented frame: the captured image, its result and its timings."""

    index: int
    image: np.ndarray
    result: Any  # SegmentationResult
    timing: FrameTiming


@dataclass
class _Captured:
    index: int
    image: np.ndarray
    t_read: float  # perf_counter when the read started
    t_ready: float  # perf_counter when the frame was in hand
    t_start: float = 0.0  # perf_counter when inference took it
    in_flight: int = 0
    stale: bool = False


class _LatestSlot:
    """One frame; ``put`` replaces an untaken frame (returns True: it was dropped)."""

    def __init__(self) -> None:
        self._item: _Captured | None = None
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: _Captured) -> bool:
        with self._cond:
            replaced = self._item is not None
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, may_take: Any = None, on_take: Any = None) -> _Captured | None:
        """The newest frame (blocks); None once closed and empty. ``may_take()`` gates taking;
        ``on_take(item)`` runs before the slot is released (so takers are ordered)."""
        with self._cond:
            while True:
                if self._item is not None and (may_take is None or may_take()):
                    item, self._item = self._item, None
                    if on_take is not None:
                        on_take(item)
                    return item
                if self._closed and self._item is None:
                    return None
                self._cond.wait(0.05)

    def close(self, discard: bool = False) -> None:
        """No more frames; ``discard`` also drops the one waiting (the run is stopping)."""
        with self._cond:
            self._closed = True
            if discard:
                self._item = None
            self._cond.notify_all()


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """``{"p50", "p90", "p95", "p99", "max", "mean"}`` in ms (zeros for no values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return {**{f"p{p}": 0.0 for p in PERCENTILES}, "max": 0.0, "mean": 0.0}
    out = {f"p{p}": round(float(np.percentile(v, p)), 3) for p in PERCENTILES}
    out.update(max=round(float(v.max()), 3), mean=round(float(v.mean()), 3))
    return out


@dataclass
class LiveStats:
    """Counters and per-frame timings of a live run (read while it runs: the panel does)."""

    frames_read: int = 0
    frames_dropped: int = 0  # replaced in the slot before inference took them
    frames_stale: int = 0  # taken, but older than max_age_ms: not segmented
    max_in_flight_seen: int = 0
    max_buffered_seen: int = 0  # segmented frames waiting for the consumer
    records: list[FrameTiming] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None

    @property
    def frames_segmented(self) -> int:
        return len(self.records)

    @property
    def seconds(self) -> float:
        return (self.ended if self.ended is not None else time.perf_counter()) - self.started

    def recent(self, key: str = "end_to_end_ms", n: int = 100) -> list[float]:
        return [getattr(r, key) for r in self.records[-n:]]

    def summary(self) -> dict[str, Any]:
        """``frames_read``, ``frames_dropped`` (stale ones included), FPS and latency percentiles (ms)."""
        secs = self.seconds
        segmented = self.frames_segmented
        return {
            "frames_read": self.frames_read,
            "frames_segmented": segmented,
            "frames_dropped": self.frames_dropped + self.frames_stale,
            "frames_dropped_replaced": self.frames_dropped,
            "frames_dropped_stale": self.frames_stale,
            "drop_rate": round((self.frames_dropped + self.frames_stale) / self.frames_read, 4)
            if self.frames_read else 0.0,
            "seconds": round(secs, 3),
            "read_fps": round(self.frames_read / secs, 3) if secs > 0 else 0.0,
            "segmented_fps": round(segmented / secs, 3) if secs > 0 else 0.0,
            "max_in_flight_seen": self.max_in_flight_seen,
            "max_buffered_seen": self.max_buffered_seen,
            "latency_ms": {
                "end_to_end": percentiles([r.end_to_end_ms for r in self.records]),
                "capture": percentiles([r.capture_ms for r in self.records]),
                "wait": percentiles([r.wait_ms for r in self.records]),
                "infer": percentiles([r.infer_ms for r in self.records]),
            },
        }


# ----------------------------------------------------------------------------- the policy
class LiveSegmenter:
    """A ``Segmenter`` (anything with ``predict(image)`` and ``num_requests``) under the
    latest-only policy described in the module docstring.

    ``max_in_flight``: frames segmented at once (default: the Segmenter's optimal number of
    requests; more than that would only wait for a request while holding an aging frame, so it
    is capped there). ``max_age_ms``: drop a frame that waited longer than this (default: no
    age limit; the one-frame slot already bounds the wait).
    """

    def __init__(self, segmenter: Any, max_in_flight: int | None = None, max_age_ms: float | None = None) -> None:
        requests = max(1, int(getattr(segmenter, "num_requests", 1) or 1))
        jobs = requests if max_in_flight is None else int(max_in_flight)
        if jobs < 1:
            raise InvalidOptionError(f"max_in_flight must be >= 1, got {max_in_flight}.")
        if jobs > requests:
            log.info("live: %d frames in flight asked, the device runs %d requests; using %d "
                     "(create the Segmenter with hint='throughput' for more)", jobs, requests, requests)
            jobs = requests
        if max_age_ms is not None and max_age_ms <= 0:
            raise InvalidOptionError(f"max_age_ms must be > 0, got {max_age_ms}.")
        self.segmenter = segmenter
        self.max_in_flight = jobs
        self.max_age_ms = max_age_ms
        self.stats = LiveStats()

    def run(self, source: LiveSource | str | Path | int, max_frames: int | None = None) -> Iterator[LiveFrame]:
        """Segment ``source`` live; yields frames in capture order (a dropped frame is skipped).

        Stops at the end of a video (unless it loops), after ``max_frames`` frames were read,
        or when the caller stops iterating (the capture and workers are then stopped)."""
        src = source if isinstance(source, LiveSource) else LiveSource.open(source)
        if max_frames is not None and max_frames < 1:
            raise InvalidOptionError(f"max_frames must be >= 1, got {max_frames}.")
        stats = self.stats = LiveStats()
        slot = _LatestSlot()
        stop = threading.Event()
        cond = threading.Condition()
        taken: deque[int] = deque()  # indices being segmented or waiting for the consumer, in order
        done: dict[int, LiveFrame | BaseException] = {}
        state = {"in_flight": 0, "workers": self.max_in_flight}
        jobs = self.max_in_flight

        def capture() -> None:
            t0, i = time.perf_counter(), 0
            try:
                while not stop.is_set() and (max_frames is None or i < max_frames):
                    if src.realtime and src.fps:
                        delay = t0 + i / src.fps - time.perf_counter()
                        if delay > 0:
                            stop.wait(delay)
                    t_read = time.perf_counter()
                    ok, frame = src.read()
                    if not ok:
                        break
                    with cond:
                        stats.frames_read += 1
                    if slot.put(_Captured(i, frame, t_read, time.perf_counter())):
                        with cond:
                            stats.frames_dropped += 1
                    i += 1
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                with cond:
                    done[-1] = exc
                    cond.notify_all()
            finally:
                slot.close()

        def room() -> bool:  # called under the slot's lock: in flight + waiting results < 2 * jobs
            with cond:
                return len(taken) < 2 * jobs and not stop.is_set()

        def start(item: _Captured) -> None:  # under the slot's lock: frames enter ``taken`` in capture order
            item.t_start = time.perf_counter()
            with cond:
                if self.max_age_ms is not None and (item.t_start - item.t_ready) * 1e3 > self.max_age_ms:
                    stats.frames_stale += 1
                    item.stale = True
                    return
                taken.append(item.index)
                state["in_flight"] += 1
                item.in_flight = state["in_flight"]
                stats.max_in_flight_seen = max(stats.max_in_flight_seen, item.in_flight)

        def worker() -> None:
            try:
                while not stop.is_set():
                    item = slot.take(room, start)
                    if item is None:
                        return
                    if item.stale:
                        continue
                    t_start, in_flight = item.t_start, item.in_flight
                    try:
                        result = self.segmenter.predict(item.image)
                        t_done = time.perf_counter()
                        t = result.timings
                        timing = FrameTiming(
                            index=item.index, captured_at_ms=round((item.t_ready - stats.started) * 1e3, 3),
                            capture_ms=round((item.t_ready - item.t_read) * 1e3, 3),
                            wait_ms=round((t_start - item.t_ready) * 1e3, 3),
                            preprocess_ms=round(t.preprocess, 3), infer_ms=round(t.infer, 3),
                            postprocess_ms=round(t.postprocess, 3),
                            end_to_end_ms=round((t_done - item.t_ready) * 1e3, 3),
                            dropped_before=stats.frames_dropped + stats.frames_stale, in_flight=in_flight)
                        if result.source is None:
                            result.source = f"frame_{item.index:06d}"
                        payload: LiveFrame | BaseException = LiveFrame(item.index, item.image, result, timing)
                    except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                        payload = exc
                    with cond:
                        state["in_flight"] -= 1
                        done[item.index] = payload
                        stats.max_buffered_seen = max(stats.max_buffered_seen, len(done))
                        cond.notify_all()
            finally:
                with cond:
                    state["workers"] -= 1
                    cond.notify_all()

        threads = [threading.Thread(target=capture, name="attnseg-live-capture", daemon=True)]
        threads += [threading.Thread(target=worker, name=f"attnseg-live-{k}", daemon=True) for k in range(jobs)]
        for t in threads:
            t.start()
        try:
            while True:
                with cond:
                    while True:
                        if -1 in done:
                            raise done.pop(-1)
                        if taken and taken[0] in done:
                            payload = done.pop(taken.popleft())
                            break
                        if not taken and state["workers"] == 0:
                            payload = None
                            break
                        cond.wait(0.05)
                    if payload is not None:
                        cond.notify_all()
                if payload is None:
                    break
                if isinstance(payload, BaseException):
                    raise payload
                stats.records.append(payload.timing)
                yield payload
        finally:
            stats.ended = time.perf_counter()
            stop.set()
            slot.close(discard=True)
            for t in threads:
                t.join(timeout=10.0)
            src.close()


# ----------------------------------------------------------------------------- drawing and files
def draw_panel(image: np.ndarray, stats: LiveStats, device: str = "", precision: str = "") -> np.ndarray:
    """A small performance panel in the top-left corner (drawn on ``image`` itself)."""
    secs = stats.seconds
    e2e = stats.recent()
    p50, p95 = (np.percentile(e2e, 50), np.percentile(e2e, 95)) if e2e else (0.0, 0.0)
    fps = stats.frames_segmented / secs if secs > 0 else 0.0
    lines = [f"FPS {fps:.1f}  dropped {stats.frames_dropped + stats.frames_stale}/{stats.frames_read}",
             f"latency p50 {p50:.0f} ms  p95 {p95:.0f} ms",
             f"{device} {precision}".strip()]
    scale = max(0.35, min(1.0, image.shape[1] / 900.0))
    thick = 1 if scale < 0.7 else 2
    h = int(22 * scale) + 4
    cv2.rectangle(image, (0, 0), (int(330 * scale) + 10, h * len(lines) + 6), (0, 0, 0), cv2.FILLED)
    for k, text in enumerate(lines):
        cv2.putText(image, text, (5, h * (k + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale * 0.6, (255, 255, 255), thick,
                    cv2.LINE_AA)
    return image


class LiveWriter:
    """What ``--no-show`` writes into a folder: the run's ``OutputWriter`` files (``overlay.mp4``,
    one frame per captured frame: the newest overlay with the panel, held over dropped frames as a
    screen shows it; ``masks/frame_NNNNNN.png``) plus ``frames.csv`` and ``frames.json`` (per-frame
    timings)."""

    def __init__(self, folder: Path, fps: float | None, options: Any, codec: Any, panel: bool = True) -> None:
        from attnseg.runtime.writer import OutputWriter

        self.folder = Path(folder)
        self.panel = panel
        self.files = OutputWriter(self.folder, codec, options, video=True, fps=fps)

    def write(self, frame: LiveFrame, stats: LiveStats, device: str = "", precision: str = "") -> np.ndarray | None:
        """Write one segmented frame; returns the overlay picture (with the panel), if overlays are written."""
        def panel(picture: np.ndarray) -> np.ndarray:
            return draw_panel(picture, stats, device, precision) if self.panel else picture

        pictures = self.files.write(frame.result, frame.image, stem=f"frame_{frame.index:06d}", index=frame.index,
                                    decorate=panel)
        return pictures.get("overlay")

    def close(self, stats: LiveStats) -> None:
        from attnseg.runtime.outputs import write_file_atomic

        self.files.close()
        rows = [asdict(r) for r in stats.records]
        buf = io.StringIO()
        names = [f for f in FrameTiming.__dataclass_fields__]
        w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        write_file_atomic(self.folder / FRAMES_CSV, buf.getvalue().encode())
        write_file_atomic(self.folder / FRAMES_JSON, (json.dumps(rows, indent=1) + "\n").encode())


class _Window:
    """An OpenCV window; ``q`` or Esc ends the run."""

    def __init__(self, title: str) -> None:
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_AUTOSIZE)
        except cv2.error:
            raise InputFileError(
                "This OpenCV cannot open a window (opencv-python-headless, or no display); "
                "run with --no-show to write overlay.mp4 and the latencies instead.") from None

    def show(self, picture: np.ndarray) -> bool:
        cv2.imshow(self.title, picture)
        return (cv2.waitKey(1) & 0xFF) not in (ord("q"), 27)

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


def run_live(segmenter: Any, source: LiveSource | str | Path | int, *, output: Path | None = None,
             show: bool = False, max_in_flight: int | None = None, max_age_ms: float | None = None,
             max_frames: int | None = None, output_options: Any = None, panel: bool = True,
             progress: Any = None) -> dict[str, Any]:
    """Segment ``source`` live with ``segmenter``; show a window (``show``) and/or write the files
    of ``LiveWriter`` into ``output`` (an existing folder). Returns the summary (also written to
    ``output/summary.json``): counts, latency percentiles in ms, device, precision, source."""
    from attnseg.runtime.outputs import OutputOptions, render, write_report

    src = source if isinstance(source, LiveSource) else LiveSource.open(source)
    live = LiveSegmenter(segmenter, max_in_flight=max_in_flight, max_age_ms=max_age_ms)
    device = str(getattr(segmenter, "device", ""))
    precision = str(getattr(segmenter, "inference_precision", ""))
    codec = segmenter.codec
    options = output_options or OutputOptions()
    window = _Window(f"attnseg live: {src.description}") if show else None
    writer = LiveWriter(output, src.fps, options, codec, panel) if output is not None else None
    on_screen = OutputOptions(masks=False, overlays=True, alpha=options.alpha)
    try:
        for frame in live.run(src, max_frames=max_frames):
            picture = None
            if writer is not None:
                picture = writer.write(frame, live.stats, device, precision)
            if window is not None:
                if picture is None:
                    picture = draw_panel(render(frame.result, frame.image, on_screen, codec)["overlay"],
                                         live.stats, device, precision)
                if not window.show(picture):
                    break
            if progress is not None:
                progress(frame, live.stats)
    except KeyboardInterrupt:
        if src.kind == "video":
            raise
    finally:
        if window is not None:
            window.close()
        if writer is not None:
            writer.close(live.stats)
    if not live.stats.records:
        raise InputFileError(f"No frame of {src.description} could be segmented.")
    summary = {
        "input": src.description, "input_kind": src.kind, "input_fps": src.fps, "realtime": src.realtime,
        "device": device, "inference_precision": precision, "max_in_flight": live.max_in_flight,
        "max_age_ms": max_age_ms, **live.stats.summary(),
    }
    if output is not None:
        write_report(output, {"summary": summary, "model": str(getattr(segmenter, "model_path", "") or "")})
    return summary


__all__ = ["FrameTiming", "LiveFrame", "LiveSegmenter", "LiveSource", "LiveStats", "LiveWriter", "draw_panel",
           "is_url", "percentiles", "run_live"]
