"""Attention and SE blocks behave as the seeds describe."""

from __future__ import annotations

import torch

from attnseg.models import CBAM, Attention_block, ChannelAttention, SELayer, SpatialAttention


def test_attention_gate_scales_skip_by_its_map():
    torch.manual_seed(0)
    gate = Attention_block(F_g=8, F_l=8, F_int=4).eval()
    g, x = torch.randn(2, 8, 16, 16), torch.randn(2, 8, 16, 16)
    psi = gate.coefficients(g, x)
    assert psi.shape == (2, 1, 16, 16)
    assert torch.allclose(gate(g, x), x * psi)


def test_se_layer_rescales_channels_only():
    torch.manual_seed(0)
    se = SELayer(32, reduction=16).eval()
    x = torch.rand(2, 32, 8, 8)
    y = se(x)
    ratio = y / x
    # one factor per (image, channel), in (0, 1)
    assert torch.allclose(ratio, ratio[:, :, :1, :1].expand_as(ratio), atol=1e-5)
    assert float(ratio.min()) > 0 and float(ratio.max()) < 1


def test_spatial_channel_and_cbam_keep_shape_and_bound_scale():
    x = torch.rand(2, 16, 8, 8) + 0.1
    for block in (SpatialAttention(16), ChannelAttention(16), CBAM(16, reduction=4)):
        y = block.eval()(x)
        assert y.shape == x.shape
        assert bool((y <= x + 1e-6).all()) and bool((y >= 0).all())
