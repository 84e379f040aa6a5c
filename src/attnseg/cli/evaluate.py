"""seg-eval: metrics of a checkpoint or an exported model on a split, at the images' own resolution."""

from __future__ import annotations

import argparse

from attnseg.cli.common import (
    DATA_HELP,
    add_common_flags,
    add_dataclass_flags,
    add_split_flag,
    options_from_args,
    print_json,
    run_command,
    split_from_args,
)
from attnseg.runtime.options import RuntimeOptions


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seg-eval", description="Evaluate a checkpoint, or an exported model "
                                                             "(.xml or its folder, run as seg-infer runs it), "
                                                             "on a data set split.")
    p.add_argument("checkpoint", metavar="MODEL", help="checkpoint (.pt) or exported model (.xml or its folder)")
    p.add_argument("--data", required=True, help=DATA_HELP)
    add_split_flag(p, "test", "to score (default: the run's split.json beside the checkpoint, else the data "
                              "set's own)")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--limit", type=int, help="score only the first N samples")
    g = p.add_argument_group("bare state_dicts")
    g.add_argument("--arch", help="architecture of a bare state_dict (e.g. AttU_Net); attnseg checkpoints record it")
    g.add_argument("--t", type=int, help="recurrences of R2U_Net / R2AttU_Net")
    add_dataclass_flags(p, RuntimeOptions, "runtime (exported models; --hint default: the tuned file's, else latency)")
    add_common_flags(p)
    return p


def format_metrics(metrics: dict) -> str:
    rows = []
    for k, v in metrics.items():
        if isinstance(v, float):
            rows.append(f"  {k:<20} {v:.4f}")
        elif isinstance(v, int):
            rows.append(f"  {k:<20} {v}")
        elif isinstance(v, (list, dict)) and k in ("iou", "per_class_iou"):
            rows.append(f"  {k:<20} {v}")
    return "\n".join(rows)


def _run(args: argparse.Namespace) -> int:
    from attnseg.train.evaluate import evaluate_checkpoint, is_exported_model

    if args.t is not None and not args.arch:
        from attnseg.errors import ModelConfigError

        raise ModelConfigError("--t goes with --arch (a bare R2U_Net / R2AttU_Net state_dict).")
    split_file, split_name = split_from_args(args, "test")
    runtime = options_from_args(RuntimeOptions, args)
    if runtime != RuntimeOptions() and not is_exported_model(args.checkpoint):
        from attnseg.errors import InvalidOptionError

        raise InvalidOptionError("The runtime flags (-d, --hint, --inference-precision, ...) run exported models; "
                                 f"{args.checkpoint} is a checkpoint (evaluated with PyTorch). Export it first.")
    res = evaluate_checkpoint(args.checkpoint, args.data, split_file, split_name, args.input_size,
                              args.limit, show_progress=not (args.quiet or args.json), arch=args.arch,
                              runtime=runtime, **({"t": args.t} if args.t is not None else {}))
    if args.json:
        print_json({"checkpoint": res.checkpoint, "data": res.data, "split": res.split, "task": res.task,
                    "count": res.count, "metrics": res.metrics})
    else:
        print(f"{res.checkpoint} on {res.data} [{res.split}, {res.count} images]")
        print(format_metrics(res.metrics))
    return 0


def main(argv=None) -> int:
    return run_command(_run, build_parser(), argv)
