"""``segment_dataset``: the driver of a cluster run. It plans and reports; workers read and write.

The driver lists the input (names only, through ``pyarrow.fs``: local folders, ``s3://``,
``gs://``, ``abfs://``), takes the output's lock, and builds one Ray Data pipeline:

    read_binary_files(paths, filesystem=...)          read tasks on the workers
      -> map_batches(SegmentWorker, ActorPoolStrategy)  one Segmenter per actor: hash, skip what is
                                                        done, segment, write pictures and a manifest
                                                        shard straight to OUT
      -> small status rows back to the driver           (key, status, error): counts and progress

Two steps on the run's helper actor bracket it: one builds the index of finished images from OUT's manifest (resume by
content, ``attnseg.cluster.manifest``), one merges the shards into ``manifest.jsonl`` and writes
``summary.json``. No image or mask bytes pass through the driver, and it keeps no per-image
state while the pipeline runs (counts, and the first few failures).

Video inputs (local files): frames are segmented in ranges on the workers and their masks and
JSON are written as local ``seg-infer`` writes them; the overlay video is not (frames finish out
of order on many machines, and a resumable job cannot append to an mp4; run local ``seg-infer``
for it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from attnseg.cluster.inputs import InputPlan, key_of, plan_inputs
from attnseg.cluster.manifest import MANIFEST_NAME, RUN_MARKER, SHARDS, merge, signature
from attnseg.cluster.options import LOCAL, ClusterError, ClusterOptions, ClusterSummary, ImagesFailedError
from attnseg.cluster.storage import Location, Store
from attnseg.cluster.worker import AttemptTracker, SegmentWorker, worker_kwargs
from attnseg.errors import AttnsegError, InputFileError, OutputExistsError, short_message
from attnseg.runtime import outputs

log = logging.getLogger(__name__)

WORKER_HINT = "latency"  # one image at a time per worker; more workers, not more streams
#: Read tasks reserve no CPU: they only move bytes, and 1-CPU actors filling a small cluster
#: would otherwise starve them (the pipeline would stall with every actor idle).
READ_CPUS = 0
#: Files per read task, at most (few, large read tasks keep the driver's scheduling cost low).
MAX_FILES_PER_READ = 64
#: Failures the driver keeps for its report (the manifest has them all).
KEEP_FAILURES = 20
#: A worker death while segmenting an image counts against it; at this many it is recorded failed.
MAX_ATTEMPTS = 3

RAY_CLIENT_REFUSAL = (
    "{address}: Ray Data does not run over Ray Client (ray://), the driver must be part of the cluster "
    "(ray-project/ray#42739). Run the driver on the cluster: submit it as a Ray Job, e.g.\n"
    "  ray job submit --address http://HEAD:8265 -- seg-infer MODEL INPUT -o OUTPUT --ray auto\n"
    "(with the model where every node can read it, and INPUT/OUTPUT as s3://, gs://, abfs:// URIs or on a "
    "shared filesystem), or run seg-infer ... --ray auto on a node of the cluster."
)


def segment_dataset(model: str | Path, inputs: str | Path, output: str | Path,
                    options: ClusterOptions | None = None) -> ClusterSummary:
    """Segment every image of ``inputs`` on a Ray cluster into ``output``, resuming a killed run.

    ``inputs`` and ``output`` are local paths or ``s3://`` / ``gs://`` / ``abfs://`` URIs.
    ``output`` gets exactly what local ``seg-infer`` writes (``masks/``, ``overlays/``,
    ``attention/``, ``summary.json``) plus ``manifest.jsonl``. Raises ``ImagesFailedError``
    after recording the first failed image unless ``options.skip_errors``.
    """
    options = options or ClusterOptions()
    check_address(options.address)
    model_path = _check_model(model, options)
    plan = plan_inputs(inputs, options.max_frames)
    dest = Location.of(output)
    with _output_lock(dest):  # one writer per output folder, whatever path names it
        return _segment(model_path, plan, dest, options)


def check_address(address: str) -> None:
    """Refuse Ray Client addresses (Ray Data cannot run over them) with how to run instead."""
    env = os.environ.get("RAY_ADDRESS", "")
    if str(address).startswith("ray://"):
        raise ClusterError(RAY_CLIENT_REFUSAL.format(address=address))
    if address != LOCAL and env.startswith("ray://"):
        raise ClusterError(RAY_CLIENT_REFUSAL.format(address=f"RAY_ADDRESS={env}"))


@contextmanager
def _output_lock(dest: Location) -> Iterator[None]:
    if dest.remote:  # object stores have no locks: see the README (one run per output prefix)
        yield
        return
    from attnseg.atomic import output_lock

    out = dest.local_path  # resolved: a symlink or ../ spelling of the folder takes the same lock
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create output folder {out.parent}: {exc.strerror}.") from None
    with output_lock(out):
        yield


def _segment(model_path: Path, plan: InputPlan, dest: Location, options: ClusterOptions) -> ClusterSummary:
    out_options = options.outputs
    if plan.is_video and (out_options.overlays or out_options.attention):
        log.info("video on the cluster: writing masks and JSON, not overlay videos (see attnseg.cluster)")
        out_options = replace(out_options, overlays=False, attention=False)
    store = Store(dest)
    _prepare_output(store, options.force, out_options, plan)
    rt = options.runtime
    sig = signature(asdict(out_options), rt.resize_policy, rt.inference_precision, rt.device, rt.tta.value)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    t0 = time.perf_counter()
    with _ray_session(options) as ray:
        workers = _pool_size(ray, options)
        tracker = ray.remote(AttemptTracker).options(num_cpus=0).remote()
        index_ref, meta_ref = tracker.build_index.options(num_returns=2).remote(dest.uri, sig)
        _check_same_model(ray.get(meta_ref)["models"], model_path, dest)
        kwargs = {**worker_kwargs(str(model_path), replace(options, outputs=out_options), WORKER_HINT),
                  "output_uri": dest.uri, "signature": sig, "run_id": run_id, "index": [index_ref],
                  "tracker": [tracker], "max_attempts": MAX_ATTEMPTS, "content": plan.identity}
        total = plan.total
        order = ray.put([u.key for u in plan.units] if plan.is_video else [key_of(p) for p in plan.paths])
        counts = _run(ray, plan, workers, kwargs, options, total)  # drops the driver's copy of the listing
        seconds = time.perf_counter() - t0
        stop = counts["failed"] and not options.skip_errors
        report = ray.get(tracker.finalize.remote(dest.uri, [order], str(model_path), plan.description,
                                                 counts["segmented"], seconds, not stop, WORKER_HINT))
    failed = counts["failures"]
    if stop:
        key, error = failed[0]
        raise ImagesFailedError(
            f"{key} failed: {error} (recorded in {dest.uri_of(MANIFEST_NAME)}; fix or remove it and re-run to "
            "resume, or pass --skip-errors to go past failures)."
        )
    if report["ok"] == 0:
        raise InputFileError(f"No image of {plan.description} could be segmented (see "
                             f"{dest.uri_of(MANIFEST_NAME)}).")
    return ClusterSummary(output=Path(dest.path) if not dest.remote else dest.uri,  # type: ignore[arg-type]
                          manifest=dest.uri_of(MANIFEST_NAME) if dest.remote else Path(dest.path) / MANIFEST_NAME,
                          total=total, segmented=counts["segmented"], resumed=counts["resumed"],
                          failed=failed, failed_count=counts["failed"], workers=workers, seconds=seconds,
                          address=options.address, driver_result_bytes=counts["bytes"])


# ---------------------------------------------------------------------- before the run
def _check_model(model: str | Path, options: ClusterOptions) -> Path:
    """Fail on the driver, in one line, for what would otherwise kill every worker."""
    from attnseg.runtime.adapter import OpenVINOAdapter
    from attnseg.runtime.segmenter import ATTENTION_PREFIX

    source = OpenVINOAdapter(model, compile=False)  # read on the driver; workers pick the device
    path, ir, meta = source.path, source.model, source.metadata
    if options.outputs.attention:
        names = [n for port in ir.outputs for n in port.get_names() if n.startswith(ATTENTION_PREFIX)]
        if not (meta.attention_outputs or names):
            raise InputFileError(
                f"{path.name} has no attention outputs; re-export it with attention maps "
                "(seg-export --attention-maps) or drop --attention-maps."
            )
    return path.resolve()


def _prepare_output(store: Store, force: bool, out_options: outputs.OutputOptions, plan: InputPlan) -> None:
    """Start afresh (``force``), or resume a folder an earlier run marked as its own."""
    loc = store.location
    if force and store.exists():
        store.clear()
    elif store.exists() and _has_entries(store) and not _is_ours(store):
        raise OutputExistsError(
            f"{loc.uri} exists and holds no {MANIFEST_NAME} of an earlier --ray run; pass --force to replace it."
        )
    folders = out_options.folders(plan.is_video)
    store.make_folders([SHARDS, *folders])
    store.write(RUN_MARKER, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                        "started": time.time()}).encode())
    if not loc.remote:
        from attnseg.atomic import sweep_stale

        for name in ("", SHARDS, *folders):
            sweep_stale(loc.join(name) if name else loc.path)  # a killed run's unrenamed temporaries


def _has_entries(store: Store) -> bool:
    if not store.location.remote:
        return any(os.scandir(store.location.path))
    import pyarrow.fs as pafs

    infos = store.fs.get_file_info(pafs.FileSelector(store.location.path, recursive=False, allow_not_found=True))
    return bool(infos)


def _is_ours(store: Store) -> bool:
    return store.read(MANIFEST_NAME) is not None or store.read(RUN_MARKER) is not None


def _check_same_model(used: list[str], model_path: Path, dest: Location) -> None:
    if used and set(used) != {str(model_path)}:
        raise OutputExistsError(
            f"{dest.uri} holds results of another model ({', '.join(sorted(used))}); "
            "pass --force to start afresh or choose another output folder."
        )


# ---------------------------------------------------------------------- Ray
@contextmanager
def _ray_session(options: ClusterOptions) -> Iterator[Any]:
    """Ray, started (``local``: loopback only, no dashboard) or joined; shut down only if we started it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ClusterError("--ray needs Ray: pip install 'attnseg[cluster]'.") from None
    started = False
    if not ray.is_initialized():
        quiet = not options.progress
        if options.address == LOCAL:
            start_local_ray(options.num_cpus or os.cpu_count() or 1, quiet=quiet)
        else:
            try:
                ray.init(address=options.address, logging_level=logging.WARNING, log_to_driver=not quiet)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ClusterError(
                    f"Cannot reach the Ray cluster at {options.address!r}: {short_message(exc)}") from None
        started = True
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows one bar over images instead
    ctx.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING if options.progress else logging.ERROR)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def start_local_ray(num_cpus: int, quiet: bool = False, attempts: int = 2) -> None:
    """A private Ray instance on this machine: loopback only, no dashboard, no usage stats.

    On a busy machine the raylet can miss Ray's fixed 30 s registration window; one more try
    usually succeeds.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray swaps 127.0.0.1 for "a remotely reachable IP" (found by routing towards 8.8.8.8) unless
    # its cluster mode is off; off, every Ray process binds to loopback and nothing looks outward.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    import ray
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False  # the same switch, if ray was imported before
    for attempt in range(attempts):
        try:
            ray.init(address=LOCAL, num_cpus=int(num_cpus), include_dashboard=False, _node_ip_address="127.0.0.1",
                     logging_level=logging.WARNING, log_to_driver=not quiet)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception on a startup timeout
            ray.shutdown()
            if attempt + 1 == attempts:
                raise ClusterError(f"Could not start a local Ray instance: {short_message(exc)}") from None
            log.warning("local Ray did not start (%s); trying again", short_message(exc))


def _pool_size(ray: Any, options: ClusterOptions) -> int:
    if options.concurrency is not None:
        return int(options.concurrency)
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1, int(cpus // options.cpus_per_worker))


def _dataset(ray: Any, plan: InputPlan, workers: int, options: ClusterOptions) -> tuple[Any, int]:
    """The input as a Ray Data dataset (bytes read on the workers) and the actors' batch size."""
    if plan.is_video:
        rows: list[dict[str, Any]] = []
        for u in plan.units:
            last = rows[-1] if rows else None
            if last and last["stop"] == u.frame and last["stop"] - last["start"] < options.video_chunk:
                last["stop"] += 1
            else:
                rows.append({"key": u.key, "kind": "video", "path": u.path, "start": u.frame, "stop": u.frame + 1})
        return ray.data.from_items(rows, override_num_blocks=len(rows)), 1
    n = len(plan.paths)
    batch = max(1, min(options.batch_size, -(-n // workers)))  # small inputs: every worker gets some
    per_read = max(1, min(MAX_FILES_PER_READ, -(-n // (2 * workers))))
    ds = ray.data.read_binary_files(plan.paths, include_paths=True, filesystem=plan.filesystem(),
                                    num_cpus=READ_CPUS, override_num_blocks=max(1, -(-n // per_read)))
    plan.paths = []  # Ray Data keeps the listing in the object store; the driver needs no copy while it runs
    return ds, batch


def _run(ray: Any, plan: InputPlan, workers: int, kwargs: dict[str, Any], options: ClusterOptions,
         total: int) -> dict[str, Any]:
    """Stream the status rows; stop at a failure unless skipping."""
    ds, batch = _dataset(ray, plan, workers, options)
    ds = ds.map_batches(
        SegmentWorker, batch_format="pyarrow", batch_size=batch, zero_copy_batch=True,
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=options.cpus_per_worker,
        fn_constructor_kwargs=kwargs,
    )
    progress = _progress(total, options.progress)
    counts: dict[str, Any] = {"segmented": 0, "resumed": 0, "failed": 0, "failures": [], "bytes": 0}
    batches = ds.iter_batches(batch_format="pyarrow", batch_size=None)
    try:
        for table in batches:
            counts["bytes"] += table.nbytes
            for key, status, error in zip(*(table.column(c).to_pylist() for c in ("key", "status", "error"))):
                if status == "ok":
                    counts["segmented"] += 1
                elif status == "resumed":
                    counts["resumed"] += 1
                else:
                    counts["failed"] += 1
                    if len(counts["failures"]) < KEEP_FAILURES:
                        counts["failures"].append((key, error))
                    log.warning("%s failed: %s", key, error)
            if progress is not None:
                progress.update(table.num_rows)
            if counts["failed"] and not options.skip_errors:
                break
    except AttnsegError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray's errors carry whole tracebacks; say it in one line
        cause = _attnseg_cause(exc)
        if cause is not None:
            raise ClusterError(f"A worker failed: {cause}") from None
        raise ClusterError(f"The Ray job failed: {short_message(exc)}") from None
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()
        if progress is not None:
            progress.close()
    return counts


# ---------------------------------------------------------------------- after the run (a Ray task)
def finalize(out_uri: str, order: list[Any], model: str, description: str, segmented: int, seconds: float,
             write_summary: bool, hint: str) -> dict[str, int]:
    """Merge the shards into ``manifest.jsonl``; write ``summary.json`` as local seg-infer writes it.

    Runs on the run's helper actor (``AttemptTracker``), next to the data, so the driver never holds every image's record.
    ``seconds`` and ``fps`` are this run's (a resumed run counts only what it segmented).
    """
    import ray

    store = Store(Location.of(out_uri))
    records = merge(store)
    keys = ray.get(order[0]) if order and isinstance(order[0], ray.ObjectRef) else order
    mine = [records[k] for k in keys if k in records]
    ok = [r for r in mine if r.get("status") == "ok"]
    if write_summary and ok:
        images = [_local_entry(r) for r in ok]
        latencies = [r["timings"]["total_ms"] for r in ok]
        skipped = [r["key"] for r in mine if r.get("status") != "ok"]
        summary = outputs.run_summary(images, latencies, seconds, ok[0]["classes"], skipped)
        summary["fps"] = round(segmented / seconds, 3) if seconds > 0 else 0.0
        report = {"model": model, "device": str(ok[0].get("device", "CPU")), "hint": hint,
                  "resize_policy": ok[0].get("resize_policy", "stretch"), "tta": ok[0].get("tta", "none"),
                  "tiling": None,  # never tiled on Ray
                  "inference_precision": ok[0].get("inference_precision"),  # the first worker's (each decides)
                  "precision_choice": ok[0].get("precision_choice"),
                  "input": description, "output": out_uri, "summary": summary, "images": images}
        store.write(outputs.SUMMARY_NAME, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode())
    return {"ok": len(ok), "failed": len(mine) - len(ok)}


def _local_entry(record: dict[str, Any]) -> dict[str, Any]:
    """The per-image entry of local seg-infer's summary.json, from a manifest record."""
    keys = ("source", "height", "width", "foreground_fraction", "class_pixel_counts", "attention_maps")
    entry = {k: record[k] for k in keys}
    entry["timings"] = {k: record["timings"][k] for k in ("preprocess_ms", "infer_ms", "postprocess_ms",
                                                          "total_ms")}
    return entry


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="img", desc="seg-infer --ray", leave=False)


def _attnseg_cause(exc: BaseException) -> AttnsegError | None:
    seen = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, AttnsegError):
            return e
        stack += [getattr(e, "cause", None), e.__cause__, e.__context__]
    return None
