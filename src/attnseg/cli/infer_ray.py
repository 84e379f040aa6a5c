"""``seg-infer --ray``: the flags of seg-infer mapped onto ``attnseg.cluster.segment_dataset``."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from attnseg.cli.common import options_from_args, print_json
from attnseg.errors import InputFileError

#: Local-only flags: a worker runs one image at a time (more workers, not more streams).
_LOCAL_ONLY = {"hint": "--hint", "num_streams": "--num-streams", "max_in_flight": "--max-in-flight",
               "cache_dir": "--cache-dir", "num_requests": "--num-requests", "config_file": "--config-file"}
#: ``-o`` is parsed as a Path, which folds ``s3://b/k`` into ``s3:/b/k``; this finds such URIs again.
_FOLDED_URI = re.compile(r"^(s3|gs|gcs|abfs|abfss|az|hdfs):/+(?=[^/])")


def uri_or_path(value: str | os.PathLike | None) -> str | None:
    """A URI as the user typed it (even after ``Path`` folded its ``//``), else the path as text."""
    if value is None:
        return None
    return _FOLDED_URI.sub(lambda m: f"{m.group(1)}://", str(value), count=1)


def refuse_object_storage(args: argparse.Namespace) -> None:
    """Local seg-infer reads and writes local files: say so for URIs instead of "does not exist"."""
    from attnseg.cluster.storage import is_uri

    for what, value in (("input", args.input), ("-o", uri_or_path(args.output))):
        if value is not None and is_uri(value):
            raise InputFileError(f"{what} {value} is in object storage; local seg-infer reads and writes local "
                                 "files. Add --ray (workers read and write s3://, gs:// and abfs:// directly).")


def run_on_ray(args: argparse.Namespace) -> int:
    from attnseg.cluster import ClusterOptions, check_address, segment_dataset
    from attnseg.runtime.options import RuntimeOptions
    from attnseg.runtime.outputs import OutputOptions

    given = [flag for name, flag in _LOCAL_ONLY.items() if getattr(args, name, None) is not None]
    if given:
        raise InputFileError(f"{', '.join(given)} do(es) not apply with --ray (each worker runs one image at a "
                             "time; use --concurrency for more workers).")
    if args.concurrency is not None and args.concurrency < 1:
        raise InputFileError(f"--concurrency must be >= 1, got {args.concurrency}.")
    check_address(args.ray)
    quiet = args.quiet or args.json
    options = ClusterOptions(
        address=args.ray, runtime=options_from_args(RuntimeOptions, args), concurrency=args.concurrency,
        max_frames=args.max_frames, skip_errors=args.skip_errors, force=args.force, progress=not quiet,
        outputs=OutputOptions(masks=not args.no_masks, overlays=not args.no_overlays,
                              attention=bool(args.attention_maps), alpha=args.alpha),
    )
    out = uri_or_path(args.output) or str(Path.cwd() / f"{_name(args.input)}_seg")
    with _stdout_to_stderr(args.json):  # Ray's own messages must not corrupt the JSON on stdout
        summary = segment_dataset(args.model, args.input, out, options)
    if args.json:
        print_json(summary.as_dict())
    elif not args.quiet:
        print(f"{summary.segmented} images in {summary.seconds:.2f} s: {summary.images_per_second:.2f} images/s "
              f"on {summary.workers} Ray worker(s), {summary.resumed} already done -> {summary.output}")
        if summary.failed_count:
            names = ", ".join(k for k, _ in summary.failed[:5])
            print(f"failed {summary.failed_count} image(s), recorded in {summary.manifest}: {names}"
                  + (" ..." if summary.failed_count > 5 else ""))
    return 0


@contextlib.contextmanager
def _stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """Point file descriptor 1 at stderr for the block (Python, Ray's C++ core and child output alike)."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _name(spec: str) -> str:
    """Default output name: the input's stem, or its folder's name for a glob."""
    path = Path(spec.split("://", 1)[-1])
    while any(c in path.name for c in "*?[") and path.parent != path:
        path = path.parent
    return path.stem or "input"
