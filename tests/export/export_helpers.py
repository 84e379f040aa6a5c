"""Tiny models for the export tests (64x64, width 4: seconds, not minutes)."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

SIZE = (64, 64)
#: Constructor arguments that make each registered architecture tiny.
TINY = {
    "HybridSN": {"bands": 15, "patch_size": 11, "num_classes": 5},
    "HybridSN_SE": {"bands": 15, "patch_size": 11, "num_classes": 5},
    "SE_UNet": {"base_width": 8},  # SE reduction 16 needs >= 16 channels somewhere
    "R2U_Net": {"base_width": 4, "t": 1},  # one recurrence: half the graph, same blocks
    "R2AttU_Net": {"base_width": 4, "t": 1},
}


def tiny_kwargs(arch: str) -> dict:
    """Tiny constructor arguments for ``arch`` (new registered models get base_width=4)."""
    from attnseg.models import get_model_class

    if arch in TINY:
        return dict(TINY[arch])
    params = inspect.signature(get_model_class(arch).__init__).parameters
    return {"base_width": 4} if "base_width" in params else {}


def centred(model):
    """Shift the last layer's bias so logits straddle the threshold: masks then have both labels.

    A freshly initialised network predicts one class almost everywhere, which would make the
    "equal mask pixels" and Dice figures trivially perfect.
    """
    torch.manual_seed(0)
    model.eval()
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None][-1]
    if getattr(model, "arch", "").startswith("HybridSN"):
        b, p = model.arch_kwargs["bands"], model.arch_kwargs["patch_size"]
        x = torch.randn(8, 1, b, p, p)
    else:
        x = torch.rand(2, model.in_channels, *SIZE) * 4 - 2
    with torch.no_grad():
        y = model(x)
        y = y[0] if isinstance(y, tuple) else y
        med = y.transpose(0, 1).reshape(y.shape[1], -1).median(dim=1).values
        last.bias -= med
    return model


def make_checkpoint(folder: Path, arch: str, **overrides) -> Path:
    from attnseg.models import create_model, save_checkpoint

    model = centred(create_model(arch, **{**tiny_kwargs(arch), **overrides}))
    path = folder / f"{arch}.pt"
    size = None if arch.startswith("HybridSN") else SIZE
    save_checkpoint(path, model, input_size=size, threshold=0.5)
    return path
