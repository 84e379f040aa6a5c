"""The Ray Data actor: one ``Segmenter`` per worker; read, decode, segment and encode on the worker.

Each input row names one image (or a range of video frames). Each output row carries the
image's record for the manifest and its encoded files (``{relative path: bytes}``, produced by
``attnseg.runtime.outputs`` exactly as local ``seg-infer`` produces them); the driver writes the
files and appends the record. A failing image becomes a row with ``status="error"``, never an
exception that would take the whole job down.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import asdict
from typing import Any

from attnseg.errors import AttnsegError

#: Columns of the rows workers return.
COLUMNS = ("key", "status", "record", "paths", "blobs")


class SegmentWorker:
    """Callable class for ``Dataset.map_batches`` (pyarrow batches in and out)."""

    def __init__(self, model: str, device: str, threads: int | None, inference_precision: str,
                 outputs: dict[str, Any], hint: str = "latency", resize_policy: str | None = None) -> None:
        from attnseg.runtime import Segmenter
        from attnseg.runtime.outputs import OutputOptions

        config = {"INFERENCE_NUM_THREADS": int(threads)} if threads and device.upper() == "CPU" else None
        self.seg = Segmenter(model, device=device, hint=hint, config=config,
                             inference_precision=inference_precision, resize_policy=resize_policy)
        self.options = OutputOptions(**outputs)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows: list[dict[str, Any]] = []
        for item in batch.to_pylist():
            if item["kind"] == "video":
                rows.extend(self._video(item))
            else:
                rows.append(self._image(item["key"], item["path"]))
        return pa.table({
            "key": pa.array([r["key"] for r in rows], pa.string()),
            "status": pa.array([r["status"] for r in rows], pa.string()),
            "record": pa.array([json.dumps(r["record"]) for r in rows], pa.string()),
            "paths": pa.array([list(r["files"]) for r in rows], pa.list_(pa.string())),
            "blobs": pa.array([list(r["files"].values()) for r in rows], pa.list_(pa.binary())),
        })

    # ------------------------------------------------------------------ one image
    def _image(self, key: str, path: str) -> dict[str, Any]:
        import numpy as np

        from attnseg.imaging import decode_image

        t0 = time.perf_counter()
        try:
            try:
                data = np.fromfile(path, dtype=np.uint8)
            except OSError as exc:
                raise AttnsegError(f"Image {path} cannot be read: {exc.strerror or exc}.") from None
            t1 = time.perf_counter()
            image = decode_image(data, source=path)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a manifest record
            return self._failed(key, path, exc, t0)
        return self._segment(key, path, image, read_ms=(t1 - t0) * 1e3,
                             decode_ms=(time.perf_counter() - t1) * 1e3, t0=t0, video=False)

    def _video(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """Frames ``start..stop-1`` of a video: seek once, then decode in order."""
        import cv2

        path, start, stop = item["path"], int(item["start"]), int(item["stop"])
        out: list[dict[str, Any]] = []
        cap = cv2.VideoCapture(path)
        try:
            if start and cap.isOpened():
                cap.set(cv2.CAP_PROP_POS_FRAMES, start)
            for i in range(start, stop):
                key = f"frame_{i:06d}"
                t0 = time.perf_counter()
                ok, frame = cap.read() if cap.isOpened() else (False, None)
                if not ok or frame is None:
                    out.append(self._failed(key, path, AttnsegError(f"{path}: frame {i} cannot be read."), t0))
                    continue
                t1 = time.perf_counter()
                # A video frame is read and decoded in one call: all of it counts as decode.
                out.append(self._segment(key, f"{path}#{i}", frame, read_ms=0.0,
                                         decode_ms=(t1 - t0) * 1e3, t0=t0, video=True))
        finally:
            cap.release()
        return out

    def _segment(self, key: str, path: str, image: Any, read_ms: float, decode_ms: float, t0: float,
                 video: bool) -> dict[str, Any]:
        from attnseg.runtime import outputs

        try:
            result = self.seg.predict(image)
            result.source = key
            t2 = time.perf_counter()
            stem = outputs.output_stem(key, video)
            files = {}
            for kind, picture in outputs.render(result, image, self.options).items():
                if video and kind != "mask":
                    continue  # videos: masks only on the cluster (see attnseg.cluster.job)
                rel = outputs.relative_path(kind, stem)
                files[rel] = outputs.encode(picture, rel)
        except Exception as exc:  # noqa: BLE001
            return self._failed(key, path, exc, t0)
        t3 = time.perf_counter()
        summary = result.summary()
        timings = dict(summary["timings"])
        timings.update(read_ms=round(read_ms, 3), decode_ms=round(decode_ms, 3),
                       encode_ms=round((t3 - t2) * 1e3, 3), worker_total_ms=round((t3 - t0) * 1e3, 3))
        record = {**summary, "key": key, "input": path, "status": "ok", "error": None,
                  "classes": list(result.classes), "device": self.seg.device,
                  "resize_policy": self.seg.resize_policy.value,
                  "inference_precision": self.seg.inference_precision,
                  "precision_choice": self.seg.precision_choice.to_dict(), "outputs": sorted(files), "worker": self.worker,
                  "timings": timings}
        return {"key": key, "status": "ok", "record": record, "files": files}

    def _failed(self, key: str, path: str, exc: BaseException, t0: float) -> dict[str, Any]:
        message = str(exc) if isinstance(exc, AttnsegError) else f"{type(exc).__name__}: {exc}"
        record = {"key": key, "source": key, "input": path, "status": "error", "error": message,
                  "outputs": [], "worker": self.worker,
                  "timings": {"worker_total_ms": round((time.perf_counter() - t0) * 1e3, 3)}}
        return {"key": key, "status": "error", "record": record, "files": {}}


def worker_kwargs(model: str, options: Any, hint: str = "latency") -> dict[str, Any]:
    """Constructor arguments of ``SegmentWorker`` from ``ClusterOptions`` (plain, picklable values)."""
    return {"model": model, "device": options.device, "threads": options.cpus_per_worker,
            "inference_precision": options.inference_precision, "outputs": asdict(options.outputs),
            "hint": hint, "resize_policy": options.resize_policy}
