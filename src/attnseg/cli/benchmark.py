"""seg-benchmark: benchmark_app-style latency reports, and every backend side by side.

    seg-benchmark model.xml --hint latency -niter 200 -o reports/
    seg-benchmark model.xml --images data/val --vs-benchmark-app
    seg-benchmark compare checkpoint.pt --data kvasir:data/kvasir-seg --input-size 256 256
    seg-benchmark --tune model.xml --hint throughput   # writes model.load_config.json

The runtime flags are every seg-* command's (-d, --hint, --num-streams, --num-requests, --cache-dir,
--inference-precision, --config-file); benchmark_app's spellings of them (-hint, -nstreams, -nireq,
-cdir, -load_config) and its other flags (-m, -api, -t, -niter, -b, -shape, -report_type) also work.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from collections.abc import Sequence

from attnseg.benchmarking.config import Api, BenchmarkConfig, ReportType
from attnseg.cli.common import (
    DATA_HELP,
    add_common_flags,
    add_dataclass_flags,
    add_deprecated_alias,
    add_split_flag,
    image_source,
    options_from_args,
    print_json,
    run_command,
    split_from_args,
)
from attnseg.errors import BenchmarkError
from attnseg.runtime.options import Hint, RuntimeOptions

log = logging.getLogger("attnseg.benchmark")
REPORT_TYPES = tuple(r.value for r in ReportType)
#: benchmark_app's own spellings of the runtime flags, kept for its users (not deprecated).
BENCHMARK_APP_SPELLINGS = {"device": ("--target_device",), "hint": ("-hint", "--perf_hint"),
                           "num_streams": ("-nstreams", "--number_streams"),
                           "num_requests": ("-nireq", "--number_infer_requests"),
                           "cache_dir": ("-cdir", "--cache_dir"), "config_file": ("-load_config",)}


class _Parser(argparse.ArgumentParser):
    """One line for a bad flag (no usage dump): what is wrong and where to look."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} -h)\n")


def _positive_int(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be at least 1, got {value}")
        return value

    return parse


def _positive_float(flag: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes a number of seconds, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{flag} must be positive, got {value:g}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="seg-benchmark", allow_abbrev=False,
        description="Time an OpenVINO model with benchmark_app's flags and report formats; "
                    "'seg-benchmark compare CHECKPOINT' compares PyTorch, ONNX Runtime and OpenVINO.",
        epilog="Subcommand: seg-benchmark compare CHECKPOINT [--data SPEC] [--input-size H W] [--compile] "
               "(see seg-benchmark compare -h).",
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="OpenVINO IR (.xml with its .bin) or .onnx")
    p.add_argument("-m", "--path_to_model", dest="model_flag", metavar="MODEL", help="same as MODEL (benchmark_app)")
    p.add_argument("-api", "--api_type", dest="api", choices=tuple(a.value for a in Api),
                   help="sync or async (default: sync for -hint latency, else async)")
    p.add_argument("-t", "--time", dest="time", type=_positive_float("-t"), help="seconds to run")
    p.add_argument("-niter", "--niter", "--number_iterations", dest="niter", type=_positive_int("-niter"),
                   help="iterations to run (neither -t nor -niter: 60 s on CPU, like benchmark_app)")
    p.add_argument("-b", "--batch", "--batch_size", dest="batch", type=_positive_int("-b"), help="batch size (reshapes)")
    p.add_argument("-shape", dest="shape", help="input shape, e.g. [1,3,256,256] or image[1,3,256,256]")
    p.add_argument("-o", "--output", dest="output", metavar="DIR",
                   help="report folder: benchmark_report.csv, benchmark_report.json (-json_stats layout) and "
                        "attnseg_benchmark.json (with --tune: tune_report.json)")
    for old in ("--report-folder", "-report_folder", "--report_folder"):
        add_deprecated_alias(p, old, "-o/--output", dest="output")
    p.add_argument("-report_type", "--report_type", dest="report_type", choices=REPORT_TYPES, default="no_counters",
                   help="add per-layer counters (average_counters, detailed_counters) as benchmark_app")
    p.add_argument("-json_stats", "--json_stats", dest="json_stats", action="store_true",
                   help="accepted for benchmark_app compatibility; the JSON report is always written")
    p.add_argument("--images", metavar="KIND:PATH|DIR",
                   help="also time decode / preprocess / infer / postprocess on these images (a folder, or a data "
                        "set KIND:PATH)")
    p.add_argument("--vs-benchmark-app", dest="vs_benchmark_app", action="store_true",
                   help="also run benchmark_app with the same flags and compare medians")
    p.add_argument("--tune", action="store_true",
                   help="search precision x hint x streams x requests for the fastest configuration (for -hint "
                        "latency, the default, or throughput) and write it beside the IR as MODEL.load_config.json "
                        "(benchmark_app -load_config format), which Segmenter and seg-infer then use; "
                        "-infer_precision, -nstreams and -nireq (throughput) pin what is searched, -niter sets "
                        "the inferences per candidate and round; other timing flags are refused")
    p.add_argument("--tolerance", type=float, default=0.10,
                   help="allowed relative difference for --vs-benchmark-app (default 0.10)")
    add_dataclass_flags(p, RuntimeOptions, "runtime (as every seg-* command; benchmark_app's spellings also work; "
                                           "--hint default: latency with -api sync, else throughput; "
                                           "--inference-precision auto / default: the device's own choice, as "
                                           "benchmark_app (--tune measures); --resize-policy and --tta: --images)",
                        compat=BENCHMARK_APP_SPELLINGS)
    add_common_flags(p)
    return p


def runtime_config(args: argparse.Namespace, model: str) -> BenchmarkConfig:
    """The benchmark_app-shaped config of the parsed flags (runtime ones through ``RuntimeOptions``)."""
    from attnseg.benchmarking import BenchmarkConfig

    rt = options_from_args(RuntimeOptions, args)
    return BenchmarkConfig(
        model_path=model, device=rt.device, hint=rt.hint, api=args.api, duration_s=args.time, niter=args.niter,
        nstreams=rt.num_streams, nireq=rt.num_requests, batch=args.batch, shape=args.shape,
        infer_precision=_explicit_precision(rt), cache_dir=rt.cache_dir, report_type=args.report_type,
        config_file=rt.config_file, resize_policy=rt.resize_policy, tta=rt.tta,
    )


def _explicit_precision(rt: RuntimeOptions) -> str | None:
    return None if rt.inference_precision in ("auto", "default") else rt.inference_precision


def build_compare_parser() -> argparse.ArgumentParser:
    from attnseg.benchmarking.compare.backends import BackendName

    p = _Parser(
        prog="seg-benchmark compare", allow_abbrev=False,
        description="Time one checkpoint on PyTorch eager fp32, PyTorch bf16 + channels_last, ONNX Runtime "
                    "and OpenVINO FP32 / FP16 / INT8 in alternating rounds; with --data, Dice or mIoU too.",
    )
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="attnseg checkpoint (.pt) or reference state_dict")
    p.add_argument("--data", metavar="KIND:PATH|DIR", help="score every backend on this " + DATA_HELP)
    p.add_argument("--input-size", nargs=2, type=_positive_int("--input-size"), metavar=("H", "W"),
                   help="model input size (default: the checkpoint's, else 256 256)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (slow to build)")
    p.add_argument("--backends", help="comma-separated subset or 'all': " + ", ".join(b.value for b in BackendName))
    p.add_argument("--rounds", type=_positive_int("--rounds"), default=5, help="alternating rounds (default 5)")
    p.add_argument("--iters", type=_positive_int("--iters"), default=5,
                   help="timed inferences per backend per round (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per backend before timing (default 2)")
    p.add_argument("--max-images", type=_positive_int("--max-images"), default=50,
                   help="images scored with --data (default 50)")
    add_split_flag(p, "test", "scored with --data")
    p.add_argument("--calibration", metavar="KIND:PATH|DIR",
                   help="INT8 calibration images (default: the split's train images, else the --data images, "
                        "else noise: timing only)")
    p.add_argument("--arch", help="architecture of a bare state_dict checkpoint")
    p.add_argument("-o", "--output", default="benchmark-compare",
                   help="report folder: compare.md/.csv/.json/.html and the exported models (default ./benchmark-compare)")
    p.add_argument("--force", action="store_true", help="replace the report folder if it exists")
    add_common_flags(p)
    return p


def _run(args: argparse.Namespace) -> int:
    from attnseg.benchmarking import (
        benchmark_end_to_end,
        compare_with_benchmark_app,
        format_console,
        run_benchmark,
        write_reports,
    )

    if args.model and args.model_flag and args.model != args.model_flag:
        raise BenchmarkError(f"Two models given ({args.model} and -m {args.model_flag}); give one.")
    model = args.model or args.model_flag
    if not model:
        raise BenchmarkError("No model given: seg-benchmark MODEL.xml [flags] (or seg-benchmark compare CHECKPOINT).")
    if not 0 < args.tolerance < 1:
        raise BenchmarkError(f"--tolerance must be between 0 and 1, got {args.tolerance}.")
    if args.tune:
        return _run_tune(args, model)
    if (args.resize_policy is not None or args.tta != "none") and not args.images:
        raise BenchmarkError("--resize-policy and --tta apply to the end-to-end timing: add --images DIR.")
    cfg = runtime_config(args, model).resolved()
    log.info("Benchmarking %s on %s (hint %s, api %s, %s)", cfg.model_path, cfg.device, cfg.hint.value,
             cfg.api.value, cfg.limit_description)
    result = run_benchmark(cfg)
    if args.images:
        log.info("Timing end to end on %s ...", args.images)
        result.end_to_end = benchmark_end_to_end(cfg, image_source(args.images), result.latency.median_ms,
                                                 niter=args.niter, duration_s=args.time)
    if args.vs_benchmark_app:
        log.info("Running benchmark_app with the same flags ...")
        result.benchmark_app = compare_with_benchmark_app(
            cfg, result.latency.median_ms, args.tolerance, rerun=lambda: run_benchmark(cfg).latency.median_ms)
        if not result.benchmark_app.agree:
            log.warning("attnseg and benchmark_app medians differ by more than %.0f%% (ratio %.3f, %s); "
                        "load average %s.", 100 * args.tolerance, result.benchmark_app.ratio,
                        result.benchmark_app.verdict, result.load_average_end)
    if args.output:
        paths = write_reports(result, args.output)
        log.info("Reports: %s", ", ".join(str(p) for p in paths.values()))
    if args.json:
        print_json(result.to_dict())
    else:
        print(format_console(result, header=not args.quiet))
    return 0


#: Flags of a plain benchmark that ``--tune`` does not use: refused, never silently ignored.
_NOT_FOR_TUNE = {"api": "-api", "time": "-t", "batch": "-b", "shape": "-shape", "cache_dir": "--cache-dir",
                 "images": "--images", "vs_benchmark_app": "--vs-benchmark-app", "config_file": "--config-file",
                 "resize_policy": "--resize-policy"}


def _run_tune(args: argparse.Namespace, model: str) -> int:
    from attnseg.atomic import check_creatable
    from attnseg.benchmarking.tune import check_tune_options, format_tune, tune, write_tune_report

    ignored = [flag for dest, flag in _NOT_FOR_TUNE.items() if getattr(args, dest)]
    ignored += ["-report_type"] if args.report_type != ReportType.NO_COUNTERS.value else []
    ignored += ["--tta"] if args.tta != "none" else []
    ignored += ["--tolerance"] if args.tolerance != 0.10 else []
    if ignored:
        raise BenchmarkError(f"--tune does not use {', '.join(ignored)}: it searches precision, streams and requests "
                             "under --hint (honouring --inference-precision, --num-streams, --num-requests, "
                             "-niter and -o). Drop them, or run without --tune.")
    rt = options_from_args(RuntimeOptions, args)
    hint = (rt.hint or Hint.LATENCY).value
    check_tune_options(hint, rt.num_streams, rt.num_requests, args.niter)
    if args.output:
        check_creatable(args.output, "the report folder ", inside=True)
    result = tune(model, device=rt.device, objective=hint, precision=_explicit_precision(rt),
                  nstreams=rt.num_streams, nireq=rt.num_requests, niter=args.niter)
    if args.output:
        log.info("Report: %s", write_tune_report(result, args.output))
    if args.json:
        print_json(result.to_dict())
    else:
        print(format_tune(result))
    return 0


def _run_compare(args: argparse.Namespace) -> int:
    from attnseg.benchmarking.compare import compare_backends, format_table
    from attnseg.benchmarking.compare.writers import FILES

    if args.warmup < 0:
        raise BenchmarkError("--warmup must be 0 or more.")
    command = "seg-benchmark compare " + " ".join(shlex.quote(a) for a in args.argv)
    split, split_name = split_from_args(args, "test", file_required=True)
    result = compare_backends(
        args.checkpoint, args.output, data=args.data, input_size=args.input_size, compile=args.compile,
        backends=args.backends, rounds=args.rounds, iters=args.iters, warmup=args.warmup,
        max_images=args.max_images, arch=args.arch, split=split, split_name=split_name,
        calibration=args.calibration, force=args.force,
        command=command,
    )
    if args.json:
        print_json(result.to_dict(include_samples=False))
    else:
        print(format_table(result))
        if not args.quiet:
            print("\nReports: " + ", ".join(f"{args.output}/{name}" for name in FILES.values()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "compare":
            parser = build_compare_parser()

            def body(args: argparse.Namespace) -> int:
                args.argv = argv[1:]
                return _run_compare(args)

            return run_command(body, parser, argv[1:])
        return run_command(_run, build_parser(), argv)
    except SystemExit as exc:  # argparse: -h (0) or a bad flag (2, message already printed)
        return exc.code if isinstance(exc.code, int) else 2

if __name__ == "__main__":
    sys.exit(main())
