"""Segmentation and pixel-classification metrics in numpy.

One module for PyTorch models and exported (OpenVINO) models alike, so a number in a training
log and a number from an exported model mean the same thing.

Conventions (documented because they change the numbers):
- Binary metrics are computed per image and then averaged over images (not over pixels).
  A ratio whose denominator is zero (e.g. Dice when both prediction and ground truth are
  empty, sensitivity when the image has no foreground) is 1.0 if the prediction agrees with
  the ground truth on that set of pixels, else 0.0. So an empty prediction on an empty mask
  scores Dice = Jaccard = 1.0, and any foreground predicted on an empty mask scores 0.0.
- F1 is computed as 2TP / (2TP + FP + FN), which is the Dice coefficient for binary masks.
- Multiclass: one confusion matrix over all pixels of all images, ignoring pixels whose ground
  truth is the ignore index. A class's IoU is TP / (TP + FP + FN); a class absent from both
  ground truth and prediction has no IoU (``None``) and is left out of the mIoU, which is the
  mean over classes present in the ground truth or the prediction.
- Classification (HybridSN): OA = correct / all; AA = mean per-class recall over classes
  present in ``y_true``; Cohen's kappa from the confusion matrix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from attnseg.errors import DataError

BINARY_KEYS = ("accuracy", "sensitivity", "specificity", "precision", "f1", "jaccard", "dice")


def _as_array(x: Any) -> np.ndarray:
    """numpy view of numpy arrays, lists, or CPU torch tensors (without importing torch)."""
    if hasattr(x, "detach"):
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        x = x.numpy()
    return np.asarray(x)


def _binarize(x: Any, threshold: float) -> np.ndarray:
    a = _as_array(x)
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.floating):
        return a >= threshold  # probabilities
    return a != 0  # labels


def _ratio(num: int, den: int, agree: bool) -> float:
    if den == 0:
        return 1.0 if agree else 0.0
    return float(num) / float(den)


def binary_counts(pred: Any, gt: Any, threshold: float = 0.5) -> tuple[int, int, int, int]:
    """(TP, FP, FN, TN) of one image; float ``pred`` is taken as probabilities."""
    p, g = _binarize(pred, threshold), _binarize(gt, 0.5)
    if p.shape != g.shape:
        raise DataError(f"Prediction shape {p.shape} differs from ground truth shape {g.shape}.")
    tp = int(np.count_nonzero(p & g))
    fp = int(np.count_nonzero(p & ~g))
    fn = int(np.count_nonzero(~p & g))
    tn = int(p.size - tp - fp - fn)
    return tp, fp, fn, tn


def metrics_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """The seven binary metrics from one image's counts (zero-denominator rule in module doc)."""
    total = tp + fp + fn + tn
    fg_agree = fp == 0 and fn == 0  # the foreground sets are identical
    dice = _ratio(2 * tp, 2 * tp + fp + fn, fg_agree)
    return {
        "accuracy": _ratio(tp + tn, total, True),
        "sensitivity": _ratio(tp, tp + fn, fp == 0),  # no gt foreground: right iff none predicted
        "specificity": _ratio(tn, tn + fp, fn == 0),  # no gt background: right iff none predicted
        "precision": _ratio(tp, tp + fp, fn == 0),  # nothing predicted: right iff nothing to find
        "f1": dice,
        "jaccard": _ratio(tp, tp + fp + fn, fg_agree),
        "dice": dice,
    }


def binary_metrics(pred: Any, gt: Any, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, sensitivity (recall), specificity, precision, F1, Jaccard and Dice of one image.

    ``pred``: bool / integer labels (non-zero = foreground) or float probabilities (>= threshold).
    ``gt``: bool / integer labels.
    """
    return metrics_from_counts(*binary_counts(pred, gt, threshold))


def _batch(x: Any) -> np.ndarray:
    a = _as_array(x)
    if a.ndim == 2:
        return a[None]
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim != 3:
        raise DataError(f"Expected masks as HxW, NxHxW or Nx1xHxW, got shape {a.shape}.")
    return a


class BinaryMetrics:
    """Accumulate per-image binary metrics over batches; ``compute()`` averages over images."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = threshold
        self.per_image: list[dict[str, Any]] = []

    def reset(self) -> None:
        self.per_image.clear()

    def update(self, pred_batch: Any, gt_batch: Any, names: Iterable[str] | None = None) -> None:
        """Add a batch: HxW, NxHxW or Nx1xHxW predictions (labels or probabilities) and masks."""
        preds, gts = _batch(pred_batch), _batch(gt_batch)
        if preds.shape != gts.shape:
            raise DataError(f"Prediction batch {preds.shape} and mask batch {gts.shape} differ.")
        names = list(names) if names is not None else [None] * len(preds)
        for p, g, n in zip(preds, gts, names):
            row: dict[str, Any] = binary_metrics(p, g, self.threshold)
            if n is not None:
                row["name"] = n
            self.per_image.append(row)

    @property
    def count(self) -> int:
        return len(self.per_image)

    def compute(self) -> dict[str, float]:
        """Mean of every metric over the images seen, plus ``count``."""
        if not self.per_image:
            raise DataError("No images were evaluated (empty data set or split).")
        out: dict[str, float] = {k: float(np.mean([r[k] for r in self.per_image])) for k in BINARY_KEYS}
        out["count"] = self.count
        return out


class MulticlassMetrics:
    """Confusion-matrix accumulator: per-class IoU, mIoU and pixel accuracy, void ignored."""

    def __init__(
        self, num_classes: int, ignore_index: int | None = 255, class_names: list[str] | None = None
    ):
        if num_classes < 1:
            raise DataError(f"num_classes must be >= 1, got {num_classes}.")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # rows gt, cols pred
        self.images = 0

    def reset(self) -> None:
        self.confusion[:] = 0
        self.images = 0

    def update(self, pred: Any, gt: Any) -> None:
        """Add predicted class ids and ground truth (HxW or NxHxW, same shape)."""
        p, g = _as_array(pred), _as_array(gt)
        if p.shape != g.shape:
            raise DataError(f"Prediction shape {p.shape} differs from ground truth shape {g.shape}.")
        self.images += 1 if g.ndim <= 2 else int(g.shape[0])
        p, g = p.reshape(-1).astype(np.int64), g.reshape(-1).astype(np.int64)
        valid = g != self.ignore_index if self.ignore_index is not None else np.ones_like(g, dtype=bool)
        bad_gt = valid & ((g < 0) | (g >= self.num_classes))
        if bad_gt.any():
            raise DataError(
                f"Ground truth has class ids {sorted(set(np.unique(g[bad_gt]).tolist()))[:10]} outside "
                f"0..{self.num_classes - 1} (ignore index {self.ignore_index})."
            )
        p, g = p[valid], g[valid]
        if p.size and (p.min() < 0 or p.max() >= self.num_classes):
            raise DataError(f"Predictions hold class ids outside 0..{self.num_classes - 1}.")
        self.confusion += np.bincount(g * self.num_classes + p, minlength=self.num_classes**2).reshape(
            self.num_classes, self.num_classes
        )

    def compute(self) -> dict[str, Any]:
        """``iou`` (per class, ``None`` if absent everywhere), ``miou``, ``pixel_accuracy``,
        ``class_accuracy`` (recall, ``None`` if absent from gt), ``mean_accuracy``, ``count``."""
        cm = self.confusion
        total = int(cm.sum())
        if total == 0:
            raise DataError("No labelled pixels were evaluated (empty split, or every pixel is void).")
        tp = np.diag(cm).astype(np.float64)
        gt_n, pred_n = cm.sum(axis=1), cm.sum(axis=0)
        union = gt_n + pred_n - tp
        iou = [float(tp[c] / union[c]) if union[c] > 0 else None for c in range(self.num_classes)]
        acc = [float(tp[c] / gt_n[c]) if gt_n[c] > 0 else None for c in range(self.num_classes)]
        present = [v for v in iou if v is not None]
        accs = [v for v in acc if v is not None]
        return {
            "miou": float(np.mean(present)),
            "pixel_accuracy": float(tp.sum() / total),
            "mean_accuracy": float(np.mean(accs)) if accs else 0.0,
            "iou": iou,
            "class_accuracy": acc,
            "classes": list(self.class_names),
            "pixels": total,
            "count": self.images,
        }


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Rows = true class, columns = predicted class."""
    t, p = _as_array(y_true).reshape(-1).astype(np.int64), _as_array(y_pred).reshape(-1).astype(np.int64)
    if t.shape != p.shape:
        raise DataError(f"y_true has {t.size} labels but y_pred has {p.size}.")
    for what, a in (("y_true", t), ("y_pred", p)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise DataError(f"{what} holds labels outside 0..{num_classes - 1}.")
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_metrics(y_true: Any, y_pred: Any, num_classes: int) -> dict[str, Any]:
    """Overall accuracy (OA), average accuracy (AA), Cohen's kappa and per-class accuracy."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    n = int(cm.sum())
    if n == 0:
        raise DataError("No labels to evaluate.")
    tp = np.diag(cm).astype(np.float64)
    rows, cols = cm.sum(axis=1).astype(np.float64), cm.sum(axis=0).astype(np.float64)
    per_class = [float(tp[c] / rows[c]) if rows[c] > 0 else None for c in range(num_classes)]
    oa = float(tp.sum() / n)
    pe = float((rows * cols).sum() / (n * n))
    kappa = (oa - pe) / (1.0 - pe) if pe < 1.0 else (1.0 if oa == 1.0 else 0.0)
    return {
        "oa": oa,
        "aa": float(np.mean([v for v in per_class if v is not None])),
        "kappa": float(kappa),
        "per_class_accuracy": per_class,
        "confusion": cm.tolist(),
        "count": n,
    }
