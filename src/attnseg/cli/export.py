"""``seg-export``: checkpoint -> ONNX + OpenVINO IR, compiled on a device and checked against PyTorch."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from attnseg.cli.common import (
    add_common_flags,
    add_deprecated_alias,
    image_source,
    print_json,
    run_command,
    warn_deprecated,
)
from attnseg.export.api import DEFAULT_ROUTE
from attnseg.export.options import OutputKind, Precision, Route

PRECISIONS = tuple(p.value for p in Precision)
OUTPUTS = tuple(k.value for k in OutputKind)
ROUTES = tuple(r.value for r in Route)


class _OutputFolder(argparse.Action):
    """``-o/--output DIR``. Until the next release ``--output logits|probabilities|mask`` (the old
    spelling of ``--output-kind``) still sets the kind, with a warning; ``-o ./mask`` names a folder."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if option_string == "--output" and str(values).lower() in OUTPUTS:
            warn_deprecated(parser.prog, f"--output {values}", f"--output-kind {str(values).lower()} "
                                                              "(--output now names the output folder)")
            namespace.output_kind = str(values).lower()
            return
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seg-export",
        description="Export a segmentation checkpoint to ONNX and OpenVINO IR (static shapes, preprocessing "
        "embedded), compile it on --device and check it against PyTorch and ONNX Runtime.",
    )
    p.add_argument("checkpoint", nargs="?", help="attnseg checkpoint or bare state_dict (with --arch); omit it "
                   "to run the main job on the model shipped with attnseg (FP32 + INT8 IR, parity, Dice on the "
                   "bundled samples, latency comparison)")
    p.add_argument("-o", "--output", dest="output_dir", action=_OutputFolder,
                   help="output folder (must not exist); required with a checkpoint, a fresh "
                   "attnseg-export-<time> folder for the main job")
    add_deprecated_alias(p, "--output-dir", "-o/--output", dest="output_dir")
    p.add_argument("--niter", type=int, default=50, help="main job: timed inferences per backend (default 50)")
    p.add_argument("--export-only", action="store_true",
                   help="with no checkpoint: only export the shipped model (no INT8, no comparison)")
    p.add_argument("-d", "--device", default="CPU", help="CPU, GPU, NPU, AUTO, HETERO:a,b or MULTI:a,b (default CPU)")
    p.add_argument("--precision", default="fp32", type=str.lower, choices=PRECISIONS, help="IR weights")
    p.add_argument("--input-size", nargs=2, type=int, metavar=("H", "W"),
                   help="model input size, multiples of 16 (default: the checkpoint's, else 256 256)")
    p.add_argument("--batch", type=int, default=1, help="static batch size (default 1)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width (not for NPU)")
    p.add_argument("--raw-input", action="store_true",
                   help="keep the f32 NCHW normalized input instead of embedding preprocessing (u8 NHWC BGR)")
    p.add_argument("--output-kind", dest="output_kind", default="logits", type=str.lower, choices=OUTPUTS,
                   help="what the IR returns (default logits)")
    p.add_argument("--via", default=DEFAULT_ROUTE.value, type=str.lower, choices=ROUTES,
                   help="how the IR is made: torch (OpenVINO's PyTorch frontend on the module) or onnx (convert "
                   "the written model.onnx); model.onnx is written either way (default: "
                   "attnseg.export.api.DEFAULT_ROUTE, chosen by measurement, docs/conversion_routes.md)")
    p.add_argument("--attention-maps", action="store_true", help="add the attention gate maps as outputs")
    p.add_argument("--samples", metavar="KIND:PATH|DIR",
                   help="images for the parity check: a folder, or a data set KIND:PATH (default: random images)")
    p.add_argument("--cache-dir", metavar="DIR", help="OpenVINO model cache folder")
    p.add_argument("--ovms-repo", metavar="DIR", help="also lay the IR out as an OpenVINO Model Server repository")
    p.add_argument("--model-name", default="model", help="model name in the OVMS repository (default model)")
    p.add_argument("--threshold", type=float, help="binary mask threshold (default: the checkpoint's)")
    g = p.add_argument_group("bare state_dicts and custom models")
    g.add_argument("--arch", help="architecture of a bare state_dict (e.g. AttU_Net)")
    g.add_argument("--base-width", type=int, help="width of the first layer (64 in the reference)")
    g.add_argument("--t", type=int, help="recurrences of R2U_Net / R2AttU_Net")
    g.add_argument("--in-channels", type=int, help="input channels")
    g.add_argument("--classes", type=int, help="number of output channels (1 = binary)")
    g.add_argument("--model-factory", metavar="MODULE:FUNCTION",
                   help="export the torch.nn.Module returned by FUNCTION() instead of a checkpoint")
    p.add_argument("--package", action="store_true",
                   help="also write <output>/package.zip: the IRs, model.json, a README with the core-only "
                   "install command, demo.py (image, folder, video, camera) and SHA256SUMS")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    add_common_flags(p)
    return p


def _body(args: argparse.Namespace) -> int:
    from attnseg.errors import ModelConfigError
    from attnseg.export import AdvancedExportParameters, export

    own_model = args.checkpoint or args.model_factory or args.arch
    if not own_model and not args.export_only:
        return _main_job(args)
    if own_model and not args.output_dir:
        raise ModelConfigError("Name the output folder with -o/--output.")
    if not args.output_dir:
        from attnseg.jobs.main_job import default_output_dir

        args.output_dir = str(default_output_dir())

    model = None
    arch_kwargs = None
    flags = {"base_width": args.base_width, "t": args.t, "in_channels": args.in_channels, "classes": args.classes}
    if args.model_factory:
        if args.checkpoint or args.arch or any(v is not None for v in flags.values()):
            raise ModelConfigError("--model-factory builds the model itself; drop the checkpoint and --arch/--base-width/"
                                   "--t/--in-channels/--classes.")
        from attnseg.export.source import load_factory

        model = load_factory(args.model_factory)
    elif any(v is not None for v in flags.values()):
        from attnseg.export.source import arch_kwargs_from_flags

        arch = args.arch or _checkpoint_arch(args.checkpoint)
        arch_kwargs = arch_kwargs_from_flags(arch, **flags)
    advanced = AdvancedExportParameters(
        arch_kwargs=arch_kwargs, batch=args.batch, dynamic=args.dynamic, embed_preprocessing=not args.raw_input,
        output=args.output_kind, cache_dir=args.cache_dir, ovms_repo=args.ovms_repo, model_name=args.model_name,
        package=args.package,
    )
    result = export(
        args.checkpoint, model=model, output_dir=args.output_dir, arch=args.arch, input_size=args.input_size,
        precision=args.precision, attention_maps=args.attention_maps, device=args.device, samples=image_source(args.samples),
        threshold=args.threshold, force=args.force, advanced=advanced,
        via=args.via,
    )
    if args.json:
        print_json(result.to_dict())
    else:
        meta = result.metadata
        size = "x".join(map(str, meta.input_size)) if meta.input_size else "dynamic"
        print(f"Exported {meta.arch} ({meta.task}, {size}, {meta.precision}) to {result.output_dir} "
              f"in {result.timings['total_s']:.1f} s; compiled on {result.device}.")
        if not args.quiet and result.parity:
            print(f"Parity ({result.parity.inputs}): {result.parity.summary()}")
            for note in result.parity.notes:
                print(f"Note: {note}")
        if result.ovms_model_dir and not args.quiet:
            print(f"OVMS repository entry: {result.ovms_model_dir}")
        if args.package:  # written inside the export folder before it was published
            from attnseg.export.package import PACKAGE_NAME

            print(f"Deployment package: {result.output_dir / PACKAGE_NAME}")
    return 0


def _package(args: argparse.Namespace, folder) -> None:
    """The main job's package, zipped after its folder (FP32, INT8, summary) is complete."""
    if not args.package:
        return
    from attnseg.atomic import DiskFullError
    from attnseg.export.package import write_package

    try:
        path = write_package(folder)
    except DiskFullError as exc:  # the models are published; only the zip is missing
        raise DiskFullError(f"{folder} is complete and kept, but its package.zip could not be written: "
                            f"{str(exc).replace(' Nothing was left behind.', '')} No partial zip was left.") from None
    if not args.json:
        print(f"Deployment package: {path}")


def _main_job(args: argparse.Namespace) -> int:
    """No checkpoint: the shipped model through export, INT8, Dice and latency (attnseg.jobs.main_job)."""
    from attnseg.jobs.main_job import format_table, run_main_job

    result = run_main_job(args.output_dir, device=args.device, niter=args.niter, force=args.force,
                          quiet=args.quiet or args.json)
    if args.json:
        print_json(result.to_dict())
        _package(args, result.output_dir)
        return 0
    print(format_table(result))
    if not args.quiet and result.parity:
        figures = ", ".join(f"{b['backend']}[{b['execution']}] max|diff| {b['max_abs_diff']:.1e} "
                            f"equal px {100 * b['equal_pixels']:.2f}%" for b in result.parity.get("backends", []))
        print(f"Parity vs PyTorch ({'passed' if result.parity.get('passed') else 'FAILED'}): {figures}")
        for note in result.parity.get("notes", []):
            print(f"Note: {note}")
    print(f"Models and summary in {result.output_dir}/ (model.xml, model_int8.xml, summary.md)")
    _package(args, result.output_dir)
    return 0


def _checkpoint_arch(checkpoint: str | None) -> str:
    """The architecture a contract checkpoint names (flags without --arch refer to it)."""
    from attnseg.errors import ModelConfigError

    if not checkpoint:
        raise ModelConfigError("--base-width/--t/--in-channels/--classes need a checkpoint and usually --arch.")
    from attnseg.models.checkpoint import read_checkpoint_file

    raw = read_checkpoint_file(checkpoint)
    if "arch" not in raw:
        raise ModelConfigError(f"{checkpoint} is a bare state_dict; name its architecture with --arch.")
    return str(raw["arch"])


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_body, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
