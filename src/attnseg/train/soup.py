"""Weight averaging across runs ("model soup"): the mean of checkpoints fine-tuned from one start.

Two fine-tunes of the same model with different augmentations learn different robustness
(one to exposure, one to colour); averaging their weights often keeps both, at no inference
cost. Only checkpoints of the same architecture, width and tensor names can be averaged.
"""

from __future__ import annotations

from pathlib import Path

import torch

from attnseg.errors import CheckpointError


def average_checkpoints(paths: list[str | Path], output: str | Path, input_interpolation: str | None = None,
                        weights: list[float] | None = None) -> Path:
    """Write the mean of ``paths``' weights to ``output`` (a checkpoint with the first one's
    metadata: classes, size, normalisation, threshold, interpolation); returns ``output``.

    Checkpoints trained with different interpolations are refused unless ``input_interpolation``
    says which one the average records (then measure it: it was trained with neither alone).
    ``weights`` (default: equal) weigh the checkpoints; they are normalised to sum to 1."""
    from attnseg.models import load_checkpoint, save_checkpoint

    if len(paths) < 2:
        raise CheckpointError("Averaging needs at least two checkpoints.")
    models = [load_checkpoint(p) for p in paths]
    first, info = models[0]
    for (model, other), path in zip(models[1:], paths[1:]):
        if (other.arch, other.arch_kwargs) != (info.arch, info.arch_kwargs):
            raise CheckpointError(f"{path} is a {other.arch} {other.arch_kwargs}, not a {info.arch} "
                                  f"{info.arch_kwargs} like {paths[0]}: only one architecture can be averaged.")
        if other.input_size != info.input_size or (other.input_interpolation != info.input_interpolation
                                                    and input_interpolation is None):
            raise CheckpointError(f"{path} was trained on other inputs ({other.input_size}, "
                                  f"{other.input_interpolation}) than {paths[0]} ({info.input_size}, "
                                  f"{info.input_interpolation}); pass input_interpolation= to record one.")
    if weights is None:
        weights = [1.0] * len(paths)
    if len(weights) != len(paths) or any(not (w >= 0) for w in weights) or sum(weights) <= 0:
        raise CheckpointError(f"weights must be {len(paths)} numbers >= 0 with a positive sum, got {weights!r}.")
    share = torch.tensor([float(w) / sum(weights) for w in weights])
    states = [m.state_dict() for m, _ in models]
    averaged = {}
    for name, value in states[0].items():
        if value.dtype.is_floating_point:
            stacked = torch.stack([s[name].float() for s in states])
            averaged[name] = torch.tensordot(share, stacked, dims=1).to(value.dtype)
        else:
            averaged[name] = value  # counters (BatchNorm's num_batches_tracked)
    first.load_state_dict(averaged)
    return save_checkpoint(
        output, first, classes=info.classes, input_size=info.input_size, normalization=info.normalization,
        threshold=info.threshold, resize_policy=info.resize_policy,
        input_interpolation=input_interpolation or info.input_interpolation,
        trained_with={"weight_average_of": [str(p) for p in paths], "weight_average_weights": share.tolist()},
    )
