"""``seg-serve``: serve exported models over KServe v2 (REST + gRPC). Parsing only; see attnseg.serve."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from attnseg.errors import AttnsegError
from attnseg.runtime.options import INFERENCE_PRECISIONS, Hint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seg-serve",
        description="Serve exported attnseg models over the Open Inference Protocol (KServe v2): "
                    "POST /v2/models/NAME/infer with UINT8 [N,H,W,3] BGR pixels or BYTES [N] JPEG/PNG files.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="an IR .xml, a folder holding one (or model.xml), or an OVMS repository "
                        "written by seg-export --ovms-repo (every model in its config.json)")
    p.add_argument("--name", help="the name to serve a single model under (default: the OVMS config name, "
                                  "else the file or folder name)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--http-port", type=int, default=8080, help="REST port (default 8080)")
    p.add_argument("--grpc-port", type=int, default=8081, help="gRPC port (default 8081)")
    p.add_argument("--no-grpc", action="store_true", help="serve REST only")
    p.add_argument("--device", default="CPU", help="OpenVINO device (default CPU)")
    p.add_argument("--hint", default=Hint.THROUGHPUT.value, choices=[h.value for h in Hint],
                   help="OpenVINO performance hint (default throughput: several requests in parallel)")
    p.add_argument("--num-streams", type=int, help="OpenVINO streams (default: the hint decides)")
    p.add_argument("--cache-dir", help="OpenVINO model cache folder (faster restarts)")
    p.add_argument("--inference-precision", default="auto", choices=INFERENCE_PRECISIONS,
                   help="as Segmenter's inference_precision (default auto)")
    p.add_argument("--threads", type=int, help="worker threads per model for decoding, pre/post-processing "
                                                "and waiting on the device (default 2 x infer requests + 2)")
    p.add_argument("--max-request-mb", type=float, default=64.0,
                   help="largest request body accepted, MiB (default 64; larger gets HTTP 413 / gRPC "
                        "RESOURCE_EXHAUSTED)")
    p.add_argument("--grace-period", type=int, default=30,
                   help="seconds requests in flight get to finish after SIGTERM (default 30)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--text-logs", action="store_true", help="plain text logs instead of JSON lines")
    return p


def options_from_args(args: argparse.Namespace):
    from attnseg.serve.server import ServeOptions

    for flag, value in (("--http-port", args.http_port), ("--grpc-port", args.grpc_port)):
        if not 0 < value < 65536:
            raise AttnsegError(f"{flag} must be a port number 1-65535, got {value}.")
    if args.max_request_mb <= 0:
        raise AttnsegError(f"--max-request-mb must be > 0, got {args.max_request_mb}.")
    if args.threads is not None and args.threads < 1:
        raise AttnsegError(f"--threads must be >= 1, got {args.threads}.")
    return ServeOptions(
        models=list(args.models), name=args.name, host=args.host, http_port=args.http_port,
        grpc_port=args.grpc_port, enable_grpc=not args.no_grpc, device=args.device, hint=args.hint,
        num_streams=args.num_streams, cache_dir=args.cache_dir, inference_precision=args.inference_precision,
        threads=args.threads, max_request_mb=args.max_request_mb, grace_period_s=args.grace_period,
        log_level=args.log_level, json_logs=not args.text_logs,
    )


def _run(args: argparse.Namespace) -> int:
    try:
        from attnseg.serve import serve
    except ImportError as exc:
        raise AttnsegError(f"seg-serve needs the serve extra ({exc.name} is missing): "
                           "pip install -c constraints.txt 'attnseg[serve]'") from None
    serve(options_from_args(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from attnseg.cli.common import run_command

    return run_command(_run, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
