"""``average_checkpoints``: the mean of fine-tunes of one model, with the first one's contract."""

from __future__ import annotations

import pytest
import torch

from attnseg.errors import CheckpointError
from attnseg.models import create_model, load_checkpoint, save_checkpoint
from attnseg.train.soup import average_checkpoints


def _saved(path, seed, width=4, interpolation="linear"):
    torch.manual_seed(seed)
    model = create_model("AttU_Net", img_ch=3, output_ch=1, base_width=width)
    save_checkpoint(path, model, classes=["polyp"], input_size=(64, 64), threshold=0.4,
                    input_interpolation=interpolation)
    return model


def test_the_average_is_the_mean_of_every_tensor(tmp_path):
    a, b = _saved(tmp_path / "a.pt", 0), _saved(tmp_path / "b.pt", 1)
    average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "soup.pt")
    soup, info = load_checkpoint(tmp_path / "soup.pt")
    for name, value in soup.state_dict().items():
        if value.dtype.is_floating_point:
            assert torch.allclose(value, (a.state_dict()[name] + b.state_dict()[name]) / 2, atol=1e-6), name
    assert info.threshold == 0.4 and info.input_size == (64, 64) and info.input_interpolation == "linear"
    assert info.trained_with["weight_average_of"] == [str(tmp_path / "a.pt"), str(tmp_path / "b.pt")]


def test_other_architectures_and_inputs_are_refused(tmp_path):
    _saved(tmp_path / "a.pt", 0)
    _saved(tmp_path / "wide.pt", 0, width=8)
    _saved(tmp_path / "area.pt", 0, interpolation="area")
    with pytest.raises(CheckpointError, match="only one architecture can be averaged"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "wide.pt"], tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="pass input_interpolation= to record one"):
        average_checkpoints([tmp_path / "a.pt", tmp_path / "area.pt"], tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()
    average_checkpoints([tmp_path / "a.pt", tmp_path / "area.pt"], tmp_path / "x.pt", input_interpolation="area")
    assert load_checkpoint(tmp_path / "x.pt")[1].input_interpolation == "area"


def test_weights_weigh_and_bad_weights_are_refused(tmp_path):
    a, b = _saved(tmp_path / "a.pt", 0), _saved(tmp_path / "b.pt", 1)
    average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "w.pt", weights=[3, 1])
    soup, info = load_checkpoint(tmp_path / "w.pt")
    name = next(k for k, v in soup.state_dict().items() if v.dtype.is_floating_point)
    want = 0.75 * a.state_dict()[name] + 0.25 * b.state_dict()[name]
    assert torch.allclose(soup.state_dict()[name], want, atol=1e-6)
    assert info.trained_with["weight_average_weights"] == [0.75, 0.25]
    for bad in ([1], [1, -1], [0, 0], [float("nan"), 1]):
        with pytest.raises(CheckpointError, match="weights must be 2 numbers >= 0"):
            average_checkpoints([tmp_path / "a.pt", tmp_path / "b.pt"], tmp_path / "x.pt", weights=bad)
