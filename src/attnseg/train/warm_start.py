"""Start a run from another checkpoint's weights (transfer), not from random ones.

The reference implementation names the encoder and decoder of U_Net, AttU_Net, R2U_Net and
R2AttU_Net alike (Conv1..Conv5, Up5.., Up_conv5.., Conv_1x1), so a trained U_Net gives an
AttU_Net everything but its attention gates. Every tensor whose name and shape match is copied;
the rest keep their fresh initialisation. Unlike ``--resume`` nothing else carries over: the
optimiser, schedule, history and epoch count start anew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from attnseg.errors import CheckpointError
from attnseg.models.checkpoint import checkpoint_weights


@dataclass(frozen=True)
class WarmStart:
    """What ``initialise_from`` copied: kept in the checkpoint's ``trained_with``."""

    source: str
    copied: int
    fresh: list[str]
    shape_mismatch: list[str]

    def to_dict(self) -> dict:
        return {"init_from": self.source, "init_copied_tensors": self.copied,
                "init_fresh_tensors": len(self.fresh), "init_fresh_modules": _module_names(self.fresh),
                "init_shape_mismatch": self.shape_mismatch}


def _module_names(keys: list[str]) -> list[str]:
    """Top-level module names of ``keys`` (``Att5.W_g.0.weight`` -> ``Att5``), in order."""
    return list(dict.fromkeys(k.split(".", 1)[0] for k in keys))


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint, read by the one reader ``seg-export`` uses as well
    (``checkpoint_weights``: contract, bare, wrapped, Lightning), loaded safely."""
    return checkpoint_weights(path)


def initialise_from(model: torch.nn.Module, path: str | Path,
                    weights: dict[str, torch.Tensor] | None = None) -> WarmStart:
    """Copy every tensor of checkpoint ``path`` whose name and shape match ``model``'s
    (``weights``: its tensors, when already read with ``read_weights``).

    Raises ``CheckpointError`` when fewer than half of the model's kernels can be copied: that is
    another family or width, and training it "warm" would silently train (mostly) from scratch. A
    different head alone (another class count) is fine: only ``Conv_1x1`` stays fresh.
    """
    source = read_weights(path) if weights is None else weights
    target = model.state_dict()
    matched, mismatch = {}, []
    for name, tensor in target.items():
        if name not in source:
            continue
        if source[name].shape != tensor.shape:
            mismatch.append(name)
            continue
        matched[name] = source[name].to(tensor.dtype)
    weights = sum(1 for v in matched.values() if v.ndim >= 2)  # conv / linear kernels
    wanted = sum(1 for v in target.values() if v.ndim >= 2)
    if 2 * weights < wanted:
        detail = f"; {len(mismatch)} names match with other shapes (another width?)" if mismatch else ""
        raise CheckpointError(
            f"Too few weights of {path} fit {type(model).__name__} "
            f"({weights} of its {wanted} kernels){detail}. "
            "Initialise from a checkpoint of the same family and width (e.g. a U_Net for an AttU_Net), "
            "or train from scratch."
        )
    model.load_state_dict(matched, strict=False)
    fresh = [k for k in target if k not in matched]
    return WarmStart(str(path), len(matched), fresh, mismatch)
