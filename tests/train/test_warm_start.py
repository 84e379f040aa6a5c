"""--init-from: a U_Net's weights give an AttU_Net everything but its gates; misfits are refused."""

from __future__ import annotations

import json

import pytest
import torch

from attnseg.cli.train import main as seg_train
from attnseg.errors import CheckpointError
from attnseg.models import create_model, save_checkpoint
from attnseg.models.checkpoint import read_checkpoint_file
from attnseg.train.warm_start import initialise_from

GATES = ["Att5", "Att4", "Att3", "Att2"]


def _unet(width: int = 4, out: int = 1, seed: int = 1) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model("U_Net", img_ch=3, output_ch=out, base_width=width)
    with torch.no_grad():  # trained-looking BatchNorm statistics, so copying them is visible
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model


@pytest.fixture()
def unet_ckpt(tmp_path):
    return save_checkpoint(tmp_path / "unet.pt", _unet(), input_size=(64, 64))


def test_u_net_weights_fill_an_attention_u_net_except_its_gates(unet_ckpt):
    source = _unet().state_dict()
    model = create_model("AttU_Net", img_ch=3, output_ch=1, base_width=4)
    gates_before = {k: v.clone() for k, v in model.state_dict().items() if k.split(".")[0] in GATES}
    warm = initialise_from(model, unet_ckpt)
    state = model.state_dict()
    assert warm.to_dict()["init_fresh_modules"] == GATES and warm.shape_mismatch == []
    assert warm.copied == len(source) and warm.copied + len(warm.fresh) == len(state)
    for name, tensor in source.items():
        assert torch.equal(state[name], tensor), name
    for name, tensor in gates_before.items():  # the gates keep their fresh initialisation
        assert torch.equal(state[name], tensor), name
    # the warm model computes something: a U_Net path with gates scaling its skips
    model.eval()
    assert torch.isfinite(model(torch.rand(1, 3, 64, 64))).all()


def test_a_bare_state_dict_from_the_reference_code_works_too(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save({f"module.{k}": v for k, v in _unet().state_dict().items()}, path)
    warm = initialise_from(create_model("AttU_Net", img_ch=3, output_ch=1, base_width=4), path)
    assert warm.to_dict()["init_fresh_modules"] == GATES


def test_another_class_count_leaves_only_the_head_fresh(unet_ckpt):
    model = create_model("AttU_Net", img_ch=3, output_ch=5, base_width=4)
    warm = initialise_from(model, unet_ckpt)
    assert warm.to_dict()["init_fresh_modules"] == [*GATES, "Conv_1x1"]
    assert warm.shape_mismatch == ["Conv_1x1.weight", "Conv_1x1.bias"]


def test_another_width_or_family_is_refused(unet_ckpt):
    with pytest.raises(CheckpointError, match="another width"):
        initialise_from(create_model("AttU_Net", img_ch=3, output_ch=1, base_width=8), unet_ckpt)
    with pytest.raises(CheckpointError, match="Too few weights"):
        initialise_from(create_model("R2U_Net", img_ch=3, output_ch=1, base_width=4), unet_ckpt)


def _train(data, out, *extra):
    return seg_train(["--data", f"kvasir:{data}", "-o", str(out), "--arch", "AttU_Net", "--base-width", "4",
                      "--input-size", "64", "64", "--epochs", "1", "--batch-size", "4", "--test-count", "3",
                      "--val-fraction", "0.2", "--max-train-batches", "1", "--workers", "0", "--threads", "1",
                      "--training-precision", "fp32", "-q", *extra])


def test_seg_train_init_from_records_the_source_and_starts_a_new_run(unet_ckpt, tiny_kvasir, tmp_path):
    out = tmp_path / "warm"
    assert _train(tiny_kvasir, out, "--init-from", str(unet_ckpt)) == 0
    raw = read_checkpoint_file(out / "last.pt")
    tw = raw["trained_with"]
    assert tw["init_from"] == str(unet_ckpt) and tw["init_fresh_modules"] == GATES
    assert raw["extra"]["train_state"]["epoch"] == 1
    assert [r["epoch"] for r in json.loads((out / "history.json").read_text())] == [1]
    # one optimiser step at a small learning rate moves the copied encoder only slightly
    first = raw["state_dict"]["Conv1.conv.0.weight"]
    source = _unet().state_dict()["Conv1.conv.0.weight"]
    assert 0 < (first - source).abs().max() < 0.05
    # a resumed warm-started run keeps saying where its weights came from
    assert _train(tiny_kvasir, out, "--epochs", "2", "--resume", str(out / "last.pt")) == 0
    resumed = read_checkpoint_file(out / "last.pt")
    assert resumed["extra"]["train_state"]["epoch"] == 2
    assert resumed["trained_with"]["init_from"] == str(unet_ckpt)


def test_seg_train_init_from_errors(unet_ckpt, tiny_kvasir, tmp_path, capsys):
    out = tmp_path / "bad"
    assert _train(tiny_kvasir, out, "--init-from", str(tmp_path / "missing.pt")) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (out / "last.pt").exists()
    assert _train(tiny_kvasir, out, "--init-from", str(unet_ckpt), "--resume", str(unet_ckpt)) == 2
    err = capsys.readouterr().err
    assert "give one of them" in err and "Traceback" not in err
