"""seg-infer: segment an image, a folder, a video file or a camera with an exported IR.

Writes ``OUT/masks/*.png`` (binary: 0/255, multiclass: class ids), ``OUT/overlays/*.jpg``
(image inputs) or ``OUT/overlay.mp4`` (video and camera), optional attention heatmaps, and
``OUT/summary.json``; prints a closing summary (frames, FPS, latency median / p90).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.cli.common import (
    add_common_flags,
    add_dataclass_flags,
    options_from_args,
    print_json,
    run_command,
)
from attnseg.errors import InputFileError
from attnseg.runtime.options import RuntimeOptions
from attnseg.runtime.tiler import MAX_OVERLAP, Blend, TileOptions

log = logging.getLogger("seg-infer")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seg-infer",
        description="Segment an image, a folder of images, a video file or a camera with an exported "
                    "attnseg model (OpenVINO IR .xml).",
    )
    p.add_argument("model", help="exported model: model.xml (with .bin beside it) or its folder")
    p.add_argument("input", help="an image, a folder of images, a video file, or a camera index (0, 1, ...)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="output folder (default: ./<input name>_seg)")
    p.add_argument("--force", action="store_true", help="replace the output folder if it exists")
    p.add_argument("--max-in-flight", type=int, default=None,
                   help="requests in flight at once (default: twice the device's optimal number of requests)")
    p.add_argument("--tile", action="store_true",
                   help="sliding-window inference: cut images into overlapping tiles of the model's input size "
                        "and blend them (for images much larger than the model input; keeps small lesions)")
    p.add_argument("--tile-overlap", type=float, default=TileOptions.overlap,
                   help=f"share of a tile its neighbour also covers, in [0, {MAX_OVERLAP}] (default {TileOptions.overlap})")
    p.add_argument("--tile-blend", choices=[b.value for b in Blend], default=Blend.GAUSSIAN.value,
                   help="how overlapping tiles are weighted (default gaussian)")
    p.add_argument("--tile-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="tile size (default: the model's input size; required for dynamic-size models)")
    p.add_argument("--attention-maps", action="store_true",
                   help="also write attention-gate heatmaps (models exported with attention outputs)")
    p.add_argument("--alpha", type=float, default=0.45, help="overlay opacity, 0..1 (default 0.45)")
    p.add_argument("--no-overlays", action="store_true", help="write masks only")
    p.add_argument("--no-masks", action="store_true", help="do not write mask PNGs")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many images/frames")
    p.add_argument("--skip-errors", action="store_true",
                   help="skip unreadable images in a folder (listed in the summary) instead of stopping")
    p.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="segment on a Ray cluster (attnseg.cluster): no ADDRESS starts a local Ray instance, "
                        "'auto' or host:port joins one (for ray://, submit a Ray Job: see the README); INPUT and -o "
                        "may be s3://, gs:// or abfs:// URIs, INPUT also a glob or a text file of "
                        "paths; writes manifest.jsonl and resumes a killed run")
    p.add_argument("--concurrency", type=int, default=None,
                   help="with --ray: workers, one Segmenter each (default: the cluster's CPUs)")
    live = p.add_argument_group("live mode (attnseg.runtime.live: the newest frame wins, latency stays bounded)")
    live.add_argument("--live", action="store_true",
                      help="INPUT is a live feed: a camera index, a video file played at its own frame rate, or an "
                           "rtsp:// / http(s):// URL; frames the model cannot keep up with are dropped and counted, "
                           "never queued; shows a window with the overlay and a performance panel")
    live.add_argument("--no-show", action="store_true",
                      help="with --live: no window; write OUT/overlay.mp4, masks, frames.csv/frames.json (per-frame "
                           "latencies) and summary.json")
    live.add_argument("--max-age-ms", type=float, default=None,
                      help="with --live: also drop a frame that waited longer than this for a request")
    live.add_argument("--loop", action="store_true", help="with --live: restart a video file at its end")
    add_dataclass_flags(p, RuntimeOptions, "runtime (OpenVINO; --hint default: latency for one image or a camera, "
                                           "throughput for folders and videos)")
    add_common_flags(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_run, build_parser(), argv)


def _run(args: argparse.Namespace) -> int:
    if args.ray is not None and (args.tile or args.tile_size is not None):
        raise InputFileError("--tile runs on one machine; drop --tile or --ray.")
    if args.live:
        return _run_live(args)
    if args.no_show or args.loop or args.max_age_ms is not None:
        raise InputFileError("--no-show, --loop and --max-age-ms belong to --live.")
    if args.ray is not None:
        from attnseg.cli.infer_ray import run_on_ray

        return run_on_ray(args)
    from attnseg.cli.infer_ray import refuse_object_storage

    refuse_object_storage(args)  # s3:// and friends: --ray only
    from attnseg.atomic import atomic_dir
    from attnseg.runtime import Segmenter, TiledSegmenter, open_source
    from attnseg.runtime.outputs import OutputOptions, run_summary, write_report
    from attnseg.runtime.writer import OutputWriter

    if not 0.0 <= args.alpha <= 1.0:
        raise InputFileError(f"--alpha must be between 0 and 1, got {args.alpha}.")
    source = open_source(args.input, args.max_frames)
    if source.kind == "folder":  # x.jpg and x.png would write one masks/x.png: refused, as on --ray
        from attnseg.runtime.output_names import check_output_names

        check_output_names((name, str(path)) for name, path in source)
    tiled = args.tile or args.tile_size is not None
    tiling = TileOptions(tile_size=args.tile_size, overlap=args.tile_overlap, blend=args.tile_blend,
                         max_in_flight=args.max_in_flight) if tiled else None  # refused before compiling
    hint = args.hint or ("throughput" if source.kind in ("folder", "video") or tiled else "latency")
    seg = Segmenter(args.model, options=options_from_args(RuntimeOptions, args, hint=hint))
    if args.attention_maps and not seg.attention_names:
        raise InputFileError(
            f"{seg.model_path.name} has no attention outputs; re-export it with attention maps "
            "(seg-export --attention-maps) or drop --attention-maps."
        )
    runner = seg
    if tiled:
        runner = TiledSegmenter(seg, tiling)
    out = args.output or Path.cwd() / f"{_stem(source.description)}_seg"
    quiet = args.quiet or args.json
    if not quiet:
        log.info("%s on %s (%s, %s from %s), input %s: %s", seg.model_path.name, seg.device, seg.hint.value,
                 seg.inference_precision, seg.precision_choice.source, source.kind, source.description)

    with atomic_dir(out, force=args.force) as tmp:
        writer = OutputWriter(tmp, seg.codec, OutputOptions(masks=not args.no_masks, overlays=not args.no_overlays,
                              attention=bool(args.attention_maps), alpha=args.alpha), source.is_video, source.fps)
        skipped: list[str] = []
        images: dict[str, np.ndarray] = {}
        summaries: list[dict[str, Any]] = []
        latencies: list[float] = []
        progress = _progress(source.length, quiet)
        t0 = time.perf_counter()
        try:
            decoded = _decode(source, images, skipped, args.skip_errors)
            results = (runner.stream(decoded) if tiled else seg.stream(decoded, max_in_flight=args.max_in_flight))
            for result in results:
                image = images.pop(result.source)
                writer.write(result, image)
                summaries.append(result.summary())
                latencies.append(result.timings.total)
                if progress is not None:
                    progress.update(1)
        except KeyboardInterrupt:
            if source.kind != "camera":
                raise
        finally:
            if progress is not None:
                progress.close()
            writer.close()
        wall = time.perf_counter() - t0
        if not summaries:
            raise InputFileError(f"No image of {source.description} could be segmented.")
        summary = run_summary(summaries, latencies, wall, seg.classes, skipped)
        report = {"model": str(seg.model_path), "device": seg.device, "hint": seg.hint.value,
                  "resize_policy": seg.resize_policy.value, "tta": seg.tta.value,
                  "tiling": _tiling(runner) if tiled else None,
                  "inference_precision": seg.inference_precision,
                  "precision_choice": seg.precision_choice.to_dict(),
                  "input": source.description, "output": str(out), "summary": summary,
                  "images": summaries}
        write_report(tmp, report)

    if args.json:
        print_json(report)
    elif not args.quiet:
        print(f"{summary['frames']} frames in {summary['seconds']:.2f} s: {summary['fps']:.2f} FPS, "
              f"latency median {summary['latency_ms_median']:.1f} ms, p90 {summary['latency_ms_p90']:.1f} ms"
              f" -> {out}")
        if skipped:
            print(f"skipped {len(skipped)} unreadable image(s): {', '.join(skipped[:5])}"
                  + (" ..." if len(skipped) > 5 else ""))
    return 0


def _run_live(args: argparse.Namespace) -> int:
    """``--live``: ``attnseg.runtime.live.run_live`` on a latency-hinted Segmenter."""
    if args.ray is not None or args.tile or args.tile_size is not None:
        raise InputFileError("--live runs one Segmenter on this machine; drop --ray / --tile.")
    from attnseg.atomic import atomic_dir
    from attnseg.runtime import Segmenter
    from attnseg.runtime.live import LiveSource, run_live
    from attnseg.runtime.outputs import OutputOptions

    if not 0.0 <= args.alpha <= 1.0:
        raise InputFileError(f"--alpha must be between 0 and 1, got {args.alpha}.")
    source = LiveSource.open(args.input, loop=args.loop)
    seg = Segmenter(args.model, options=options_from_args(RuntimeOptions, args, hint=args.hint or "latency"))
    if not (args.quiet or args.json):
        log.info("%s on %s (%s, %s), live input %s (%s, %s FPS)", seg.model_path.name, seg.device, seg.hint.value,
                 seg.inference_precision, source.description, source.kind, source.fps or "?")
    options = OutputOptions(masks=not args.no_masks, overlays=not args.no_overlays, alpha=args.alpha)
    kwargs = {"show": not args.no_show, "max_in_flight": args.max_in_flight, "max_age_ms": args.max_age_ms,
              "max_frames": args.max_frames, "output_options": options}
    if args.no_show or args.output is not None:
        out = args.output or Path.cwd() / f"{_stem(source.description)}_live"
        with atomic_dir(out, force=args.force) as tmp:
            summary = run_live(seg, source, output=tmp, **kwargs)
        summary["output"] = str(out)
    else:
        summary = run_live(seg, source, **kwargs)
    if args.json:
        print_json(summary)
    elif not args.quiet:
        e2e = summary["latency_ms"]["end_to_end"]
        print(f"{summary['frames_read']} frames read, {summary['frames_segmented']} segmented, "
              f"{summary['frames_dropped']} dropped in {summary['seconds']:.2f} s; end-to-end latency "
              f"p50 {e2e['p50']:.1f} ms, p95 {e2e['p95']:.1f} ms, max {e2e['max']:.1f} ms"
              + (f" -> {summary['output']}" if "output" in summary else ""))
    return 0


def _decode(source: Any, images: dict[str, np.ndarray], skipped: list[str],
            skip_errors: bool) -> Iterator[tuple[str, np.ndarray]]:
    """Decode here (not in the runtime) so the writer has each original image for overlays.

    Files are read and decoded on a few threads ahead of inference (``attnseg.runtime.prefetch``);
    the order of the source is kept."""
    from attnseg.imaging import read_image
    from attnseg.runtime.prefetch import prefetch

    def load(entry: tuple[str, Any]) -> tuple[str, np.ndarray | None, str | None]:
        name, item = entry
        if not isinstance(item, Path):
            return name, item, None
        try:
            return name, read_image(item), None
        except InputFileError as exc:
            if not skip_errors:
                raise
            log.warning("skipping %s", exc)
            return name, None, item.name

    for future in prefetch(source, load, depth=4):
        name, img, skip = future.result()
        if skip is not None:
            skipped.append(skip)
            continue
        images[name] = img
        yield name, img


def _tiling(runner: Any) -> dict[str, Any]:
    opts = runner.options
    return {"tile_size": list(runner.tile_size), "overlap": opts.overlap, "blend": opts.blend.value}


def _progress(total: int | None, quiet: bool) -> Any:
    if quiet:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="img", desc="seg-infer", leave=False)


def _stem(description: str) -> str:
    name = Path(description).stem if not description.startswith("camera ") else description.replace(" ", "")
    return name or "input"


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
