"""Segmentation losses: BCE + Dice for binary, cross-entropy (+ Dice) with ignore index."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss_binary(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per image, averaged; ``logits`` (N,1,H,W), ``target`` (N,H,W) in {0,1}."""
    p = torch.sigmoid(logits.float())[:, 0]
    t = target.float()
    inter = (p * t).sum(dim=(1, 2))
    denom = p.sum(dim=(1, 2)) + t.sum(dim=(1, 2))
    return (1 - (2 * inter + eps) / (denom + eps)).mean()


def soft_dice_loss_multiclass(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255,
                              eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over classes present in the batch; void pixels excluded."""
    n, c = logits.shape[:2]
    valid = (target != ignore_index)
    p = torch.softmax(logits.float(), dim=1) * valid[:, None]
    onehot = F.one_hot(torch.where(valid, target, 0), c).permute(0, 3, 1, 2).float() * valid[:, None]
    inter = (p * onehot).sum(dim=(0, 2, 3))
    denom = p.sum(dim=(0, 2, 3)) + onehot.sum(dim=(0, 2, 3))
    present = onehot.sum(dim=(0, 2, 3)) > 0
    dice = (2 * inter + eps) / (denom + eps)
    return 1 - dice[present].mean() if present.any() else logits.sum() * 0


def tversky_presence_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.3, beta: float = 0.7,
                          gamma: float = 0.75, eps: float = 1.0) -> torch.Tensor:
    """Focal Tversky per image plus a presence term: punishes a missed polyp more than a loose one.

    Tversky weighs false negatives by ``beta`` > false positives by ``alpha``; the focal exponent
    ``gamma`` makes images the model nearly misses count most. The presence term is a BCE on the
    image's highest probability against "this image holds a lesion", so predicting nothing at all
    on a positive image is penalised even when the lesion is tiny."""
    p = torch.sigmoid(logits.float())[:, 0]
    t = target.float()
    tp = (p * t).sum(dim=(1, 2))
    fn = ((1 - p) * t).sum(dim=(1, 2))
    fp = (p * (1 - t)).sum(dim=(1, 2))
    tversky = (tp + eps) / (tp + alpha * fp + beta * fn + eps)
    focal = (1 - tversky).clamp_min(0) ** gamma
    peak = logits.float()[:, 0].flatten(1).amax(dim=1)
    present = (t.flatten(1).amax(dim=1) > 0).float()
    return focal.mean() + 0.2 * F.binary_cross_entropy_with_logits(peak, present)


LOSSES = ("bce-dice", "bce-tversky")


class SegmentationLoss(torch.nn.Module):
    """Binary (one logit): BCE + Dice (``bce-dice``) or BCE + focal Tversky with a presence term
    (``bce-tversky``, see ``tversky_presence_loss``). Multiclass: CE + ``dice_weight`` x Dice."""

    def __init__(self, num_outputs: int, ignore_index: int = 255, dice_weight: float = 1.0,
                 kind: str = "bce-dice"):
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"Unknown loss {kind!r}; choose one of {', '.join(LOSSES)}.")
        self.binary = num_outputs == 1
        self.ignore_index = ignore_index
        self.dice_weight = dice_weight
        self.kind = kind

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.binary:
            bce = F.binary_cross_entropy_with_logits(logits[:, 0], target.float())
            if self.kind == "bce-tversky":
                return bce + self.dice_weight * tversky_presence_loss(logits, target)
            return bce + self.dice_weight * soft_dice_loss_binary(logits, target)
        ce = F.cross_entropy(logits, target.long(), ignore_index=self.ignore_index)
        if self.dice_weight:
            return ce + self.dice_weight * soft_dice_loss_multiclass(logits, target, self.ignore_index)
        return ce
