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
    model, info = load_checkpoint(path, arch=name)
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
