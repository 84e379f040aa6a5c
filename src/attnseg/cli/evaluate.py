"""seg-eval: metrics of a checkpoint on a split, at the images' own resolution."""

from __future__ import annotations

import argparse

from attnseg.cli.common import add_common_flags, print_json, run_command


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seg-eval", description="Evaluate a checkpoint on a data set split.")
    p.add_argument("checkpoint")
    p.add_argument("--data", required=True, help="data set spec, e.g. kvasir:PATH, camvid:PATH")
    p.add_argument("--split", help="split file (e.g. splits/kvasir-seg.json); default: the data set's own")
    p.add_argument("--split-name", default="test", help="which split to score (default test; 'all' for all)")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"))
    p.add_argument("--limit", type=int, help="score only the first N samples")
    g = p.add_argument_group("bare state_dicts")
    g.add_argument("--arch", help="architecture of a bare state_dict (e.g. AttU_Net); attnseg checkpoints record it")
    g.add_argument("--t", type=int, help="recurrences of R2U_Net / R2AttU_Net")
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
    from attnseg.train.evaluate import evaluate_checkpoint

    if args.t is not None and not args.arch:
        from attnseg.errors import ModelConfigError

        raise ModelConfigError("--t goes with --arch (a bare R2U_Net / R2AttU_Net state_dict).")
    res = evaluate_checkpoint(args.checkpoint, args.data, args.split, args.split_name, args.input_size,
                              args.limit, show_progress=not (args.quiet or args.json), arch=args.arch,
                              **({"t": args.t} if args.t is not None else {}))
    if args.json:
        print_json({"checkpoint": res.checkpoint, "data": res.data, "split": res.split, "task": res.task,
                    "count": res.count, "metrics": res.metrics})
    else:
        print(f"{res.checkpoint} on {res.data} [{res.split}, {res.count} images]")
        print(format_metrics(res.metrics))
    return 0


def main(argv=None) -> int:
    return run_command(_run, build_parser(), argv)
