"""HybridSN / HybridSN_SE on Indian Pines: PCA to ``bands``, ``patch`` x ``patch`` cubes around
each labelled pixel, stratified train fraction; OA, AA and kappa on the held-out pixels."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from attnseg.models import create_model, get_model_class, save_checkpoint
from attnseg.train.acceleration import autocast, plan_acceleration
from attnseg.train.history import write_history

log = logging.getLogger(__name__)


@dataclass
class HyperspectralConfig:
    data: str  # folder holding Indian_pines_corrected.(npy|mat) and Indian_pines_gt.mat
    output_dir: str
    arch: str = "HybridSN_SE"
    bands: int = 30
    patch_size: int = 25
    train_fraction: float = 0.3
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    precision: str = "auto"
    threads: int | None = None
    seed: int = 0
    max_train_batches: int | None = None  # cap batches per epoch (quick runs and tests)
    show_progress: bool = True
    force: bool = False  # replace a run already in output_dir (else refused: train.run_folder)
    extra: dict = field(default_factory=dict)


@dataclass
class HyperspectralResult:
    checkpoint: Path
    metrics: dict
    history: list[dict]


@torch.no_grad()
def _predict(model, loader, plan) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    preds, labels = [], []
    for x, y in loader:
        with autocast(plan):
            preds.append(model(x).float().argmax(1).numpy())
        labels.append(y.numpy())
    return np.concatenate(labels), np.concatenate(preds)


def train_hyperspectral(cfg: HyperspectralConfig) -> HyperspectralResult:
    """Train on the train pixels; the final model is scored once on the test pixels.

    ``last.pt`` is written after every epoch; a run that fails before it leaves no folder."""
    from attnseg.train.checks import check_counts, check_output_dir
    from attnseg.train.run_folder import run_folder

    check_counts(cfg)
    check_output_dir(cfg.output_dir, force=cfg.force)
    get_model_class(cfg.arch)
    out = Path(cfg.output_dir)
    with run_folder(out, replace=cfg.force) as folder:
        result = _train_hyperspectral(cfg, out)
        folder.keep()
    return result


def _train_hyperspectral(cfg: HyperspectralConfig, out: Path) -> HyperspectralResult:
    from tqdm import tqdm

    from attnseg.data import classification_metrics, open_indian_pines

    torch.manual_seed(cfg.seed)
    data = open_indian_pines(cfg.data, bands=cfg.bands, patch=cfg.patch_size,
                             train_fraction=cfg.train_fraction, seed=cfg.seed)
    n_classes = len(data.classes)
    model = create_model(cfg.arch, bands=cfg.bands, patch_size=cfg.patch_size, num_classes=n_classes)
    # "auto" means fp32 here: oneDNN has no fast bf16 Conv3d path on this class of CPU; a HybridSN
    # training step with batch 64 measured 2-3x slower under bf16 autocast than in fp32.
    precision = "fp32" if cfg.precision == "auto" else cfg.precision
    plan = plan_acceleration(precision, channels_last=False, threads=cfg.threads)
    g = torch.Generator().manual_seed(cfg.seed)
    train_loader = torch.utils.data.DataLoader(data.dataset("train"), batch_size=cfg.batch_size, shuffle=True,
                                               generator=g)
    test_loader = torch.utils.data.DataLoader(data.dataset("test"), batch_size=256)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = min(len(train_loader), cfg.max_train_batches or len(train_loader))
    total = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    loss_fn = torch.nn.CrossEntropyLoss()
    meta = {"classes": data.classes, "input_size": (cfg.patch_size, cfg.patch_size),
            "normalization": {"mean": [0.0], "std": [1.0], "channel_order": "PCA", "pixel_scale": 1.0}}
    trained_with = {**plan.to_dict(), "train_fraction": cfg.train_fraction, "seed": cfg.seed, "epochs": cfg.epochs,
                    "pca_bands": cfg.bands}
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        t0, losses, correct, seen = time.perf_counter(), [], 0, 0
        for step, (x, y) in enumerate(tqdm(train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                                           total=steps_per_epoch, disable=not cfg.show_progress)):
            if step >= steps_per_epoch:
                break
            with autocast(plan):
                logits = model(x)
            loss = loss_fn(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "train_oa": correct / seen, "train_batches": len(losses),
               "epoch_seconds": round(time.perf_counter() - t0, 1)}
        history.append(row)
        save_checkpoint(out / "last.pt", model, **meta, metrics={"train_oa": row["train_oa"]},
                        trained_with=trained_with, train_state={"epoch": epoch + 1, "history": history})
        write_history(history, out)
        log.info("epoch %d/%d loss %.4f train OA %.4f", epoch + 1, cfg.epochs, row["train_loss"], row["train_oa"])
    y_true, y_pred = _predict(model, test_loader, plan)
    cm = classification_metrics(y_true, y_pred, n_classes)
    metrics = {"oa": float(cm["oa"]), "aa": float(cm["aa"]), "kappa": float(cm["kappa"]),
               "per_class_accuracy": [None if v is None else float(v) for v in cm["per_class_accuracy"]],
               "test_pixels": int(len(y_true)), "train_pixels": int(len(data.train_idx)), "split": "test"}
    path = save_checkpoint(out / "best.pt", model, **meta, metrics=metrics, trained_with=trained_with)
    return HyperspectralResult(path, metrics, history)
