"""Silent wrong answers and tracebacks turned into one clear message: checkpoints, masks,
seg-eval's choice of images, counts, calibration on test, runtime inputs, videos, outputs."""

from __future__ import annotations

import json
import logging
import shutil
import struct
import zipfile

import cv2
import numpy as np
import pytest

from attnseg.errors import AttnsegError, CheckpointError, DataError, InputFileError

from .conftest import one_clear_error, run

# ------------------------------------------------------------------------------- checkpoints


def _flip_a_weight_byte(src, dst):
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        rec = max((i for i in zf.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", data[rec.header_offset + 26: rec.header_offset + 30])
    data[rec.header_offset + 30 + name_len + extra_len + rec.file_size // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def test_empty_checkpoint_is_one_message_everywhere(tmp_path, kvasir12):
    from attnseg.models import load_checkpoint

    empty = tmp_path / "empty.pt"
    empty.touch()
    with pytest.raises(CheckpointError, match=r"empty \(0 bytes\)"):
        load_checkpoint(empty)
    one_clear_error(run("seg-export", empty, "-o", tmp_path / "o"), "empty (0 bytes)")
    one_clear_error(run("seg-eval", empty, "--data", f"kvasir:{kvasir12}", "--split", "all"), "empty (0 bytes)")
    assert not (tmp_path / "o").exists()


def test_altered_tensor_bytes_are_refused(tiny_ckpt, tmp_path):
    import torch

    from attnseg.models import load_checkpoint

    bad = _flip_a_weight_byte(tiny_ckpt, tmp_path / "bad.pt")
    # torch itself does not notice: the test would prove nothing if it did
    a, b = torch.load(tiny_ckpt, weights_only=True), torch.load(bad, weights_only=True)
    assert any(not torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    with pytest.raises(CheckpointError, match="no longer match their checksum"):
        load_checkpoint(bad)


def test_extreme_weights_give_a_non_finite_outputs_message(tmp_path):
    import torch

    from attnseg.errors import ExportError
    from attnseg.export import export
    from attnseg.models import create_model, save_checkpoint

    model = create_model("AttU_Net", base_width=4)
    with torch.no_grad():
        model.Conv1.conv[0].weight.fill_(3e38)
    ck = save_checkpoint(tmp_path / "huge.pt", model, input_size=(64, 64))
    with pytest.raises(ExportError, match="not finite"):
        export(ck, output_dir=tmp_path / "o", device="CPU")
    assert not (tmp_path / "o").exists()


# -------------------------------------------------------------------------------------- masks


@pytest.mark.parametrize("values", [(0, 7), (0, 100), (0, 1), (0, 255)])
def test_binary_png_masks_read_non_zero_as_foreground(tmp_path, values):
    from attnseg.data import read_mask

    m = np.full((8, 8), values[0], np.uint8)
    m[2:6, 2:6] = values[1]
    cv2.imwrite(str(tmp_path / "m.png"), m)
    assert read_mask(tmp_path / "m.png", "binary").sum() == 16


def test_multivalue_png_mask_keeps_every_labelled_pixel(tmp_path):
    from attnseg.data import read_mask

    m = np.arange(64, dtype=np.uint8).reshape(8, 8) % 8  # values 0..7
    cv2.imwrite(str(tmp_path / "m.png"), m)
    assert read_mask(tmp_path / "m.png", "binary").sum() == np.count_nonzero(m)
    assert read_mask(tmp_path / "m.png", "multiclass", 8).tolist() == m.tolist()


def test_jpeg_mask_of_0_and_100_is_not_all_background(tmp_path):
    from attnseg.data import read_mask

    m = np.zeros((32, 32), np.uint8)
    m[8:24, 8:24] = 100
    cv2.imwrite(str(tmp_path / "m.jpg"), m)
    got = read_mask(tmp_path / "m.jpg", "binary")
    assert abs(int(got.sum()) - 256) <= 16


def test_colour_mask_for_a_binary_task_is_refused(tmp_path):
    from attnseg.data import read_mask

    m = np.zeros((8, 8, 3), np.uint8)
    m[:4, :, 2] = 255  # red
    m[4:, :, 1] = 255  # green
    cv2.imwrite(str(tmp_path / "m.png"), m)
    with pytest.raises(DataError, match="colour image"):
        read_mask(tmp_path / "m.png", "binary")


# ------------------------------------------------------------------------------------ seg-eval


@pytest.fixture(scope="module")
def trained(kvasir12, tmp_path_factory):
    from attnseg.cli.train import main as seg_train

    out = tmp_path_factory.mktemp("evalrun") / "run"
    assert seg_train(["--data", f"kvasir:{kvasir12}", "-o", str(out), "--base-width", "4", "--input-size", "64",
                      "64", "--batch-size", "2", "--test-count", "2", "--val-fraction", "0.2", "--workers", "0",
                      "--threads", "1", "--training-precision", "fp32", "--epochs", "1", "--max-train-batches", "1",
                      "-q"]) == 0
    return out


@pytest.mark.parametrize("limit", [-1, 0])
def test_seg_eval_refuses_a_limit_below_one(trained, kvasir12, limit):
    from attnseg.train.evaluate import evaluate_checkpoint

    with pytest.raises(DataError, match="--limit must be a positive"):
        evaluate_checkpoint(trained / "best.pt", f"kvasir:{kvasir12}", limit=limit)


def test_seg_eval_refuses_an_unknown_split_name(trained, kvasir12, tmp_path):
    from attnseg.train.evaluate import evaluate_checkpoint

    with pytest.raises(DataError, match="'bogus'"):
        evaluate_checkpoint(trained / "best.pt", f"kvasir:{kvasir12}", split_name="bogus")
    lone = tmp_path / "best.pt"
    shutil.copy(trained / "best.pt", lone)  # no split file beside it; the recorded one is found anyway
    with pytest.raises(DataError, match="'bogus'"):
        evaluate_checkpoint(lone, f"kvasir:{kvasir12}", split_name="bogus")


def test_seg_eval_without_split_scores_the_runs_own_test_split(trained, kvasir12):
    from attnseg.train.evaluate import evaluate_checkpoint

    split = json.loads((trained / "split.json").read_text())
    res = evaluate_checkpoint(trained / "best.pt", f"kvasir:{kvasir12}")
    assert res.split == "test" and res.count == split["counts"]["test"] == 2
    assert evaluate_checkpoint(trained / "best.pt", f"kvasir:{kvasir12}", limit=1).count == 1


def test_seg_eval_with_no_split_anywhere_refuses_to_call_everything_test(tiny_ckpt, kvasir12):
    from attnseg.train.evaluate import evaluate_checkpoint

    with pytest.raises(DataError, match="--split all"):
        evaluate_checkpoint(tiny_ckpt, f"kvasir:{kvasir12}")
    assert evaluate_checkpoint(tiny_ckpt, f"kvasir:{kvasir12}", split_name="all").count == 12


# ------------------------------------------------------------------------------------- counts


@pytest.mark.parametrize("niter", ["-3", "0", "1"])
def test_main_job_refuses_too_few_iterations(tmp_path, niter):
    one_clear_error(run("seg-export", "-o", tmp_path / "job", "--niter", niter), "--niter must be")
    assert not (tmp_path / "job").exists()


def test_optimize_refuses_to_calibrate_on_test_unless_told(tiny_ir, kvasir12, tmp_path):
    from attnseg.optimize.calibration import find_calibration

    split = tmp_path / "split.json"
    from attnseg.data import folder_pairs, make_split, write_split

    write_split(split, make_split(folder_pairs(kvasir12), fractions={"train": 1.0}, test_count=4, val_count=2))
    with pytest.raises(DataError, match="--allow-test-calibration"):
        find_calibration(f"kvasir:{kvasir12}", split, "test")
    assert len(find_calibration(f"kvasir:{kvasir12}", split, "test", allow_test=True).images) == 4
    res = run("seg-optimize", tiny_ir, "-o", tmp_path / "q.xml", "--calibration", f"kvasir:{kvasir12}",
              "--split", f"{split}:test")
    one_clear_error(res, "test split is refused")


# -------------------------------------------------------------------------------- runtime inputs


@pytest.fixture(scope="module")
def segmenter(tiny_ir):
    from attnseg.runtime import Segmenter

    return Segmenter(tiny_ir, device="CPU")


def test_a_batch_dimension_is_named_as_such(segmenter):
    with pytest.raises(InputFileError, match="batch dimension"):
        segmenter.predict(np.zeros((1, 64, 64, 3), np.uint8))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_non_finite_float_image_is_refused(segmenter, bad):
    img = np.full((64, 64, 3), 0.5, np.float32)
    img[3, 4, 1] = bad
    with pytest.raises(InputFileError, match="NaN or infinite"):
        segmenter.predict(img)


def test_a_float_image_outside_0_1_is_refused_not_clipped(segmenter):
    with pytest.raises(InputFileError, match=r"must be in \[0, 1\]"):
        segmenter.predict(np.full((64, 64, 3), 200.0, np.float32))


def test_a_truncated_video_is_reported(tmp_path, caplog):
    from attnseg.runtime import open_source

    path = tmp_path / "clip.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    for i in range(20):
        w.write(np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    w.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    src = open_source(path)
    with caplog.at_level(logging.WARNING):
        frames = list(src)
    assert src.length == 20 and 0 < len(frames) < 20
    assert f"read {len(frames)} of the {src.length} frames" in caplog.text


def test_every_fault_here_is_an_attnseg_error():
    assert issubclass(InputFileError, AttnsegError) and issubclass(DataError, AttnsegError)


def test_a_huge_input_size_is_refused_before_allocating(tiny_ckpt, tmp_path):
    from attnseg.errors import ModelConfigError
    from attnseg.export import export

    with pytest.raises(ModelConfigError, match="pixels"):
        export(tiny_ckpt, output_dir=tmp_path / "o", input_size=(100000, 100000))
    assert not (tmp_path / "o").exists()
