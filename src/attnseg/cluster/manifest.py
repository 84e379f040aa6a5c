"""The record of a cluster run, written by the workers in shards and merged at the end.

Each worker batch writes one shard, ``manifest.d/<run>-<worker>-<n>.jsonl`` (one upload on an
object store), after the batch's pictures are in place; the end of a run merges every shard into
``manifest.jsonl`` (latest record of each image wins) and removes the merged shards. A killed
run leaves shards; the next run reads them as if merged.

**Resume is by content, not by name.** A record carries the SHA-256 of the image's bytes
(``content``; for a video frame, the video file's ``size:mtime_ns``) and the run ``signature``
(output options, resize policy, precision, device). An image is done when its latest record is
``ok``, its content hash and signature match this run, and every file it wrote is present. A
hash rather than (size, mtime/ETag): the worker has the bytes in hand anyway (Ray Data's
reader gives bytes, not file info), hashing them costs ~0.1 ms per Kvasir image against ~10-30
ms of inference, and it cannot be fooled: a replaced file of the same size with its mtime kept
(``cp -p``, ``rsync -t``, ``touch -r``) is caught, while an S3 ETag is no content hash for
multipart uploads and a copied object gets a new LastModified (which would redo finished
work). The cost: a resumed run reads every input again (but segments only what changed).

The index the workers check is built by a Ray task and shipped as one object (8 bytes per
finished image, a sorted ``uint64`` array of digests of (key, content, signature)): the driver
never holds per-image state.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from attnseg.cluster.storage import Store

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
SHARDS = "manifest.d"
#: Written first thing by every run: marks the folder as a cluster run's (an early-killed run resumes).
RUN_MARKER = f"{SHARDS}/_run.json"


def digest(key: str, content: str, signature: str) -> int:
    """64-bit identity of (image name, content, run signature)."""
    h = hashlib.blake2b(f"{key}\0{content}\0{signature}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little", signed=False)


def signature(outputs: dict[str, Any], resize_policy: str | None, inference_precision: str, device: str,
              tta: str = "none") -> str:
    """What must match for a finished image to count: its outputs and how it was segmented."""
    return json.dumps({"outputs": outputs, "resize_policy": resize_policy, "precision": inference_precision,
                       "device": device, **({"tta": tta} if tta not in (None, "none") else {})}, sort_keys=True)


def shard_names(store: Store) -> list[str]:
    return sorted(rel for rel, _ in store.list(SHARDS) if rel.endswith(".jsonl"))


def _lines(data: bytes | None, where: str) -> Iterator[dict[str, Any]]:
    if not data:
        return
    bad = 0
    for line in data.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            str(record["key"])
        except (json.JSONDecodeError, KeyError, TypeError):
            bad += 1
            continue
        yield record
    if bad:
        log.warning("%s: ignored %d unreadable line(s) (a killed run's last write)", where, bad)


def read_records(store: Store, shards: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Latest record of every key, from ``manifest.jsonl`` and the shards (by record time)."""
    latest: dict[str, dict[str, Any]] = {}

    def take(record: dict[str, Any]) -> None:
        key = str(record["key"])
        old = latest.get(key)
        if old is None or float(record.get("time", 0)) >= float(old.get("time", 0)):
            latest[key] = record

    for record in _lines(store.read(MANIFEST_NAME), MANIFEST_NAME):
        take(record)
    for rel in shard_names(store) if shards is None else shards:
        for record in _lines(store.read(rel), rel):
            take(record)
    return latest


def build_index(out_uri: str, sig: str) -> tuple[np.ndarray, dict[str, Any]]:
    """(sorted digests of finished images, {"models": [...], "records": n}): run as a Ray task."""
    from attnseg.cluster.storage import Location

    store = Store(Location.of(out_uri))
    records = read_records(store)
    present = {rel for rel, _ in store.list()}
    done = [digest(k, r["content"], sig) for k, r in records.items()
            if r.get("status") == "ok" and r.get("signature") == sig and r.get("content")
            and all(rel in present for rel in r.get("outputs", []))]
    models = sorted({str(r["model"]) for r in records.values() if r.get("model")})
    return np.unique(np.asarray(done, dtype=np.uint64)), {"models": models, "records": len(records)}


def merge(store: Store) -> dict[str, dict[str, Any]]:
    """Fold the shards into ``manifest.jsonl`` (atomically), then remove the merged shards."""
    shards = shard_names(store)
    records = read_records(store, shards)
    body = "".join(json.dumps(records[k], sort_keys=True) + "\n" for k in sorted(records))
    store.write(MANIFEST_NAME, body.encode())
    for rel in shards:
        store.delete(rel)
    return records


def dumps_shard(records: Iterable[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
