"""The one options object of a cluster run, and what a run reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnseg.errors import AttnsegError, InputFileError
from attnseg.runtime.options import RuntimeOptions
from attnseg.runtime.outputs import OutputOptions

LOCAL = "local"
#: RuntimeOptions a worker sets itself (latency hint, one request; see ``ClusterOptions``).
WORKER_FIXED = ("hint", "num_streams", "num_requests", "cache_dir", "config_file")


class ClusterError(AttnsegError):
    """The Ray job could not start or run (bad address, a worker that cannot load the model...)."""


class ImagesFailedError(ClusterError):
    """Some images could not be segmented and ``skip_errors`` was off; they are in the manifest."""

    exit_code = 1


@dataclass(frozen=True)
class ClusterOptions:
    """How ``segment_dataset`` runs.

    ``address``: ``"local"`` starts a private Ray instance on this machine (loopback only, no
    dashboard, usage stats off), ``"auto"`` joins the cluster this machine belongs to, and
    ``host:port`` joins the cluster whose head (GCS) is there. ``ray://`` (Ray Client) is refused:
    Ray Data does not run over it; submit the run as a Ray Job instead (see ``attnseg.cluster.job``).
    ``concurrency``: workers (actors), each holding one ``Segmenter``; default: the cluster's CPUs
    divided by ``cpus_per_worker``. ``cpus_per_worker`` is both what each worker reserves from
    Ray and the OpenVINO thread count it runs with on CPU.
    ``batch_size``: images one worker takes at a time (video: frames per task is ``video_chunk``).
    ``skip_errors``: keep going past images that fail (each is recorded in the manifest);
    without it the run stops at the first failure, after recording it.
    ``force``: start afresh in an output folder that already has results (default: resume).
    ``runtime``: the device, inference precision, resize policy and TTA of every worker's
    ``Segmenter`` (``RuntimeOptions``); its hint, streams, requests, cache and config file stay
    unset: each worker runs one image at a time under the latency hint (more workers, not more streams).
    """

    address: str = LOCAL
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    concurrency: int | None = None
    cpus_per_worker: int = 1
    num_cpus: int | None = None  # CPUs a local instance gets (default: this machine's)
    batch_size: int = 8
    video_chunk: int = 64
    max_frames: int | None = None
    outputs: OutputOptions = field(default_factory=OutputOptions)
    skip_errors: bool = False
    force: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("concurrency", "num_cpus", "max_frames"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise InputFileError(f"{name} must be >= 1, got {value}.")
        for name in ("cpus_per_worker", "batch_size", "video_chunk"):
            if int(getattr(self, name)) < 1:
                raise InputFileError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if not str(self.address).strip():
            raise InputFileError("Ray address is empty; use 'local', 'auto' or ray://host:port.")
        local = [name for name in WORKER_FIXED if getattr(self.runtime, name) is not None]
        if local:
            raise InputFileError(f"RuntimeOptions {', '.join(local)} do(es) not apply on the cluster (each worker "
                                 "runs one image at a time; use concurrency for more workers).")


@dataclass
class ClusterSummary:
    """What a run did: counts, failures, speed, and where everything is."""

    output: Path | str  # a local folder, or the URI of an object-store prefix
    manifest: Path | str
    total: int  # images (or video frames) in the input
    segmented: int  # segmented by this run
    resumed: int  # already done by an earlier run with the same content, skipped
    failed: list[tuple[str, str]]  # (image, error) of this run (the first few; all are in the manifest)
    workers: int
    seconds: float
    address: str
    failed_count: int = 0  # images that failed in this run
    driver_result_bytes: int = 0  # bytes of the status rows the driver received (no pixels)

    @property
    def images_per_second(self) -> float:
        return self.segmented / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "output": str(self.output), "manifest": str(self.manifest), "total": self.total,
            "segmented": self.segmented, "resumed": self.resumed,
            "failed": [{"image": k, "error": e} for k, e in self.failed], "failed_count": self.failed_count,
            "driver_result_bytes": self.driver_result_bytes,
            "workers": self.workers, "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 3), "address": self.address,
        }
