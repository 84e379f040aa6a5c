"""seg-infer on real Kvasir images, a folder, a tiny video; one-line errors."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from attnseg.cli.infer import main
from attnseg.imaging import read_image


@pytest.fixture
def folder(kvasir_images, tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    for p in kvasir_images[:3]:
        shutil.copy(p, d / p.name)
    return d


def test_folder_writes_masks_overlays_attention_and_summary(embedded_att_ir, folder, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main([str(embedded_att_ir), str(folder), "-o", str(out), "--attention-maps", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    names = sorted(p.name for p in folder.iterdir())
    assert [s["source"] for s in report["images"]] == names
    assert report["summary"]["frames"] == 3 and report["hint"] == "throughput"
    from attnseg.runtime import Segmenter

    # The precision used is recorded, and it is what the runtime picks for this model and hint.
    assert report["inference_precision"] == Segmenter(embedded_att_ir, hint="throughput").inference_precision
    assert report["precision_choice"]["source"] in ("measured", "cached", "only candidate")
    for key in ("fps", "latency_ms_median", "latency_ms_p90"):
        assert report["summary"][key] > 0
    for s in report["images"]:
        stem = s["source"].rsplit(".", 1)[0]
        mask = cv2.imread(str(out / "masks" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        img = read_image(folder / s["source"])
        assert mask.shape == img.shape[:2] and set(np.unique(mask)) <= {0, 255}
        assert s["foreground_fraction"] == pytest.approx((mask == 255).mean(), abs=1e-6)
        assert s["class_pixel_counts"]["polyp"] == int((mask == 255).sum())
        assert cv2.imread(str(out / "overlays" / f"{stem}.jpg")).shape == img.shape
        for att in ("Att2", "Att3", "Att4", "Att5"):
            assert (out / "attention" / f"{stem}_{att}.jpg").is_file()
    assert json.loads((out / "summary.json").read_text())["summary"]["frames"] == 3


def test_single_image_and_closing_summary(binary_ir, kvasir_images, tmp_path, capsys):
    out = tmp_path / "one"
    assert main([str(binary_ir), str(kvasir_images[0]), "-o", str(out), "--no-overlays",
                 "--inference-precision", "f32"]) == 0
    printed = capsys.readouterr().out
    assert "1 frames" in printed and "FPS" in printed and "p90" in printed
    assert [p.name for p in (out / "masks").iterdir()] == [kvasir_images[0].stem + ".png"]
    assert not (out / "overlays").exists()


def test_video_writes_overlay_video_and_masks(multiclass_ir, kvasir_images, tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 80))
    assert writer.isOpened()
    for p in kvasir_images[:5]:
        writer.write(cv2.resize(read_image(p), (96, 80)))
    writer.release()
    out = tmp_path / "vid"
    assert main([str(multiclass_ir), str(video), "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["frames"] == 5
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"frame_{i:06d}.png" for i in range(5)]
    mask = cv2.imread(str(out / "masks" / "frame_000000.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (80, 96) and mask.max() <= 2  # class ids for multiclass models
    cap = cv2.VideoCapture(str(out / "overlay.mp4"))
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (96, 80)
    cap.release()
    assert frames == 5


def test_errors_are_one_line_and_non_zero(binary_ir, folder, tmp_path, capsys):
    cases = [
        [str(tmp_path / "missing.xml"), str(folder)],
        [str(binary_ir), str(tmp_path / "missing_input")],
        [str(binary_ir), str(folder), "--device", "GPU.7"],
        [str(binary_ir), str(folder), "--attention-maps", "-o", str(tmp_path / "a")],
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("seg-infer: error:") and "\n" not in err, err
        assert "Traceback" not in err
    out = tmp_path / "exists"
    out.mkdir()
    assert main([str(binary_ir), str(folder), "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_corrupt_image_in_folder_stops_or_is_skipped(binary_ir, folder, tmp_path, capsys):
    (folder / "zz_broken.jpg").write_bytes(b"not an image at all" * 20)
    assert main([str(binary_ir), str(folder), "-o", str(tmp_path / "stop")]) == 2
    assert "zz_broken.jpg" in capsys.readouterr().err
    assert not (tmp_path / "stop").exists()  # nothing half-written
    assert main([str(binary_ir), str(folder), "-o", str(tmp_path / "skip"), "--skip-errors", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["frames"] == 3 and report["summary"]["skipped"] == ["zz_broken.jpg"]
