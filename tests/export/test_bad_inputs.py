"""Each bad input: one clear message, exit code 2, nothing written (no model is exported here)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import torch

from attnseg.cli.export import main
from attnseg.models import create_model, save_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "attunet.pt"
    save_checkpoint(path, create_model("AttU_Net", base_width=4), input_size=(64, 64))
    return path


def run(argv, capsys) -> tuple[int, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse rejects bad choices itself (exit 2, usage on stderr)
        code = exc.code
    err = capsys.readouterr().err
    return code, err


def assert_nothing_written(folder: Path, keep: set[str] = frozenset()) -> None:
    left = {p.name for p in folder.iterdir()} - set(keep)
    assert left == set(), left


def test_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a model, just some text that was saved as .pt")
    code, err = run([bad, "-o", tmp_path / "out"], capsys)
    assert code == 2 and "not a readable PyTorch checkpoint" in err and "Traceback" not in err
    assert_nothing_written(tmp_path, {"corrupt.pt"})


def test_truncated_checkpoint(ckpt, tmp_path, capsys):
    cut = tmp_path / "cut.pt"
    data = ckpt.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    code, err = run([cut, "-o", tmp_path / "out"], capsys)
    assert code == 2 and "corrupt or truncated" in err
    assert_nothing_written(tmp_path, {"cut.pt"})


def test_wrong_architecture(ckpt, tmp_path, capsys):
    code, err = run([ckpt, "--arch", "U_Net", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "holds a AttU_Net, not a U_Net" in err
    assert_nothing_written(tmp_path)


def test_key_mismatch_of_a_bare_state_dict(tmp_path, capsys):
    sd = tmp_path / "ref.pth"
    torch.save(create_model("U_Net", base_width=4).state_dict(), sd)
    code, err = run([sd, "--arch", "U_Net", "--base-width", "8", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "do not fit U_Net" in err and "wrong shape" in err and "base_width=4" in err
    code, err = run([sd, "--arch", "AttU_Net", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "missing" in err and "The weights fit U_Net" in err
    assert_nothing_written(tmp_path, {"ref.pth"})


def test_input_size_not_a_multiple_of_16(ckpt, tmp_path, capsys):
    code, err = run([ckpt, "--input-size", "100", "64", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "divisible by 16" in err and "96/112" in err
    assert_nothing_written(tmp_path)


def test_unknown_precision(ckpt, tmp_path, capsys):
    code, err = run([ckpt, "--precision", "int3", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "invalid choice: 'int3'" in err
    from attnseg.errors import InvalidOptionError
    from attnseg.export import export

    with pytest.raises(InvalidOptionError, match="Unknown precision 'int3'; choose one of: fp32, fp16"):
        export(ckpt, output_dir=tmp_path / "out", precision="int3")
    assert_nothing_written(tmp_path)


def test_unknown_device_lists_available_ones(ckpt, tmp_path, capsys):
    import openvino as ov

    code, err = run([ckpt, "--device", "TPU", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "TPU" in err and "Available devices:" in err
    assert all(d in err for d in ov.Core().available_devices)
    code, err = run([ckpt, "--device", "HETERO:FPGA,CPU", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "FPGA" in err
    assert_nothing_written(tmp_path)


def test_existing_output_dir_needs_force(ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, err = run([ckpt, "-o", out], capsys)
    assert code == 2 and "already exists; pass --force" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert_nothing_written(tmp_path, {"out"})


def test_unwritable_output_folder(ckpt, tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    code, err = run([ckpt, "-o", blocker / "out"], capsys)
    assert code == 2 and "is a file" in err
    assert_nothing_written(tmp_path, {"file.txt"})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_output_folder(ckpt, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, err = run([ckpt, "-o", ro / "out"], capsys)
    finally:
        ro.chmod(0o700)
    assert code == 2 and "not writable" in err
    assert list(ro.iterdir()) == []


def test_attention_maps_need_attention_gates(tmp_path, capsys):
    path = tmp_path / "unet.pt"
    save_checkpoint(path, create_model("U_Net", base_width=4))
    code, err = run([path, "--attention-maps", "--input-size", "64", "64", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "has no attention gates" in err
    assert_nothing_written(tmp_path, {"unet.pt"})


def test_flags_that_do_not_apply(ckpt, tmp_path, capsys):
    code, err = run([ckpt, "--t", "3", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "--t does not apply to AttU_Net" in err
    code, err = run(["--model-factory", "no_such_module_xyz:build", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "Cannot import 'no_such_module_xyz'" in err
    assert_nothing_written(tmp_path)


def test_missing_checkpoint_and_samples(ckpt, tmp_path, capsys):
    code, err = run([tmp_path / "nope.pt", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "does not exist" in err
    code, err = run([ckpt, "--samples", tmp_path / "no_images", "-o", tmp_path / "out"], capsys)
    assert code == 2 and "not a folder of images" in err
    assert_nothing_written(tmp_path)


def test_no_checkpoint_means_the_shipped_model():
    """export() with neither a checkpoint nor model= takes attnseg.zoo's default checkpoint."""
    from attnseg.export.source import resolve_source

    if importlib.util.find_spec("attnseg.zoo") is None:
        from attnseg.errors import AttnsegError

        with pytest.raises(AttnsegError, match="No model ships with this install yet"):
            resolve_source(None)
        return
    from attnseg.zoo import default_checkpoint

    src = resolve_source(None)
    assert src.origin == f"zoo:{default_checkpoint()}" and len(src.sha256) == 64
    assert src.arch == "AttU_Net" and src.classes
