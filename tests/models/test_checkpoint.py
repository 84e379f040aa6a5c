"""The checkpoint contract: round trip, reference state_dicts, safety, clear mismatches."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from attnseg.errors import CheckpointError, InputFileError
from attnseg.metadata import Normalization
from attnseg.models import create_model, list_models, load_checkpoint, save_checkpoint


def _tiny(name):
    if name.startswith("HybridSN"):
        return create_model(name, bands=16, patch_size=11, num_classes=5)
    return create_model(name, base_width=4)


def _input(model):
    if model.arch.startswith("HybridSN"):
        return torch.randn(2, 1, 16, 11, 11)
    return torch.randn(1, 3, 32, 32)


@pytest.mark.parametrize("name", list_models())
def test_round_trip_keeps_weights_outputs_and_metadata(name, tmp_path):
    torch.manual_seed(0)
    model = _tiny(name).eval()
    norm = Normalization(mean=(0.5, 0.4, 0.3), std=(0.2, 0.2, 0.2))
    path = save_checkpoint(tmp_path / "m.pt", model, classes=["polyp"], input_size=(32, 32),
                           normalization=norm, threshold=0.4, metrics={"dice": 0.9})
    loaded, info = load_checkpoint(path)
    x = _input(model)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert info.arch == name and info.classes == ["polyp"] and info.input_size == (32, 32)
    assert info.normalization == norm and info.threshold == 0.4 and info.metrics == {"dice": 0.9}
    assert info.trained_with["torch"] == str(torch.__version__)
    assert len(info.sha256) == 64
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("name", ["U_Net", "AttU_Net", "R2U_Net", "R2AttU_Net", "SE_UNet"])
def test_bare_reference_state_dict_loads_with_arch_and_infers_width(name, tmp_path):
    kw = {"n_classes": 2} if name == "SE_UNet" else {"output_ch": 2}
    ref = create_model(name, base_width=8, **kw).eval()
    path = tmp_path / f"{name}-150-0.0002-70-0.4.pkl"
    torch.save(ref.state_dict(), path)  # what the reference training script writes
    t = {"t": 2} if name.startswith("R2") else {}  # the one argument the weights do not record
    model, info = load_checkpoint(path, arch=name, **t)
    assert info.source == "reference-state-dict"
    assert info.arch_kwargs["base_width"] == 8
    assert info.normalization.mean == (0.5, 0.5, 0.5)  # the reference's Normalize((0.5,)*3, (0.5,)*3)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ref(x), model(x))


def test_dataparallel_prefix_is_tolerated(tmp_path):
    ref = create_model("AttU_Net", base_width=4)
    torch.save({f"module.{k}": v for k, v in ref.state_dict().items()}, tmp_path / "dp.pth")
    model, _ = load_checkpoint(tmp_path / "dp.pth", arch="AttU_Net")
    assert torch.equal(model.Conv_1x1.weight, ref.Conv_1x1.weight)


def test_r2_t_comes_from_the_caller(tmp_path):
    torch.save(create_model("R2U_Net", base_width=4, t=3).state_dict(), tmp_path / "r2.pth")
    model, info = load_checkpoint(tmp_path / "r2.pth", arch="R2U_Net", t=3)
    assert info.arch_kwargs["t"] == 3 and model.RRCNN1.RCNN[0].t == 3


def test_bare_state_dict_without_arch_names_the_likely_architecture(tmp_path):
    torch.save(create_model("AttU_Net", base_width=4).state_dict(), tmp_path / "sd.pth")
    with pytest.raises(CheckpointError, match=r"bare state_dict.*--arch.*look like AttU_Net"):
        load_checkpoint(tmp_path / "sd.pth")


def test_wrong_architecture_gives_short_diff_and_suggestion(tmp_path):
    torch.save(create_model("AttU_Net", base_width=4).state_dict(), tmp_path / "sd.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "sd.pth", arch="U_Net")
    msg = str(err.value)
    assert "unexpected" in msg and "Att5." in msg and "fit AttU_Net(img_ch=3, base_width=4, output_ch=1)" in msg
    assert len(msg) < 800  # a short message, not a 200-line listing


def test_wrong_width_is_reported_with_the_width_that_fits(tmp_path):
    torch.save(create_model("U_Net", base_width=8).state_dict(), tmp_path / "sd.pth")
    with pytest.raises(CheckpointError, match=r"wrong shape.*base_width=8"):
        load_checkpoint(tmp_path / "sd.pth", arch="U_Net", base_width=4)


def test_missing_truncated_and_garbage_files(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    good = save_checkpoint(tmp_path / "good.pt", create_model("U_Net", base_width=4))
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "trunc.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "text.pt")
    (tmp_path / "page.pt").write_text("<html><body>404 Not Found</body></html>")  # a failed download
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "page.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pt")


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(MARKER),))


MARKER = ""


def test_malicious_pickle_does_not_execute(tmp_path):
    global MARKER
    MARKER = str(tmp_path / "pwned")
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": _Exploit(), "arch": "U_Net"}, f)
    torch.save({"payload": _Exploit()}, tmp_path / "evil_zip.pt")
    with pytest.raises(CheckpointError, match="plain pickle that safe loading refuses"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="would have to be executed"):
        load_checkpoint(tmp_path / "evil_zip.pt")
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- checkpoints as users have them


def _attunet():
    torch.manual_seed(0)
    return create_model("AttU_Net", base_width=4).eval()


def _same_outputs(ref, model) -> None:
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ref(x), model(x))


def test_state_dict_under_state_dict_key(tmp_path):
    ref = _attunet()
    torch.save({"state_dict": ref.state_dict(), "epoch": 12}, tmp_path / "c.pth")
    model, info = load_checkpoint(tmp_path / "c.pth", arch="AttU_Net")
    assert info.extra["state_dict_key"] == "state_dict"
    _same_outputs(ref, model)


def test_model_and_optimizer_checkpoint(tmp_path):
    ref = _attunet()
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    ref(torch.randn(1, 3, 32, 32)).mean().backward()
    opt.step()
    ref.eval()
    torch.save({"model": ref.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, tmp_path / "c.pth")
    model, info = load_checkpoint(tmp_path / "c.pth", arch="AttU_Net")
    assert info.extra["state_dict_key"] == "model"
    _same_outputs(ref, model)


def test_model_state_dict_key(tmp_path):
    ref = _attunet()
    torch.save({"epoch": 5, "model_state_dict": ref.state_dict(), "loss": 0.12}, tmp_path / "c.pt")
    model, _ = load_checkpoint(tmp_path / "c.pt", arch="AttU_Net")
    _same_outputs(ref, model)


@pytest.mark.parametrize("attr", ["model", "net"])
def test_pytorch_lightning_checkpoint(tmp_path, attr):
    """What Lightning's Trainer writes for a LightningModule holding the network as ``self.<attr>``
    (and a loss with a buffer, which is not part of the network)."""
    ref = _attunet()
    state = {f"{attr}.{k}": v for k, v in ref.state_dict().items()}
    state["criterion.pos_weight"] = torch.tensor([2.0])
    ckpt = {
        "epoch": 9, "global_step": 900, "pytorch-lightning_version": "2.4.0", "state_dict": state,
        "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 9}}}},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_dice'}": {"best_model_score": torch.tensor(0.81)}},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}],
        "lr_schedulers": [], "hparams_name": "kwargs", "hyper_parameters": {"lr": 1e-3, "base_width": 4},
    }
    torch.save(ckpt, tmp_path / "epoch=9-step=900.ckpt")
    model, info = load_checkpoint(tmp_path / "epoch=9-step=900.ckpt", arch="AttU_Net")
    assert info.extra["dropped_keys"] == ["criterion.pos_weight"]
    assert info.arch_kwargs["base_width"] == 4
    _same_outputs(ref, model)


def test_tensors_saved_on_cuda_load_on_cpu(tmp_path, monkeypatch):
    """A checkpoint written on a GPU: every storage is tagged 'cuda:0' in data.pkl (simulated by
    tagging CPU storages so, since this machine has no GPU); it loads, mapped to the CPU."""
    import zipfile

    import torch.serialization as ser

    ref = _attunet()
    path = tmp_path / "gpu.pth"
    with monkeypatch.context() as m:
        m.setattr(ser, "location_tag", lambda storage: "cuda:0")
        torch.save({"state_dict": ref.state_dict()}, path)
    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        data = z.read(pkl)
    assert b"cuda:0" in data and b"cpu" not in data
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(path, weights_only=True)  # as saved, it needs a GPU
    model, _ = load_checkpoint(path, arch="AttU_Net")
    assert model.Conv_1x1.weight.device.type == "cpu"
    _same_outputs(ref, model)


def test_r2_state_dict_without_t_is_an_error_that_explains(tmp_path):
    torch.save(create_model("R2AttU_Net", base_width=4, t=3).state_dict(), tmp_path / "r2.pth")
    with pytest.raises(CheckpointError, match=r"needs t.*t=3 \(main\.py.*network\.py defaults to t=2"):
        load_checkpoint(tmp_path / "r2.pth", arch="R2AttU_Net")
    _, info = load_checkpoint(tmp_path / "r2.pth", arch="R2AttU_Net", t=3)
    assert info.arch_kwargs["t"] == 3


def test_r2_checkpoint_contract_records_t(tmp_path):
    path = save_checkpoint(tmp_path / "r2.pt", create_model("R2U_Net", base_width=4, t=3))
    assert torch.load(path, weights_only=True)["arch_kwargs"]["t"] == 3
    model, info = load_checkpoint(path)
    assert info.arch_kwargs["t"] == 3 and model.RRCNN1.RCNN[0].t == 3


def test_no_state_dict_anywhere_names_the_entries(tmp_path):
    torch.save({"epoch": 3, "config": {"lr": 0.1}}, tmp_path / "c.pth")
    with pytest.raises(CheckpointError, match=r"none of its entries \(config, epoch\)"):
        load_checkpoint(tmp_path / "c.pth", arch="AttU_Net")
