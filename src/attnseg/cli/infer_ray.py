"""``seg-infer --ray``: the flags of seg-infer mapped onto ``attnseg.cluster.segment_dataset``."""

from __future__ import annotations

import argparse
from pathlib import Path

from attnseg.cli.common import print_json
from attnseg.errors import InputFileError

#: Local-only flags: a worker runs one image at a time (more workers, not more streams).
_LOCAL_ONLY = {"hint": "--hint", "num_streams": "--num-streams", "max_in_flight": "--max-in-flight",
               "cache_dir": "--cache-dir"}


def run_on_ray(args: argparse.Namespace) -> int:
    from attnseg.cluster import ClusterOptions, segment_dataset
    from attnseg.runtime.outputs import OutputOptions

    given = [flag for name, flag in _LOCAL_ONLY.items() if getattr(args, name) is not None]
    if given:
        raise InputFileError(f"{', '.join(given)} do(es) not apply with --ray (each worker runs one image at a "
                             "time; use --concurrency for more workers).")
    if args.concurrency is not None and args.concurrency < 1:
        raise InputFileError(f"--concurrency must be >= 1, got {args.concurrency}.")
    quiet = args.quiet or args.json
    options = ClusterOptions(
        address=args.ray, device=args.device, concurrency=args.concurrency, max_frames=args.max_frames,
        inference_precision=args.infer_precision, resize_policy=args.resize_policy, skip_errors=args.skip_errors, force=args.force,
        progress=not quiet,
        outputs=OutputOptions(masks=not args.no_masks, overlays=not args.no_overlays,
                              attention=bool(args.attention_maps), alpha=args.alpha),
    )
    out = args.output or Path.cwd() / f"{_name(args.input)}_seg"
    summary = segment_dataset(args.model, args.input, out, options)
    if args.json:
        print_json(summary.as_dict())
    elif not args.quiet:
        print(f"{summary.segmented} images in {summary.seconds:.2f} s: {summary.images_per_second:.2f} images/s "
              f"on {summary.workers} Ray worker(s), {summary.resumed} already done -> {summary.output}")
        if summary.failed:
            names = ", ".join(k for k, _ in summary.failed[:5])
            print(f"failed {len(summary.failed)} image(s), recorded in {summary.manifest}: {names}"
                  + (" ..." if len(summary.failed) > 5 else ""))
    return 0


def _name(spec: str) -> str:
    """Default output name: the input's stem, or its folder's name for a glob."""
    path = Path(spec)
    while any(c in path.name for c in "*?[") and path.parent != path:
        path = path.parent
    return path.stem or "input"
