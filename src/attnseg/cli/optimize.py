"""``seg-optimize``: exported IR (or checkpoint) -> INT8 (NNCF) or FP16 IR, with a report of size,
accuracy and latency before/after.

Exit codes: 0 done; 2 bad input (nothing written); 3 a ``--max-drop`` budget could not be met
(the best model found and its report were written; the message says what was reached).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from attnseg.cli.common import (
    DATA_HELP,
    add_common_flags,
    add_split_flag,
    print_json,
    run_command,
    split_from_args,
)

BUDGET_NOT_MET = 3


def build_parser() -> argparse.ArgumentParser:
    from attnseg.optimize.options import (
        DEFAULT_FAST_BIAS_CORRECTION,
        DEFAULT_IGNORE_GATES,
        DEFAULT_LATENCY_RUNS,
        DEFAULT_PRESET,
        DEFAULT_SUBSET_SIZE,
        Metric,
        OptimizePrecision,
        Preset,
    )

    p = argparse.ArgumentParser(
        prog="seg-optimize",
        description="Quantize an exported OpenVINO IR to INT8 with NNCF (optionally under an accuracy budget "
        "measured with the project's Dice / mIoU), or compress its weights to FP16. Writes <name>_int8.xml beside "
        "the IR and a report (size, accuracy and latency before/after).",
        epilog="Exit codes: 0 done, 2 bad input (nothing written), 3 --max-drop not met (best model kept).",
    )
    p.add_argument("model", metavar="MODEL_OR_CHECKPOINT",
                   help="exported model.xml (or its folder), or an attnseg .pt checkpoint (exported first)")
    p.add_argument("-o", "--output", help="output .xml path or folder (default: beside the IR; a checkpoint gets "
                   "a new <name>_openvino/ folder)")
    p.add_argument("--precision", default="int8", type=str.lower, choices=[m.value for m in OptimizePrecision],
                   help="int8 (NNCF, needs --calibration) or fp16 (weight compression); default int8")
    c = p.add_argument_group("calibration (INT8)")
    c.add_argument("--calibration", metavar="KIND:PATH|DIR",
                   help="data set (KIND:PATH, e.g. kvasir:/data/kvasir-seg) or a folder of images")
    add_split_flag(c, "train", "to calibrate on (test is refused: see --allow-test-calibration)")
    c.add_argument("--allow-test-calibration", action="store_true",
                   help="calibrate on the test split anyway (its figures become optimistic)")
    c.add_argument("--subset-size", type=int, default=DEFAULT_SUBSET_SIZE,
                   help=f"calibration images (random subset if more; default {DEFAULT_SUBSET_SIZE})")
    c.add_argument("--seed", type=int, default=0, help="seed of the calibration subset (default 0)")
    q = p.add_argument_group("quantization (defaults chosen by measurement, docs/optimize_defaults.md)")
    q.add_argument("--preset", type=str.lower, choices=[m.value for m in Preset],
                   help=f"NNCF preset (default {DEFAULT_PRESET.value})")
    q.add_argument("--fast-bias-correction", action=argparse.BooleanOptionalAction, default=None,
                   help=f"fast bias correction (default {'on' if DEFAULT_FAST_BIAS_CORRECTION else 'off'}; "
                   "off = slower, sometimes more accurate)")
    q.add_argument("--ignore-types", nargs="+", metavar="TYPE", help="OpenVINO op types to keep in floating point "
                   "(e.g. Sigmoid Multiply); commas also separate")
    q.add_argument("--ignore-names", nargs="+", metavar="NAME", help="node names to keep in floating point")
    q.add_argument("--ignore-gates", action=argparse.BooleanOptionalAction, default=None,
                   help="keep the attention gates' Sigmoid and x*psi Multiply in floating point "
                   f"(default {'on' if DEFAULT_IGNORE_GATES else 'off'})")
    v = p.add_argument_group("accuracy")
    v.add_argument("--validation", metavar="KIND:PATH|DIR", help="images with masks: " + DATA_HELP)
    v.add_argument("--validation-split", metavar="FILE:NAME", help="split of --validation to use, e.g. "
                   "splits/kvasir-seg.json:test")
    v.add_argument("--metric", type=str.lower, choices=[m.value for m in Metric],
                   help="dice (binary, default) or miou (default for multiclass)")
    v.add_argument("--max-drop", type=float, metavar="FRACTION",
                   help="accuracy-controlled quantization: largest absolute metric drop allowed (0.005 = 0.5 point)")
    v.add_argument("--max-iterations", type=int, metavar="N",
                   help="accuracy control: revert at most N quantizer groups to floating point")
    p.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                   help="size for dynamic IRs, or for exporting a checkpoint")
    p.add_argument("--latency-runs", type=int, default=DEFAULT_LATENCY_RUNS,
                   help=f"timed runs per model in the side-by-side latency figure (0 skips; default "
                   f"{DEFAULT_LATENCY_RUNS})")
    p.add_argument("-d", "--device", default="CPU", help="device for the accuracy and latency figures (default CPU)")
    p.add_argument("--force", action="store_true", help="replace existing output files")
    add_common_flags(p)
    return p


def _body(args: argparse.Namespace) -> int:
    from attnseg.optimize import AdvancedQuantizationParameters, quantize
    from attnseg.optimize.report import console_table
    from attnseg.optimize.source import input_kind

    if input_kind(args.model) == "checkpoint":  # seg-optimize has no --arch: say what works instead
        from attnseg.models.checkpoint import require_recorded_arch

        require_recorded_arch(args.model, "Export it first, naming the architecture: seg-export {path} --arch {arch} "
                              "-o DIR (add --t for R2 models), then seg-optimize DIR/model.xml.")
    split, split_name = split_from_args(args, "train", file_required=True)
    advanced = AdvancedQuantizationParameters(
        split_name=split_name, fast_bias_correction=args.fast_bias_correction, ignore_types=args.ignore_types,
        ignore_names=args.ignore_names, ignore_gates=args.ignore_gates, validation_split=args.validation_split,
        latency_runs=args.latency_runs, max_iterations=args.max_iterations, seed=args.seed,
    )
    result = quantize(
        args.model, args.output, calibration=args.calibration, split=split, subset_size=args.subset_size,
        allow_test_calibration=args.allow_test_calibration,
        preset=args.preset, max_drop=args.max_drop, validation=args.validation, metric=args.metric,
        precision=args.precision, device=args.device, input_size=args.input_size, force=args.force,
        quiet=args.quiet or args.json, advanced=advanced,
    )
    if args.json:
        print_json(result.to_dict())
    elif args.quiet:
        print(result.output_xml)
    else:
        print(console_table(result))
        print(f"reports: {result.report_json}, {result.report_md}")
    if result.budget_met is False:
        a = result.accuracy
        print(f"seg-optimize: error: max drop {a.max_drop:.4f} not met: reached {a.drop:.4f} ({a.metric} "
              f"{a.before:.4f} -> {a.after:.4f}); the best model found was kept at {result.output_xml}.",
              file=sys.stderr)
        return BUDGET_NOT_MET
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_body, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
