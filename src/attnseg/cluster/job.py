"""``segment_dataset``: the driver of a cluster run.

The driver lists the input (names and paths only), drops what an earlier run finished, and
hands the rest to Ray Data: ``from_items`` rows -> ``map_batches`` over a pool of
``SegmentWorker`` actors (one ``Segmenter`` each) -> encoded files back to the driver, which
writes each file atomically into OUT and then appends the image's manifest line. OUT thus
needs to exist only where the driver runs; the model and the inputs must be readable at the
same paths on every node (a shared filesystem).

Video inputs: frames are segmented in ranges on the workers and their masks and JSON are
written as local ``seg-infer`` writes them; the overlay video is not (frames finish out of
order on many machines, and a resumable job cannot append to an mp4; run local ``seg-infer``
for it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from attnseg.atomic import output_lock, sweep_stale
from attnseg.cluster.inputs import InputPlan, Unit, plan_inputs
from attnseg.cluster.manifest import MANIFEST_NAME, Manifest
from attnseg.cluster.options import LOCAL, ClusterError, ClusterOptions, ClusterSummary, ImagesFailedError
from attnseg.cluster.worker import SegmentWorker, worker_kwargs
from attnseg.errors import AttnsegError, InputFileError, OutputExistsError, short_message
from attnseg.runtime import outputs

log = logging.getLogger(__name__)

WORKER_HINT = "latency"  # one image at a time per worker; more workers, not more streams


def segment_dataset(model: str | Path, inputs: str | Path, output: str | Path,
                    options: ClusterOptions | None = None) -> ClusterSummary:
    """Segment every image of ``inputs`` on a Ray cluster into ``output``, resuming a killed run.

    ``output`` gets exactly what local ``seg-infer`` writes (``masks/``, ``overlays/``,
    ``attention/``, ``summary.json``) plus ``manifest.jsonl``. Raises ``ImagesFailedError``
    after recording the first failed image unless ``options.skip_errors``.
    """
    options = options or ClusterOptions()
    model_path = _check_model(model, options)
    plan = plan_inputs(inputs, options.max_frames)
    out = Path(output).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create output folder {out.parent}: {exc.strerror}.") from None
    with output_lock(out):  # one writer per output folder: a second run fails at once
        return _segment(model_path, plan, out, options)


def _segment(model_path: Path, plan: InputPlan, out: Path, options: ClusterOptions) -> ClusterSummary:
    out_options = options.outputs
    if plan.is_video and (out_options.overlays or out_options.attention):
        log.info("video on the cluster: writing masks and JSON, not overlay videos (see attnseg.cluster)")
        out_options = replace(out_options, overlays=False, attention=False)
    out = _prepare_output(out, options.force, out_options, plan)
    manifest = Manifest(out)
    _check_same_model(manifest, model_path)
    todo = [u for u in plan.units if not manifest.done(u.key, _expected(u, manifest, out_options, plan))]
    resumed = len(plan.units) - len(todo)
    failed: list[tuple[str, str]] = []
    workers = segmented = 0
    t0 = time.perf_counter()
    try:
        if todo:
            with _ray_session(options) as ray:
                workers = _pool_size(ray, options)
                kwargs = worker_kwargs(str(model_path), replace(options, outputs=out_options), WORKER_HINT)
                segmented, failed = _run(ray, _rows(todo, plan, options), len(todo), workers, kwargs, out, manifest,
                              options)
        seconds = time.perf_counter() - t0
    finally:
        manifest.close()
    if not options.skip_errors and failed:
        key, error = failed[0]
        raise ImagesFailedError(
            f"{key} failed: {error} (recorded in {manifest.path}; fix or remove it and re-run to resume, "
            "or pass --skip-errors to go past failures)."
        )
    _write_summary(out, model_path, plan, manifest, segmented, seconds)
    return ClusterSummary(output=out, manifest=manifest.path, total=len(plan.units), segmented=segmented,
                          resumed=resumed, failed=failed, workers=workers, seconds=seconds,
                          address=options.address)


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


def _prepare_output(out: Path, force: bool, out_options: outputs.OutputOptions, plan: InputPlan) -> Path:
    if out.exists() and force:
        shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise OutputExistsError(
            f"{out} exists and holds no {MANIFEST_NAME} of an earlier --ray run; pass --force to replace it."
        )
    try:
        for name in out_options.folders(plan.is_video):
            (out / name).mkdir(parents=True, exist_ok=True)
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputFileError(f"Cannot create output folder {out}: {exc.strerror}.") from None
    for folder in (out, *(out / n for n in out_options.folders(plan.is_video))):
        sweep_stale(folder)  # a killed run's unfinished files, never renamed into place
    return out


def _check_same_model(manifest: Manifest, model_path: Path) -> None:
    used = {r.get("model") for r in manifest.records.values()} - {None}
    if used and used != {str(model_path)}:
        raise OutputExistsError(
            f"{manifest.path.parent} holds results of another model ({', '.join(sorted(used))}); "
            "pass --force to start afresh or choose another output folder."
        )


def _expected(unit: Unit, manifest: Manifest, out_options: outputs.OutputOptions, plan: InputPlan) -> list[str]:
    """Files a finished unit must have for these options (attention gates as recorded)."""
    stem = outputs.output_stem(unit.key, plan.is_video)
    kinds = (["mask"] if out_options.masks else []) + (["overlay"] if out_options.overlays else [])
    if out_options.attention:
        record = manifest.records.get(unit.key) or {}
        kinds += [f"attention_{g}" for g in record.get("attention_maps", [])]
    return [outputs.relative_path(k, stem) for k in kinds]


def _rows(todo: list[Unit], plan: InputPlan, options: ClusterOptions) -> list[dict[str, Any]]:
    """One row per image; consecutive video frames grouped into ranges of ``video_chunk``."""
    if not plan.is_video:
        return [{"key": u.key, "kind": "image", "path": u.path, "start": 0, "stop": 0} for u in todo]
    rows: list[dict[str, Any]] = []
    for u in todo:
        last = rows[-1] if rows else None
        if last and last["stop"] == u.frame and last["stop"] - last["start"] < options.video_chunk:
            last["stop"] += 1
        else:
            rows.append({"key": u.key, "kind": "video", "path": u.path, "start": u.frame, "stop": u.frame + 1})
    return rows


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
        kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": not quiet}
        if options.address == LOCAL:
            start_local_ray(options.num_cpus or os.cpu_count() or 1, quiet=quiet)
        else:
            try:
                ray.init(address=options.address, **kwargs)
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


def _run(ray: Any, rows: list[dict[str, Any]], total: int, workers: int, kwargs: dict[str, Any], out: Path,
         manifest: Manifest, options: ClusterOptions) -> tuple[int, list[tuple[str, str]]]:
    """Stream results back, write files then the manifest line; stop at a failure unless skipping."""
    # Small blocks for small inputs so every worker gets some (a video range is one row already).
    per_block = 1 if rows[0]["kind"] == "video" else max(1, min(options.batch_size, -(-len(rows) // workers)))
    ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // per_block)))
    ds = ds.map_batches(
        SegmentWorker, batch_format="pyarrow", batch_size=per_block, zero_copy_batch=True,
        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=options.cpus_per_worker,
        fn_constructor_kwargs=kwargs,
    )
    progress = _progress(total, options.progress)
    failed: list[tuple[str, str]] = []
    done = 0
    model = kwargs["model"]
    batches = ds.iter_batches(batch_format="pyarrow", batch_size=None)
    try:
        for batch in batches:
            for row in batch.to_pylist():
                record = {**json.loads(row["record"]), "model": model, "time": round(time.time(), 3)}
                if row["status"] == "ok":
                    outputs.write_files(out, dict(zip(row["paths"], row["blobs"])))
                    done += 1
                else:
                    failed.append((row["key"], record["error"]))
                    log.warning("%s failed: %s", row["key"], record["error"])
                manifest.append(record)
                if progress is not None:
                    progress.update(1)
            if failed and not options.skip_errors:
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
            close()
        if progress is not None:
            progress.close()
    return done, failed


# ---------------------------------------------------------------------- after the run
def _write_summary(out: Path, model_path: Path, plan: InputPlan, manifest: Manifest, segmented: int,
                   seconds: float) -> None:
    """``summary.json`` as local seg-infer writes it, over every image done by any run.

    ``seconds`` and ``fps`` are this run's (a resumed run counts only what it segmented).
    """
    records = [manifest.records[u.key] for u in plan.units if u.key in manifest.records]
    ok = [r for r in records if r.get("status") == "ok"]
    if not ok:
        raise InputFileError(f"No image of {plan.description} could be segmented (see {manifest.path}).")
    images = [_local_entry(r) for r in ok]
    latencies = [r["timings"]["total_ms"] for r in ok]
    skipped = [r["key"] for r in records if r.get("status") != "ok"]
    summary = outputs.run_summary(images, latencies, seconds, ok[0]["classes"], skipped)
    summary["fps"] = round(segmented / seconds, 3) if seconds > 0 else 0.0
    report = {"model": str(model_path), "device": _device_of(ok), "hint": WORKER_HINT,
              "resize_policy": ok[0].get("resize_policy", "stretch"), "tiling": None,  # never tiled on Ray
              "inference_precision": ok[0].get("inference_precision"),  # the first worker's (each decides)
              "precision_choice": ok[0].get("precision_choice"),
              "input": plan.description, "output": str(out), "summary": summary, "images": images}
    outputs.write_report(out, report)


def _local_entry(record: dict[str, Any]) -> dict[str, Any]:
    """The per-image entry of local seg-infer's summary.json, from a manifest record."""
    keys = ("source", "height", "width", "foreground_fraction", "class_pixel_counts", "attention_maps")
    entry = {k: record[k] for k in keys}
    entry["timings"] = {k: record["timings"][k] for k in ("preprocess_ms", "infer_ms", "postprocess_ms",
                                                          "total_ms")}
    return entry


def _device_of(records: list[dict[str, Any]]) -> str:
    return str(records[0].get("device", "CPU"))


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
