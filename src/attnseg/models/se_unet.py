"""SE U-Net: the improved U-Net of seed 002, squeeze-and-excitation after every double conv.

Attribute names (``inc``, ``down1``, ``up1``, ``double_conv_up1``, ``outc``) follow the seed so
its checkpoints load. ``base_width`` scales the widths (64 in the seed); ``factor`` (2 in the
seed) divides the bottleneck and decoder widths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from attnseg.models.base import SegmentationModel, is_exporting
from attnseg.models.blocks import DoubleConv
from attnseg.models.registry import ModelCapabilities, register_model


@register_model
class SE_UNet(SegmentationModel):  # noqa: N801
    capabilities = ModelCapabilities(channels_arg="n_channels", classes_arg="n_classes")

    def __init__(
        self,
        n_channels: int = 3,
        n_classes: int = 1,
        base_width: int = 64,
        factor: int = 2,
        reduction: int = 16,
    ):
        super().__init__(
            n_channels=n_channels,
            n_classes=n_classes,
            base_width=base_width,
            factor=factor,
            reduction=reduction,
        )
        if factor not in (1, 2):
            raise ValueError("factor must be 1 or 2")
        w = [base_width * 2**i for i in range(5)]
        r = reduction
        self.inc = DoubleConv(n_channels, w[0], r)
        self.down1 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[0], w[1], r))
        self.down2 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[1], w[2], r))
        self.down3 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[2], w[3], r))
        self.down4 = nn.Sequential(nn.MaxPool2d(2), DoubleConv(w[3], w[4] // factor, r))
        self.up1 = nn.Sequential(nn.ConvTranspose2d(w[4] // factor, w[3] // factor, 2, stride=2))
        self.double_conv_up1 = DoubleConv(w[3] // factor + w[3], w[3] // factor, r)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(w[3] // factor, w[2] // factor, 2, stride=2))
        self.double_conv_up2 = DoubleConv(w[2] // factor + w[2], w[2] // factor, r)
        self.up3 = nn.Sequential(nn.ConvTranspose2d(w[2] // factor, w[1] // factor, 2, stride=2))
        self.double_conv_up3 = DoubleConv(w[1] // factor + w[1], w[1] // factor, r)
        self.up4 = nn.Sequential(nn.ConvTranspose2d(w[1] // factor, w[0], 2, stride=2))
        self.double_conv_up4 = DoubleConv(w[0] + w[0], w[0], r)
        self.outc = nn.Conv2d(w[0], n_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.down4(x4)
        for up, conv, skip in (
            (self.up1, self.double_conv_up1, x4),
            (self.up2, self.double_conv_up2, x3),
            (self.up3, self.double_conv_up3, x2),
            (self.up4, self.double_conv_up4, x1),
        ):
            x = up(x)
            # only for odd sizes; never while exporting (the comparison would be traced as a constant)
            if not is_exporting() and skip.shape[2:] != x.shape[2:]:
                skip = F.interpolate(skip, size=x.shape[2:], mode="bilinear", align_corners=True)
            x = conv(torch.cat([x, skip], dim=1))
        return self.outc(x)
