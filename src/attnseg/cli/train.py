"""seg-train: train a registered model on a data set (thin layer over attnseg.train)."""

from __future__ import annotations

import argparse

from attnseg.cli.common import add_common_flags, add_deprecated_alias, print_json, run_command
from attnseg.metadata import DEFAULT_INTERPOLATION, INTERPOLATIONS


def build_parser() -> argparse.ArgumentParser:
    from attnseg.cli.common import DefaultsHelpFormatter

    p = argparse.ArgumentParser(prog="seg-train", description="Train an attention U-Net on the CPU (oneDNN).",
                                formatter_class=DefaultsHelpFormatter)
    p.add_argument("--list-models", action=_ListModels, help="list the architectures and exit")
    p.add_argument("--data", required=True, help="data set spec, e.g. kvasir:PATH, camvid:PATH, folder:PATH, isbi:PATH")
    p.add_argument("-o", "--output", required=True, help="run folder (checkpoints, history, curves, split)")
    p.add_argument("--arch", default="AttU_Net", metavar="ARCH",
                   help=f"architecture, one of: {', '.join(_model_names())} (--list-models describes them)")
    p.add_argument("--base-width", type=int, default=16, help="channels of the first layer (64 in the reference)")
    p.add_argument("--t", type=int, default=None, help="recurrences of R2 models")
    p.add_argument("--input-size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"),
                   help="training size, multiples of 16")
    p.add_argument("--input-interpolation", choices=list(INTERPOLATIONS), default=DEFAULT_INTERPOLATION,
                   help="how images are resized to --input-size, recorded in the checkpoint so export and "
                        "every runtime resize the same way (linear: measured faster and no worse in Dice, "
                        "benchmarks/results/input_interpolation; --resume keeps the run's own)")
    p.add_argument("--split", help="split file to use (created in the run folder if not given)")
    p.add_argument("--test-count", type=int, default=100, help="held-out test images when a split is made")
    p.add_argument("--val-fraction", type=float, default=0.1, help="validation share when a split is made")
    p.add_argument("--epochs", type=int, default=30, help="epochs in total (a resumed run continues up to it)")
    p.add_argument("--batch-size", type=int, default=4, help="images per step")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW learning rate (cosine schedule)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    p.add_argument("--augmentation-prob", type=float, default=0.5, help="probability of each augmentation")
    p.add_argument("--loss", choices=["bce-dice", "bce-tversky"], default="bce-dice",
                   help="binary loss: bce-dice, or bce-tversky (focal Tversky + a presence term: "
                        "punishes missing a lesion entirely)")
    p.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="validate and save an exponential moving average of the weights (e.g. 0.999)")
    p.add_argument("--augmentation", choices=["basic", "domain-shift", "endoscope", "endoscope-colour"], default="basic",
                   help="basic: flips, rotation, crop, colour jitter; domain-shift: also zoom, aspect, gamma, "
                        "hue, blur, resolution loss, JPEG, specular highlights (albumentations); endoscope: domain-shift "
                        "plus black frames, vignetting, overlay text, interlacing, exposure, lens warp; endoscope-colour: "
                        "endoscope plus white balance and saturation of other light sources and sensors")
    p.add_argument("--tile-crop-prob", type=float, default=0.0, metavar="P",
                   help="chance of first cutting a window of the input size from the image at its own resolution: "
                        "the close-up view TiledSegmenter gives the model (0: never; needs --augmentation-prob > 0)")
    p.add_argument("--training-precision", dest="precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="compute precision of training; auto: bf16 autocast only where measured faster")
    add_deprecated_alias(p, "--precision", "--training-precision (--precision is the precision of the weights "
                                           "seg-export and seg-optimize write)", dest="precision",
                         choices=["auto", "fp32", "bf16"])
    p.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow first epoch)")
    p.add_argument("--threads", type=int, help="torch threads (default: the CPUs this process may use)")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader worker processes (0: load in the main process)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, initialisation, shuffle and augmentation")
    p.add_argument("--resume", help="continue from a last.pt of an earlier run")
    p.add_argument("--force", action="store_true",
                   help="replace the run already in -o (its checkpoints, history and curves; split.json is "
                        "kept); without it a folder holding a run is refused")
    p.add_argument("--init-from", metavar="CKPT",
                   help="start from the matching weights of another checkpoint (e.g. a U_Net for an AttU_Net)")
    p.add_argument("--max-train-batches", type=int, help="cap batches per epoch (quick runs)")
    hs = p.add_argument_group("hyperspectral (HybridSN, --data indian-pines:PATH)")
    hs.add_argument("--bands", type=int, default=30, help="PCA components")
    hs.add_argument("--patch-size", type=int, default=25, help="side of the pixel neighbourhood")
    hs.add_argument("--train-fraction", type=float, default=0.3, help="labelled pixels used for training")
    add_common_flags(p)
    return p


def _model_names() -> list[str]:
    from attnseg.models import list_models

    return list_models()


class _ListModels(argparse.Action):
    """``--list-models``: every registered architecture with what it segments, then exit."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(format_models())
        parser.exit(0)


def format_models() -> str:
    """One line per registered architecture: name and task (what ``--arch`` accepts)."""
    from attnseg.models import get_model_class, list_models, model_capabilities

    rows = []
    for name in list_models():
        cls = get_model_class(name)
        task = ("hyperspectral pixels (--data indian-pines:PATH)" if model_capabilities(cls).volumetric
                else "image segmentation")
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        rows.append(f"{name:<12} {task:<48} {doc}")
    return "\n".join(rows)


def _volumetric(arch: str) -> bool:
    """The architecture classifies hyperspectral pixels (declared by its class); unknown names are
    left to the training API's own error."""
    from attnseg.errors import ModelConfigError
    from attnseg.models import model_capabilities

    try:
        return model_capabilities(arch).volumetric
    except ModelConfigError:
        return False


def _run(args: argparse.Namespace) -> int:
    if args.data.startswith("indian-pines:") or _volumetric(args.arch):
        return _run_hyperspectral(args)
    from attnseg.train import TrainConfig, train

    kwargs = {"t": args.t} if args.t is not None else {}
    cfg = TrainConfig(
        data=args.data, output_dir=args.output, arch=args.arch, base_width=args.base_width, arch_kwargs=kwargs,
        input_size=tuple(args.input_size), split_file=args.split,
        input_interpolation=args.input_interpolation, test_count=args.test_count,
        val_fraction=args.val_fraction, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, augmentation_prob=args.augmentation_prob, augmentation=args.augmentation, loss=args.loss, ema=args.ema,
        tile_crop_prob=args.tile_crop_prob,
        precision=args.precision,
        channels_last=not args.no_channels_last, compile=args.compile, threads=args.threads,
        workers=args.workers, seed=args.seed, resume=args.resume, force=args.force, init_from=args.init_from,
        max_train_batches=args.max_train_batches,
        show_progress=not (args.quiet or args.json),
    )
    result = train(cfg)
    summary = {"best_checkpoint": str(result.best_checkpoint), "last_checkpoint": str(result.last_checkpoint),
               f"best_val_{result.metric_name}": result.best_metric, "acceleration": result.plan.to_dict()}
    if args.json:
        print_json(summary)
    elif not args.quiet:
        print(f"best val {result.metric_name} {result.best_metric:.4f} -> {result.best_checkpoint}")
    return 0


def _run_hyperspectral(args: argparse.Namespace) -> int:
    from attnseg.errors import DataError
    from attnseg.train.hyperspectral import HyperspectralConfig, train_hyperspectral

    kind, _, path = args.data.partition(":")
    if kind != "indian-pines" or not path:
        raise DataError(f"HybridSN trains on hyperspectral cubes: use --data indian-pines:PATH, not {args.data!r}.")
    arch = args.arch if _volumetric(args.arch) else "HybridSN_SE"
    cfg = HyperspectralConfig(
        data=path, output_dir=args.output, arch=arch, bands=args.bands, patch_size=args.patch_size,
        train_fraction=args.train_fraction, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, precision=args.precision, threads=args.threads, seed=args.seed,
        max_train_batches=args.max_train_batches, show_progress=not (args.quiet or args.json), force=args.force,
    )
    res = train_hyperspectral(cfg)
    m = res.metrics
    if args.json:
        print_json({"checkpoint": str(res.checkpoint), **m})
    elif not args.quiet:
        print(f"test OA {m['oa']:.4f}  AA {m['aa']:.4f}  kappa {m['kappa']:.4f} -> {res.checkpoint}")
    return 0


def main(argv=None) -> int:
    return run_command(_run, build_parser(), argv)
