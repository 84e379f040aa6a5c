"""U-Net, Attention U-Net, R2U-Net and Attention R2U-Net.

One implementation for the four reference architectures (LeeJunHyun/Image_Segmentation):
they differ only in the encoder/decoder block (double conv or recurrent residual) and in
whether attention gates filter the skip connections. Attribute names reproduce the
reference state_dict keys; ``base_width`` (64 in the reference) scales every layer.
"""

from __future__ import annotations

import torch
from torch import nn

from attnseg.models.base import SegmentationModel
from attnseg.models.blocks import Attention_block, RRCNN_block, conv_block, up_conv
from attnseg.models.registry import register_model

LEVELS = 5  # four poolings: inputs must be divisible by 16


class _UNetFamily(SegmentationModel):
    recurrent = False
    has_attention_gates = False

    def __init__(self, img_ch: int = 3, output_ch: int = 1, base_width: int = 64, **extra):
        super().__init__(img_ch=img_ch, output_ch=output_ch, base_width=base_width, **extra)
        if base_width < 2 or img_ch < 1 or output_ch < 1:
            raise ValueError("img_ch, output_ch must be >= 1 and base_width >= 2")
        widths = [base_width * 2**i for i in range(LEVELS)]
        t = extra.get("t", 2)
        enc = "RRCNN" if self.recurrent else "Conv"
        dec = "Up_RRCNN" if self.recurrent else "Up_conv"

        def block(ch_in: int, ch_out: int) -> nn.Module:
            return RRCNN_block(ch_in, ch_out, t=t) if self.recurrent else conv_block(ch_in, ch_out)

        self.Maxpool = nn.MaxPool2d(kernel_size=2, stride=2)
        if self.recurrent:
            self.Upsample = nn.Upsample(scale_factor=2)  # present (unused) in the reference
        self._enc = [f"{enc}{i + 1}" for i in range(LEVELS)]
        chans = [img_ch, *widths]
        for i, name in enumerate(self._enc):
            setattr(self, name, block(chans[i], chans[i + 1]))
        self._dec = []
        for level in range(LEVELS, 1, -1):  # 5, 4, 3, 2
            hi, lo = widths[level - 1], widths[level - 2]
            setattr(self, f"Up{level}", up_conv(hi, lo))
            if self.has_attention_gates:
                setattr(self, f"Att{level}", Attention_block(F_g=lo, F_l=lo, F_int=lo // 2))
            setattr(self, f"{dec}{level}", block(hi, lo))
            self._dec.append(level)
        self._dec_name = dec
        self.Conv_1x1 = nn.Conv2d(widths[0], output_ch, kernel_size=1, stride=1, padding=0)

    def forward(self, x: torch.Tensor):
        self.check_input(x)
        skips = []
        for i, name in enumerate(self._enc):
            if i:
                x = self.Maxpool(x)
            x = getattr(self, name)(x)
            skips.append(x)
        d = skips.pop()
        maps = []
        for level in self._dec:
            d = getattr(self, f"Up{level}")(d)
            skip = skips.pop()
            if self.has_attention_gates:
                psi = getattr(self, f"Att{level}").coefficients(g=d, x=skip)
                skip = skip * psi
                maps.append(psi)
            d = getattr(self, f"{self._dec_name}{level}")(torch.cat((skip, d), dim=1))
        logits = self.Conv_1x1(d)
        if self.return_attention and maps:
            return (logits, *maps)
        return logits

    @property
    def attention_names(self) -> list[str]:
        """Names of the attention gates, in the order ``forward`` returns their maps."""
        return [f"Att{level}" for level in self._dec] if self.has_attention_gates else []


@register_model
class U_Net(_UNetFamily):  # noqa: N801
    """U-Net (Ronneberger et al. 2015) with the reference layer names."""

    def __init__(self, img_ch: int = 3, output_ch: int = 1, base_width: int = 64):
        super().__init__(img_ch=img_ch, output_ch=output_ch, base_width=base_width)


@register_model
class AttU_Net(_UNetFamily):  # noqa: N801
    """Attention U-Net (Oktay et al. 2018): attention gates on every skip connection."""

    has_attention_gates = True

    def __init__(self, img_ch: int = 3, output_ch: int = 1, base_width: int = 64):
        super().__init__(img_ch=img_ch, output_ch=output_ch, base_width=base_width)


@register_model
class R2U_Net(_UNetFamily):  # noqa: N801
    """R2U-Net (Alom et al. 2018): recurrent residual blocks, ``t`` recurrences."""

    recurrent = True

    def __init__(self, img_ch: int = 3, output_ch: int = 1, t: int = 2, base_width: int = 64):
        super().__init__(img_ch=img_ch, output_ch=output_ch, base_width=base_width, t=t)


@register_model
class R2AttU_Net(_UNetFamily):  # noqa: N801
    """Attention R2U-Net: recurrent residual blocks and attention gates."""

    recurrent = True
    has_attention_gates = True

    def __init__(self, img_ch: int = 3, output_ch: int = 1, t: int = 2, base_width: int = 64):
        super().__init__(img_ch=img_ch, output_ch=output_ch, base_width=base_width, t=t)
