"""The shared model tester: every registered model at a tiny width."""

from __future__ import annotations

import pytest
import torch

from attnseg.errors import ModelConfigError
from attnseg.models import create_model, list_models, nearest_valid_sizes

SEG_MODELS = [m for m in list_models() if not m.startswith("HybridSN")]
REFERENCE_PARAMS = {  # reference implementation, img_ch=3, output_ch=1, width 64, t=2
    "U_Net": 34_527_041,
    "AttU_Net": 34_878_573,
    "R2U_Net": 39_091_393,
    "R2AttU_Net": 39_442_925,
}


def tiny(name: str, **kw):
    if name.startswith("HybridSN"):
        return create_model(name, bands=16, patch_size=11, num_classes=5, **kw)
    return create_model(name, base_width=4, **kw)


def test_registry_lists_every_architecture():
    assert set(list_models()) == {
        "U_Net", "AttU_Net", "R2U_Net", "R2AttU_Net", "SE_UNet", "HybridSN", "HybridSN_SE"
    }


def test_unknown_model_suggests_close_names():
    with pytest.raises(ModelConfigError, match="Did you mean AttU_Net"):
        create_model("AttUNet")


def test_unknown_argument_lists_accepted_ones():
    with pytest.raises(ModelConfigError, match="does not take widht"):
        create_model("U_Net", widht=3)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_parameter_counts_match_reference_at_width_64(name):
    with torch.device("meta"):  # no memory, no forward pass
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == REFERENCE_PARAMS[name]


@pytest.mark.parametrize("name", SEG_MODELS)
@pytest.mark.parametrize("out_ch", [1, 3])
def test_forward_shape(name, out_ch):
    kw = {"output_ch": out_ch} if "n_classes" not in create_model(name, base_width=2).arch_kwargs else {"n_classes": out_ch}
    model = tiny(name, **kw).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, 64, 48))
    assert y.shape == (2, out_ch, 64, 48)


@pytest.mark.parametrize("name", SEG_MODELS)
def test_odd_size_names_nearest_valid_sizes(name):
    model = tiny(name).eval()
    with pytest.raises(ModelConfigError, match=r"divisible by 16.*Nearest valid sizes: 64/80 x 48"):
        model(torch.randn(1, 3, 70, 48))


@pytest.mark.parametrize("name", SEG_MODELS)
def test_odd_size_check_is_skipped_while_tracing(name):
    model = tiny(name).eval()
    traced = torch.jit.trace(model, torch.randn(1, 3, 64, 64), check_trace=False)
    assert traced(torch.randn(1, 3, 64, 64)).shape[-2:] == (64, 64)


def test_wrong_channel_count_is_reported():
    with pytest.raises(ModelConfigError, match="3 input channels, got 1"):
        tiny("AttU_Net")(torch.randn(1, 1, 64, 64))


def test_nearest_valid_sizes():
    assert nearest_valid_sizes(70, 16) == (64, 80)
    assert nearest_valid_sizes(64, 16) == (64,)
    assert nearest_valid_sizes(5, 16) == (16,)


@pytest.mark.parametrize("name", ["AttU_Net", "R2AttU_Net"])
def test_attention_maps_are_sigmoid_maps_per_gate(name):
    model = tiny(name).eval()
    model.return_attention = True
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits, *maps = model(x)
    assert model.attention_names == ["Att5", "Att4", "Att3", "Att2"]
    assert [m.shape[-1] for m in maps] == [8, 16, 32, 64]
    assert all(m.shape[1] == 1 and 0 <= float(m.min()) and float(m.max()) <= 1 for m in maps)
    model.return_attention = False
    with torch.no_grad():
        plain = model(x)
    assert isinstance(plain, torch.Tensor) and torch.allclose(plain, logits)


def test_reference_key_names():
    keys = set(tiny("AttU_Net").state_dict())
    for k in ("Conv1.conv.0.weight", "Up5.up.1.weight", "Att5.W_g.0.weight", "Att5.psi.1.running_var",
              "Up_conv5.conv.3.weight", "Conv_1x1.weight"):
        assert k in keys
    r2 = set(tiny("R2AttU_Net").state_dict())
    for k in ("RRCNN1.RCNN.0.conv.0.weight", "RRCNN1.Conv_1x1.weight", "Up_RRCNN5.RCNN.1.conv.1.running_mean",
              "Att2.W_x.0.weight"):
        assert k in r2
    se = set(tiny("SE_UNet").state_dict())
    assert {"inc.double_conv.6.fc.0.weight", "down4.1.double_conv.0.weight", "up1.0.weight", "outc.weight"} <= se


def test_hybridsn_shapes_and_se():
    x = torch.randn(3, 1, 16, 11, 11)
    for name in ("HybridSN", "HybridSN_SE"):
        model = tiny(name).eval()
        assert model(x).shape == (3, 5)
    assert "fc_41.weight" in tiny("HybridSN_SE").state_dict()
    assert "fc_41.weight" not in tiny("HybridSN").state_dict()
    with pytest.raises(ModelConfigError, match=r"expects \(N, 1, 16, 11, 11\)"):
        tiny("HybridSN")(torch.randn(1, 1, 16, 9, 9))


def test_hybridsn_default_matches_seed_sizes():
    model = create_model("HybridSN_SE")  # 30 bands, 25x25 patches, 16 classes
    assert model.fc1.in_features == 64 * 17 * 17 == 18496
    assert model.conv4.in_channels == 32 * 18
    assert model.fc_41.out_channels == 4  # 64 // rate 16
