"""Exponential moving average of the weights (``--ema DECAY``).

A small model trained on 800 images moves a lot from step to step; the average of the last
~1/(1-decay) steps generalises better to images unlike the training set. The average is what is
validated and written to best.pt; the raw weights keep training and are saved for ``--resume``.
"""

from __future__ import annotations

import copy

import torch


class WeightAverage:
    """An EMA copy of ``model`` (parameters and buffers), updated after every optimiser step."""

    def __init__(self, model: torch.nn.Module, decay: float, state: dict | None = None):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0
        if state:
            self.module.load_state_dict(state["weights"])
            self.updates = int(state.get("updates", 0))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        # warm-up (as in timm / YOLO): early averages follow the weights closely
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        live = model.state_dict()
        for name, avg in self.module.state_dict().items():
            value = live[name].detach()
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(value.to(avg.dtype), alpha=1 - d)
            else:
                avg.copy_(value)

    def state(self) -> dict:
        return {"weights": {k: v.detach().clone() for k, v in self.module.state_dict().items()},
                "updates": self.updates}
