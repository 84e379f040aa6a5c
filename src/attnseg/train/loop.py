"""The segmentation training loop: AdamW + cosine schedule, validation every epoch, best
checkpoint by validation Dice (binary) or mIoU (multiclass), resumable."""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attnseg.errors import CheckpointError, DataError, ModelConfigError
from attnseg.metadata import DEFAULT_INTERPOLATION, LEGACY_INTERPOLATION
from attnseg.models import create_model, load_checkpoint, save_checkpoint
from attnseg.models.checkpoint import read_checkpoint_file
from attnseg.train.acceleration import AccelerationPlan, autocast, plan_acceleration, prepare_model, to_input
from attnseg.train.cache import CachedSegmentationDataset
from attnseg.train.ema import WeightAverage
from attnseg.train.history import write_history
from attnseg.train.losses import SegmentationLoss
from attnseg.train.run_folder import run_folder
from attnseg.train.warm_start import initialise_from, read_weights

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a run needs; saved in the checkpoint so a run can be reproduced."""

    data: str
    output_dir: str
    arch: str = "AttU_Net"
    base_width: int = 16
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int] = (256, 256)
    input_interpolation: str = DEFAULT_INTERPOLATION  # how images are resized; recorded, export carries it
    split_file: str | None = None
    val_fraction: float = 0.1
    test_count: int = 100
    epochs: int = 30
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    augmentation_prob: float = 0.5
    augmentation: str = "basic"  # one of AUGMENTATIONS
    tile_crop_prob: float = 0.0  # chance of a tile-scale window first (data.tile_crop): what TiledSegmenter shows
    loss: str = "bce-dice"  # binary only: "bce-dice" | "bce-tversky" (punishes missed lesions)
    ema: float | None = None  # weight-average decay (e.g. 0.999); the average is validated and saved
    precision: str = "auto"
    channels_last: bool | None = None
    compile: bool = False
    threads: int | None = None
    workers: int = 0
    seed: int = 0
    resume: str | None = None
    force: bool = False  # replace a run already in output_dir (else refused: train.run_folder)
    init_from: str | None = None  # copy matching weights of another checkpoint (transfer)
    max_train_batches: int | None = None  # for quick runs and tests
    max_val_samples: int | None = None
    show_progress: bool = True


@dataclass
class TrainResult:
    best_checkpoint: Path
    last_checkpoint: Path
    best_metric: float
    metric_name: str
    history: list[dict]
    plan: AccelerationPlan


def ignore_index_of(info) -> int:
    return 255 if info.ignore_index is None else int(info.ignore_index)


def _make_loader(dataset, batch_size: int, shuffle: bool, workers: int, seed: int):
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers, generator=g,
        drop_last=shuffle and len(dataset) > batch_size,
    )


def prepare_data(cfg: TrainConfig):
    """Open the data set, load or create the split, build train / val datasets."""
    from attnseg.data import apply_split, make_split, open_dataset, read_split, write_split

    info = open_dataset(cfg.data)
    split_path = Path(cfg.split_file) if cfg.split_file else Path(cfg.output_dir) / "split.json"
    if split_path.exists():
        split = read_split(split_path)
    elif info.official_test:  # keep an official test set out of training (CamVid test)
        split = info.default_split(val_fraction=cfg.val_fraction, seed=cfg.seed)
        split_path.parent.mkdir(parents=True, exist_ok=True)
        write_split(split_path, split, seed=cfg.seed)
    else:
        n = len(info.samples)
        split = make_split(
            info.samples,
            fractions={"train": 1.0},
            test_count=min(cfg.test_count, n // 5),
            val_count=max(1, int(round(n * cfg.val_fraction))),
            seed=cfg.seed,
        )
        split_path.parent.mkdir(parents=True, exist_ok=True)
        write_split(split_path, split, seed=cfg.seed)
    train_samples = apply_split(info.samples, split, "train")
    val_samples = apply_split(info.samples, split, "val")
    if cfg.max_val_samples:
        val_samples = val_samples[: cfg.max_val_samples]
    num_classes = 1 if info.task == "binary" else len(info.classes)
    common = dict(size=tuple(cfg.input_size), normalization=info.normalization, task=info.task,
                  num_classes=num_classes, ignore_index=ignore_index_of(info), in_channels=info.in_channels,
                  interpolation=cfg.input_interpolation)
    train_ds = CachedSegmentationDataset(train_samples, augment=make_augmentation(cfg.augmentation, cfg.augmentation_prob,
                                                                                     cfg.tile_crop_prob),
                                         seed=cfg.seed, **common).preload(cfg.show_progress, "decode train")
    val_ds = CachedSegmentationDataset(val_samples, augment=None, **common).preload(cfg.show_progress, "decode val")
    if len(train_ds) == 0 or len(val_ds) == 0:
        raise DataError(f"Empty split: {len(train_ds)} training and {len(val_ds)} validation samples.")
    return info, split_path, train_ds, val_ds


AUGMENTATIONS = ("basic", "domain-shift", "endoscope", "endoscope-colour")


def make_augmentation(name: str, prob: float, tile_crop_prob: float = 0.0):
    """The training augmentation called ``name`` (see ``AUGMENTATIONS``), preceded with chance
    ``tile_crop_prob`` by a tile-scale window (``TileCropAugmentation``)."""
    augment = _named_augmentation(name, prob)
    if tile_crop_prob > 0:
        from attnseg.data.tile_crop import TileCropAugmentation

        return TileCropAugmentation(augment, tile_prob=tile_crop_prob)
    return augment


def _named_augmentation(name: str, prob: float):
    from attnseg.data import Augmentation
    from attnseg.data.domain_shift import DomainShiftAugmentation

    if name == "basic":
        return Augmentation(prob=prob)
    if name == "domain-shift":
        return DomainShiftAugmentation(prob=prob)
    if name == "endoscope":
        from attnseg.data.endoscope_shift import EndoscopeAugmentation

        return EndoscopeAugmentation(prob=prob)
    if name == "endoscope-colour":
        from attnseg.data.endoscope_shift import EndoscopeAugmentation

        return EndoscopeAugmentation(prob=prob, colour_prob=0.5)
    raise DataError(f"Unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}.")


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, loader, task: str, num_classes: int, ignore_index: int,
                   threshold: float = 0.5, plan: AccelerationPlan | None = None,
                   loss_fn: torch.nn.Module | None = None) -> dict[str, float]:
    """Metrics of ``model`` over ``loader`` at model resolution, with attnseg.data.metrics."""
    from attnseg.data.metrics import BinaryMetrics, MulticlassMetrics

    model.eval()
    acc = BinaryMetrics() if task == "binary" else MulticlassMetrics(num_classes, ignore_index)
    losses = []
    for x, y in loader:
        x = to_input(x, plan) if plan else x
        if plan:
            with autocast(plan):
                logits = model(x)
        else:
            logits = model(x)
        logits = logits.float()
        if loss_fn is not None:
            losses.append(float(loss_fn(logits, y)))
        if task == "binary":
            pred = (torch.sigmoid(logits[:, 0]) > threshold).to(torch.uint8).numpy()
        else:
            pred = logits.argmax(dim=1).to(torch.uint8).numpy()
        acc.update(pred, y.numpy())
    out = dict(acc.compute())
    if losses:
        out["loss"] = float(np.mean(losses))
    return out


def _scalar_metrics(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, np.floating, np.integer))}


def train(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg.arch`` on ``cfg.data``; returns where the best and last checkpoints are.

    Every option is checked before anything is written or decoded (``train.checks``); a run
    that fails before its first checkpoint removes the run folder it created.
    """
    from attnseg.train.checks import check_train_config

    check_train_config(cfg)
    raw = read_checkpoint_file(cfg.resume) if cfg.resume else None
    if raw is not None:
        cfg = _resumed(cfg, raw)
        check_train_config(cfg)  # the settings taken from the checkpoint pass the same checks (input size, ...)
    # read (and fail) before any file of the run is written
    source_weights = read_weights(cfg.init_from) if cfg.init_from else None
    out = Path(cfg.output_dir)
    with run_folder(out, replace=cfg.force, resume=cfg.resume) as folder:
        result = _train(cfg, out, raw, source_weights)
        folder.keep()
    return result


def _resumed(cfg: TrainConfig, raw: dict) -> TrainConfig:
    from attnseg.train.checks import resume_config

    if "arch" not in raw or not ((raw.get("extra") or {}).get("train_state")):
        raise CheckpointError(f"--resume {cfg.resume} is not a last.pt written by seg-train (no training state); "
                              "use --init-from to start a new run from its weights.")
    done = int(raw["extra"]["train_state"].get("epoch", 0))
    if done >= cfg.epochs:
        raise ModelConfigError(f"--resume {cfg.resume} has already run {done} epochs; --epochs {cfg.epochs} "
                               "leaves nothing to do. Raise --epochs to continue it.")
    saved = dict((raw.get("trained_with") or {}).get("config") or {})
    saved.setdefault("arch", raw["arch"])
    # a run from before the field existed resized with area: it continues that way
    saved.setdefault("input_interpolation", raw.get("input_interpolation") or LEGACY_INTERPOLATION)
    return resume_config(cfg, saved, TrainConfig)


def _train(cfg: TrainConfig, out: Path, raw: dict | None, source_weights) -> TrainResult:
    from attnseg.train import rng

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    info, split_path, train_ds, val_ds = prepare_data(cfg)
    task = info.task
    num_classes = 1 if task == "binary" else len(info.classes)
    metric_name = "dice" if task == "binary" else "miou"

    start_epoch, history, best = 0, [], -math.inf
    kwargs = dict(cfg.arch_kwargs)
    warm = None
    if raw is not None:
        model, ck = load_checkpoint(cfg.resume)
        state = (raw.get("extra") or {}).get("train_state") or {}
        start_epoch = int(state.get("epoch", 0))
        history = list(state.get("history", []))
        best = float(state.get("best", -math.inf))
    else:
        model = _build_model(cfg, info, num_classes, kwargs)
        state = {}
        if cfg.init_from:
            warm = initialise_from(model, cfg.init_from, source_weights)
            log.info("Initialised %d tensors from %s; fresh: %s", warm.copied, cfg.init_from,
                     ", ".join(warm.to_dict()["init_fresh_modules"]) or "none")
    model.train()
    plan = plan_acceleration(cfg.precision, cfg.channels_last, cfg.compile, cfg.threads, model=model,
                             input_shape=(cfg.batch_size, model.in_channels, *cfg.input_size))
    log.info("Acceleration: %s", plan.to_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if state.get("optimizer"):
        optimizer.load_state_dict(state["optimizer"])
    runner, optimizer = prepare_model(model, optimizer, plan)
    train_loader = _make_loader(train_ds, cfg.batch_size, True, cfg.workers, cfg.seed)
    val_loader = _make_loader(val_ds, cfg.batch_size, False, cfg.workers, cfg.seed)
    steps_per_epoch = min(len(train_loader), cfg.max_train_batches or len(train_loader))
    total = max(1, cfg.epochs * steps_per_epoch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)) * 0.99 + 0.01
    )
    if state.get("scheduler"):
        scheduler.load_state_dict(state["scheduler"])
        # building the scheduler set the step-0 rate; the next step must use the saved one
        for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
            group["lr"] = lr
    average = WeightAverage(model, cfg.ema, state.get("ema")) if cfg.ema else None
    rng.restore(state.get("rng"))  # after everything that may draw while being built
    loss_fn = SegmentationLoss(num_classes, ignore_index=ignore_index_of(info), kind=cfg.loss)
    meta = dict(classes=info.classes, input_size=tuple(cfg.input_size), normalization=info.normalization,
                threshold=0.5, input_interpolation=train_ds.interpolation)
    best_path, last_path = out / "best.pt", out / "last.pt"
    trained_with = {**plan.to_dict(), "config": _config_dict(cfg), "split_file": str(split_path)}
    if warm is not None:
        trained_with.update(warm.to_dict())
    elif raw is not None:  # a resumed warm-started run still says where its weights came from
        earlier = (raw.get("trained_with") or {})
        trained_with.update({k: v for k, v in earlier.items() if k.startswith("init_")})

    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        train_ds.set_epoch(epoch)  # fresh augmentation draws; workers are re-forked each epoch
        train_loader.generator.manual_seed(rng.epoch_seed(cfg.seed, epoch))  # shuffle + worker seeds
        t0, losses = time.perf_counter(), []
        bar = _bar(steps_per_epoch, f"epoch {epoch + 1}/{cfg.epochs}", cfg.show_progress)
        for i, (x, y) in enumerate(train_loader):
            if i >= steps_per_epoch:
                break
            x = to_input(x, plan)
            with autocast(plan):
                logits = runner(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if average is not None:
                average.update(model)
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        bar.close()
        train_time = time.perf_counter() - t0
        t_val = time.perf_counter()
        judged = average.module if average is not None else runner
        val = evaluate_model(judged, _progress(val_loader, f"validate {epoch + 1}/{cfg.epochs}", cfg.show_progress),
                             task, num_classes, ignore_index_of(info), plan=plan, loss_fn=loss_fn)
        val_time = time.perf_counter() - t_val
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "val_loss": val.pop("loss"),
               **{f"val_{k}": v for k, v in _scalar_metrics(val).items()},
               "lr": scheduler.get_last_lr()[0], "epoch_seconds": round(train_time + val_time, 1),
               "train_seconds": round(train_time, 1), "val_seconds": round(val_time, 1)}
        history.append(row)
        score = row[f"val_{metric_name}"]
        improved = score > best or (math.isnan(best) or best == -math.inf)
        if improved:
            best = score
            save_checkpoint(best_path, average.module if average is not None else model, **meta, metrics={**_scalar_metrics(val), "epoch": epoch + 1,
                            "split": "val"}, trained_with=trained_with)
        train_state = {"epoch": epoch + 1, "history": history, "best": best, "optimizer": optimizer.state_dict(),
                       "scheduler": scheduler.state_dict(), "rng": rng.capture()}
        if average is not None:
            train_state["ema"] = average.state()
        save_checkpoint(last_path, model, **meta, metrics=_scalar_metrics(val), trained_with=trained_with,
                        train_state=train_state)
        write_history(history, out)
        log.info(f"epoch {epoch + 1}/{cfg.epochs} loss {row['train_loss']:.4f} "
                 f"val {metric_name} {score:.4f}{' *' if improved else ''} "
                 f"({train_time + val_time:.0f} s: train {train_time:.0f}, validation {val_time:.0f})")
    return TrainResult(best_path, last_path, best, metric_name, history, plan)


def _build_model(cfg: TrainConfig, info, num_classes: int, kwargs: dict):
    from attnseg.models import model_capabilities

    caps = model_capabilities(cfg.arch)
    if caps.volumetric:
        raise ModelConfigError(f"{cfg.arch} is a pixel classifier; train it with seg-train --hyperspectral.")
    ch_key, out_key = caps.channels_arg, caps.classes_arg
    kwargs.setdefault(ch_key, info.in_channels)
    kwargs.setdefault(out_key, num_classes)
    kwargs.setdefault("base_width", cfg.base_width)
    return create_model(cfg.arch, **kwargs)


def _config_dict(cfg: TrainConfig) -> dict:
    d = asdict(cfg)
    d.pop("force", None)  # how the folder was claimed, not how the model was trained
    d["input_size"] = list(cfg.input_size)
    return {k: v for k, v in d.items() if v is not None}


def _progress(loader, desc: str, enabled: bool):
    """``loader`` wrapped in a tqdm bar (validation can take longer than the training epoch)."""
    from tqdm import tqdm

    return tqdm(loader, total=len(loader), desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)


def _bar(total: int, desc: str, enabled: bool):
    """A tqdm bar over an epoch's batches (loss in the postfix); silent when disabled."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, dynamic_ncols=True)
