"""Each architecture declares its capabilities; ``create_model`` takes the common
``in_channels`` / ``num_classes`` and maps them to the class's own argument names."""

from __future__ import annotations

import inspect

import pytest
import torch

from attnseg.errors import ModelConfigError
from attnseg.models import create_model, get_model_class, list_models, model_capabilities


def test_every_architecture_declares_what_it_supports():
    for name in list_models():
        caps = model_capabilities(name)
        takes_width = "base_width" in inspect.signature(get_model_class(name).__init__).parameters
        model = create_model(name, **({"base_width": 4} if takes_width else {}))
        assert caps.task == model.task and caps.input_divisor == model.input_divisor, name
        assert caps.channels_arg in model.arch_kwargs and caps.classes_arg in model.arch_kwargs, name
    assert model_capabilities("HybridSN_SE").volumetric and model_capabilities("HybridSN").input_divisor == 1
    assert not model_capabilities("AttU_Net").volumetric and model_capabilities("SE_UNet").input_divisor == 16


@pytest.mark.parametrize("name", ["U_Net", "AttU_Net", "R2U_Net", "SE_UNet"])
def test_common_channel_and_class_arguments(name):
    model = create_model(name, in_channels=1, num_classes=3, base_width=4)
    assert model.in_channels == 1 and model.num_outputs == 3
    assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_hybridsn_maps_them_too_and_contradictions_are_refused():
    model = create_model("HybridSN", in_channels=20, num_classes=5, patch_size=11)
    assert model.arch_kwargs["bands"] == 20 and model.arch_kwargs["num_classes"] == 5
    with pytest.raises(ModelConfigError, match="in_channels=1 contradicts img_ch=3"):
        create_model("AttU_Net", in_channels=1, img_ch=3)
