"""The Ray Data actor: one ``Segmenter`` per worker; decode, segment, encode and write on the worker.

Input rows come from ``ray.data.read_binary_files`` (``bytes`` and ``path``), or, for a video,
name a range of frames. For each image the worker hashes the bytes (resume by content, see
``attnseg.cluster.manifest``), skips it if the index of finished images has it, and otherwise
segments it, writes its pictures straight to the output (``attnseg.cluster.storage``: local
rename or one upload) and, once the whole batch is written, one manifest shard. It returns one
small status row per image (key, status, error): no pixels, no encoded files leave the worker.

A failing image becomes a ``status="error"`` record, never an exception that would take the job
down. An image that kills its worker process (a native crash, out of memory) is caught by the
run's ``AttemptTracker``: Ray restarts the actor and retries the batch; a retried batch goes
one image at a time, and an image that was being segmented when a worker died
``max_attempts`` times is recorded failed instead of being tried again.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from dataclasses import asdict, replace
from typing import Any

from attnseg.errors import AttnsegError
from attnseg.runtime.options import RuntimeOptions

#: Columns of the rows workers return.
COLUMNS = ("key", "status", "error")


class AttemptTracker:
    """A per-run Ray actor: which images were in flight when a worker died, and how often.

    It also runs the run's two bookkeeping steps next to the data, so they cost no extra worker
    process: building the index of finished images before the pipeline, and merging the manifest
    and writing ``summary.json`` after it (``attnseg.cluster.manifest.build_index``,
    ``attnseg.cluster.job.finalize``).
    """

    def __init__(self) -> None:
        import threading

        self.pending: set[str] = set()
        self.crashes: dict[str, int] = {}
        # finalize needs attnseg.runtime (OpenVINO): import it while the pipeline runs, not after.
        threading.Thread(target=_warm_imports, daemon=True).start()

    def build_index(self, out_uri: str, sig: str) -> tuple[Any, dict[str, Any]]:
        from attnseg.cluster.manifest import build_index

        return build_index(out_uri, sig)

    def finalize(self, *args: Any) -> dict[str, int]:
        from attnseg.cluster.job import finalize

        return finalize(*args)

    def begin_batch(self, keys: list[str]) -> bool:
        """True when some key was in flight before (this batch is a retry after a worker died)."""
        retry = any(k in self.pending or k in self.crashes for k in keys)
        self.pending.update(keys)
        return retry

    def begin_one(self, key: str) -> int:
        """Times ``key`` was being segmented alone when a worker died; counts this attempt."""
        n = self.crashes.get(key, 0)
        self.crashes[key] = n + 1
        return n

    def end(self, keys: list[str]) -> None:
        for k in keys:
            self.pending.discard(k)
            self.crashes.pop(k, None)


class SegmentWorker:
    """Callable class for ``Dataset.map_batches`` (pyarrow batches in and out)."""

    def __init__(self, model: str, runtime: RuntimeOptions, threads: int | None, outputs: dict[str, Any], *,
                 output_uri: str, signature: str, run_id: str, index: list[Any] | None = None,
                 tracker: list[Any] | None = None, max_attempts: int = 3, content: str | None = None) -> None:
        from attnseg.cluster.storage import Location, Store
        from attnseg.runtime import Segmenter
        from attnseg.runtime.outputs import OutputOptions

        config = {"INFERENCE_NUM_THREADS": int(threads)} if threads and runtime.device.upper() == "CPU" else None
        self.seg = Segmenter(model, options=runtime, config=config)
        self.options = OutputOptions(**outputs)
        self.model = model
        self.store = Store(Location.of(output_uri))
        self.signature = signature
        self.content = content  # videos: the file's identity (frames are not hashed one by one)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.node = _node_id()
        self.shard_prefix = f"{run_id}-{uuid.uuid4().hex[:12]}"
        self.shards = 0
        self.tracker = tracker[0] if tracker else None
        self.max_attempts = int(max_attempts)
        self.done = None
        if index:
            import numpy as np
            import ray

            self.done = np.asarray(ray.get(index[0]))  # zero-copy from the node's object store

    # ------------------------------------------------------------------ a batch
    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        columns = batch.column_names
        items = batch.to_pylist() if "bytes" not in columns else None
        keys = (self._video_keys(items) if items is not None
                else [os.path.basename(p) for p in batch.column("path").to_pylist()])
        retry = self.tracker is not None and _call(self.tracker.begin_batch, keys)
        rows: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        if items is not None:
            for item in items:
                rows.extend(self._video(item, records, retry))
        else:
            data, paths = batch.column("bytes"), batch.column("path").to_pylist()
            for i, path in enumerate(paths):
                rows.append(self._guarded(keys[i], path, lambda i=i, path=path: self._image(
                    keys[i], path, data[i].as_py(), records), retry, records))
        if records:
            from attnseg.cluster.manifest import SHARDS, dumps_shard

            self.shards += 1
            self.store.write(f"{SHARDS}/{self.shard_prefix}-{self.shards:06d}.jsonl", dumps_shard(records))
        if self.tracker is not None:
            self.tracker.end.remote(keys)  # fire and forget: a lost message only means a slower retry
        return pa.table({
            "key": pa.array([r["key"] for r in rows], pa.string()),
            "status": pa.array([r["status"] for r in rows], pa.string()),
            "error": pa.array([r.get("error") for r in rows], pa.string()),
        })

    def _guarded(self, key: str, path: str, run: Any, retry: bool, records: list[dict[str, Any]]) -> dict[str, Any]:
        """Run one image; in a retried batch, alone and at most ``max_attempts`` times."""
        if retry:
            died = _call(self.tracker.begin_one, key)
            if died >= self.max_attempts:
                return self._failed(key, path, AttnsegError(
                    f"the worker process died {died} times while segmenting it (crash or out of memory); "
                    "not tried again"), time.perf_counter(), None, records)
            row = run()
            _call(self.tracker.end, [key])  # it survived: only the image that kills the worker counts
            return row
        return run()

    # ------------------------------------------------------------------ one image
    def _image(self, key: str, path: str, data: bytes, records: list[dict[str, Any]]) -> dict[str, Any]:
        from attnseg.imaging import decode_image

        t0 = time.perf_counter()
        content = hashlib.sha256(data).hexdigest()
        if self._is_done(key, content):
            return {"key": key, "status": "resumed", "error": None}
        t1 = time.perf_counter()
        try:
            image = decode_image(data, source=path)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a manifest record
            return self._failed(key, path, exc, t0, content, records)
        return self._segment(key, path, image, read_ms=(t1 - t0) * 1e3, decode_ms=(time.perf_counter() - t1) * 1e3,
                             t0=t0, video=False, content=content, records=records)

    def _is_done(self, key: str, content: str | None) -> bool:
        """Finished by an earlier run with this content and these settings (the index's digests)."""
        import numpy as np

        from attnseg.cluster.manifest import digest

        if self.done is None or not self.done.size or content is None:
            return False
        d = np.uint64(digest(key, content, self.signature))
        i = int(np.searchsorted(self.done, d))
        return i < self.done.size and self.done[i] == d

    def _video_keys(self, items: list[dict[str, Any]]) -> list[str]:
        return [f"frame_{i:06d}" for item in items for i in range(int(item["start"]), int(item["stop"]))]

    def _video(self, item: dict[str, Any], records: list[dict[str, Any]], retry: bool) -> list[dict[str, Any]]:
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
                if self._is_done(key, self.content):
                    if not cap.grab():  # keep the decoder's position; no need to decode a done frame
                        break
                    out.append({"key": key, "status": "resumed", "error": None})
                    continue
                t0 = time.perf_counter()
                ok, frame = cap.read() if cap.isOpened() else (False, None)
                if not ok or frame is None:
                    out.append(self._failed(key, path, AttnsegError(f"{path}: frame {i} cannot be read."), t0,
                                            self.content, records))
                    continue
                t1 = time.perf_counter()
                # A video frame is read and decoded in one call: all of it counts as decode.
                out.append(self._guarded(key, path, lambda key=key, frame=frame, t0=t0, t1=t1, i=i: self._segment(
                    key, f"{path}#{i}", frame, read_ms=0.0, decode_ms=(t1 - t0) * 1e3, t0=t0, video=True,
                    content=self.content, records=records), retry, records))
        finally:
            cap.release()
        return out

    def _segment(self, key: str, path: str, image: Any, read_ms: float, decode_ms: float, t0: float,
                 video: bool, content: str | None, records: list[dict[str, Any]]) -> dict[str, Any]:
        from attnseg.runtime import outputs

        try:
            result = self.seg.predict(image)
            result.source = key
            t2 = time.perf_counter()
            # videos: masks only on the cluster (see attnseg.cluster.job)
            options = replace(self.options, overlays=False, attention=False) if video else self.options
            files = outputs.encode_image_outputs(result, image, options, self.seg.codec, outputs.output_stem(key, video))
            t3 = time.perf_counter()
            for rel, blob in files.items():
                self.store.write(rel, blob)
        except Exception as exc:  # noqa: BLE001
            return self._failed(key, path, exc, t0, content, records)
        t4 = time.perf_counter()
        summary = result.summary()
        timings = dict(summary["timings"])
        timings.update(read_ms=round(read_ms, 3), decode_ms=round(decode_ms, 3),
                       encode_ms=round((t3 - t2) * 1e3, 3), write_ms=round((t4 - t3) * 1e3, 3),
                       worker_total_ms=round((t4 - t0) * 1e3, 3))
        records.append({**summary, "key": key, "input": path, "status": "ok", "error": None,
                        "classes": list(result.classes), "device": self.seg.device,
                        "resize_policy": self.seg.resize_policy.value, "tta": self.seg.tta.value,
                        "inference_precision": self.seg.inference_precision,
                        "precision_choice": self.seg.precision_choice.to_dict(), "outputs": sorted(files),
                        "worker": self.worker, "node": self.node, "timings": timings, "content": content,
                        "signature": self.signature, "model": self.model, "time": time.time()})
        return {"key": key, "status": "ok", "error": None}

    def _failed(self, key: str, path: str, exc: BaseException, t0: float, content: str | None,
                records: list[dict[str, Any]] | None) -> dict[str, Any]:
        message = str(exc) if isinstance(exc, AttnsegError) else f"{type(exc).__name__}: {exc}"
        if records is not None:
            records.append({"key": key, "source": key, "input": path, "status": "error", "error": message,
                            "outputs": [], "worker": self.worker, "content": content, "signature": self.signature,
                            "model": self.model, "time": time.time(),
                            "timings": {"worker_total_ms": round((time.perf_counter() - t0) * 1e3, 3)}})
        return {"key": key, "status": "error", "error": message}


def _warm_imports() -> None:
    import contextlib

    with contextlib.suppress(Exception):
        import attnseg.cluster.job  # noqa: F401


def _node_id() -> str | None:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # noqa: BLE001 - outside Ray (tests calling the worker directly)
        return None


def _call(method: Any, *args: Any) -> Any:
    import ray

    return ray.get(method.remote(*args))


def worker_kwargs(model: str, options: Any, hint: str = "latency") -> dict[str, Any]:
    """Constructor arguments of ``SegmentWorker`` from ``ClusterOptions`` (plain, picklable values)."""
    return {"model": model, "runtime": replace(options.runtime, hint=hint), "threads": options.cpus_per_worker,
            "outputs": asdict(options.outputs)}
