"""Building blocks of the U-Net family.

Class and attribute names follow the reference implementation quoted by the seeds
(LeeJunHyun/Image_Segmentation, network.py) so that its state_dict keys
(``Conv1.conv.0.weight``, ``Up5.up.1.weight``, ``Att5.W_g.0.weight``,
``RRCNN1.RCNN.0.conv.0.weight``) load unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class conv_block(nn.Module):  # noqa: N801 - reference name, part of the checkpoint contract
    """Double conv: (3x3 conv -> BN -> ReLU) x 2."""

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(ch_in, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch_out, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class up_conv(nn.Module):  # noqa: N801
    """Nearest 2x upsample followed by 3x3 conv -> BN -> ReLU."""

    def __init__(self, ch_in: int, ch_out: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(ch_in, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class Recurrent_block(nn.Module):  # noqa: N801
    """R2U-Net recurrent conv: one shared 3x3 conv applied ``t`` + 1 times."""

    def __init__(self, ch_out: int, t: int = 2):
        super().__init__()
        self.t = t
        self.ch_out = ch_out
        self.conv = nn.Sequential(
            nn.Conv2d(ch_out, ch_out, kernel_size=3, stride=1, padding=1, bias=True),
            nn.BatchNorm2d(ch_out),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.conv(x)
        for _ in range(self.t):
            x1 = self.conv(x + x1)
        return x1


class RRCNN_block(nn.Module):  # noqa: N801
    """Recurrent residual block: 1x1 projection, two recurrent blocks, residual add."""

    def __init__(self, ch_in: int, ch_out: int, t: int = 2):
        super().__init__()
        self.RCNN = nn.Sequential(Recurrent_block(ch_out, t=t), Recurrent_block(ch_out, t=t))
        self.Conv_1x1 = nn.Conv2d(ch_in, ch_out, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv_1x1(x)
        return x + self.RCNN(x)


class Attention_block(nn.Module):  # noqa: N801
    """Additive attention gate (Oktay et al. 2018, seed 001).

    ``g`` (gating signal from the decoder) and ``x`` (skip features) are projected to
    ``F_int`` channels by 1x1 conv + BN, added, passed through ReLU, squeezed to one
    channel by 1x1 conv + BN and a sigmoid; the skip features are scaled by that map.
    """

    def __init__(self, F_g: int, F_l: int, F_int: int):  # noqa: N803 - reference names
        super().__init__()
        self.W_g = nn.Sequential(
            nn.Conv2d(F_g, F_int, kernel_size=1, stride=1, padding=0, bias=True),
            nn.BatchNorm2d(F_int),
        )
        self.W_x = nn.Sequential(
            nn.Conv2d(F_l, F_int, kernel_size=1, stride=1, padding=0, bias=True),
            nn.BatchNorm2d(F_int),
        )
        self.psi = nn.Sequential(
            nn.Conv2d(F_int, 1, kernel_size=1, stride=1, padding=0, bias=True),
            nn.BatchNorm2d(1),
            nn.Sigmoid(),
        )
        self.relu = nn.ReLU(inplace=True)

    def coefficients(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The gate's attention map (N, 1, H, W) in [0, 1]: where the model looks."""
        return self.psi(self.relu(self.W_g(g) + self.W_x(x)))

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.coefficients(g, x)


class SELayer(nn.Module):
    """Squeeze-and-excitation (seed 002): global average pool, FC-ReLU-FC-sigmoid, rescale."""

    def __init__(self, in_channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, in_channels // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(in_channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, in_channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.avg_pool(x).flatten(1)
        y = self.fc(y)
        return x * y[:, :, None, None]


class DoubleConv(nn.Module):
    """Seed 002's double conv: (3x3 conv -> BN -> ReLU) x 2, then SE."""

    def __init__(self, in_channels: int, out_channels: int, reduction: int = 16):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            SELayer(out_channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class SpatialAttention(nn.Module):
    """Spatial attention (seed 003): a 1x1 conv gives one weight per pixel, sigmoid, rescale."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.conv(x))


class ChannelAttention(nn.Module):
    """Channel attention (seed 003): average pool, FC-ReLU-FC, sigmoid, rescale channels."""

    def __init__(self, in_channels: int, reduction: int = 2):
        super().__init__()
        hidden = max(1, in_channels // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, in_channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.sigmoid(self.fc(self.avg_pool(x).flatten(1)))
        return x * w[:, :, None, None]


class CBAM(nn.Module):
    """CBAM-style block (Woo et al. 2018): channel attention from average- and max-pooled
    descriptors through a shared MLP, then spatial attention from a 7x7 conv over the
    channel-wise mean and max maps."""

    def __init__(self, in_channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        hidden = max(1, in_channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, in_channels, 1, bias=False),
        )
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(torch.mean(x, dim=(2, 3), keepdim=True))
        mx = self.mlp(torch.amax(x, dim=(2, 3), keepdim=True))
        x = x * torch.sigmoid(avg + mx)
        maps = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(maps))
