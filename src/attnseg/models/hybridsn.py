"""HybridSN (Roy et al. 2019) and HybridSN with SE (seed 004) for hyperspectral pixels.

Input: (N, 1, bands, patch, patch) cubes around each pixel; output: class logits (N, classes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnseg.errors import ModelConfigError
from attnseg.models.base import is_exporting
from attnseg.models.registry import ModelCapabilities, register_model


class _HybridSNBase(nn.Module):
    capabilities = ModelCapabilities(task="pixel_classification", input_divisor=1, default_size=(25, 25),
                                     channels_arg="bands", classes_arg="num_classes")
    task = capabilities.task
    input_divisor = capabilities.input_divisor
    use_se = False

    def __init__(self, bands: int = 30, patch_size: int = 25, num_classes: int = 16, rate: int = 16):
        super().__init__()
        if bands < 13 or patch_size < 9:
            raise ValueError("HybridSN needs bands >= 13 and patch_size >= 9")
        self.arch_kwargs = dict(bands=bands, patch_size=patch_size, num_classes=num_classes)
        if self.use_se:
            self.arch_kwargs["rate"] = rate
        self.conv1 = nn.Conv3d(1, 8, kernel_size=(7, 3, 3))
        self.conv2 = nn.Conv3d(8, 16, kernel_size=(5, 3, 3))
        self.conv3 = nn.Conv3d(16, 32, kernel_size=(3, 3, 3))
        depth, side = bands - 12, patch_size - 6
        self.conv4 = nn.Conv2d(32 * depth, 64, kernel_size=3)
        if self.use_se:
            self.fc_41 = nn.Conv2d(64, max(1, 64 // rate), kernel_size=1)
            self.fc_42 = nn.Conv2d(max(1, 64 // rate), 64, kernel_size=1)
        self.fc1 = nn.Linear(64 * (side - 2) ** 2, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, num_classes)
        self.dropout = nn.Dropout(0.4)

    @property
    def arch(self) -> str:
        return type(self).__name__

    @property
    def in_channels(self) -> int:
        return int(self.arch_kwargs["bands"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not is_exporting():
            b, p = self.arch_kwargs["bands"], self.arch_kwargs["patch_size"]
            if x.dim() != 5 or tuple(x.shape[1:]) != (1, b, p, p):
                raise ModelConfigError(
                    f"{self.arch} expects (N, 1, {b}, {p}, {p}) patches, got {tuple(x.shape)}."
                )
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = x.flatten(1, 2)
        x = F.relu(self.conv4(x))
        if self.use_se:
            w = x.mean(dim=(2, 3), keepdim=True)
            w = torch.sigmoid(self.fc_42(F.relu(self.fc_41(w))))
            x = x * w
        x = x.flatten(1)
        x = self.dropout(F.relu(self.fc1(x)))
        x = self.dropout(F.relu(self.fc2(x)))
        return self.fc3(x)


@register_model
class HybridSN(_HybridSNBase):
    """3D convs 8/16/32, a 2D conv to 64, FC 256-128-classes."""


@register_model
class HybridSN_SE(_HybridSNBase):  # noqa: N801
    """HybridSN with squeeze-and-excitation on the 64 2D-conv channels (rate 16)."""

    use_se = True
