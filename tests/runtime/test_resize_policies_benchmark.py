"""benchmarks/resize_policies.py runs on real Kvasir-SEG test images and reports sane fields."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from attnseg.data import apply_split, load_pair, open_dataset, read_split
from tests.conftest import load_script

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/resize_policies.py")


@pytest.fixture(scope="module")
def test_pair(shared_data):
    info = open_dataset(f"kvasir:{shared_data / 'kvasir-seg'}")
    sample = apply_split(info.samples, read_split(REPO / "splits" / "kvasir-seg.json"), "test")[0]
    return load_pair(sample, "binary")


def test_proxies_keep_masks_aligned_and_are_reproducible(bench, test_pair):
    image, mask = test_pair
    for name, size in (("288x384", (288, 384)), ("384x288", (384, 288))):
        img, gt = bench.PROXIES[name](image, mask, np.random.default_rng(0))
        assert img.shape == (*size, 3) and gt.shape == size and set(np.unique(gt)) == set(np.unique(mask))
        assert abs(gt.mean() - mask.mean()) < 0.02  # the same polyp, re-rendered
    for name in ("colour", "blur", "jpeg30", "lowres"):
        a, gt = bench.PROXIES[name](image, mask, np.random.default_rng([0, 1]))
        b, _ = bench.PROXIES[name](image, mask, np.random.default_rng([0, 1]))
        assert a.shape == image.shape and gt is mask and (a == b).all()
        assert np.abs(a.astype(int) - image).mean() > 0.5, name  # the proxy changed the pixels


def test_endoscope_proxies_change_pixels_and_keep_masks_honest(bench, test_pair):
    """The endoscope proxies are deterministic, change the picture, and only the geometric ones
    (frame, lens) change the mask: the frame blanks the polyp under its black, the lens moves it."""
    image, mask = test_pair
    for name in ("circle_frame", "overlay_text", "interlaced", "overexposed", "underexposed", "wide_lens"):
        a, gt = bench.PROXIES[name](image, mask, np.random.default_rng(0))
        b, gt2 = bench.PROXIES[name](image, mask, np.random.default_rng(7))
        assert a.shape == image.shape and gt.shape == mask.shape and (a == b).all() and (gt == gt2).all()
        assert np.abs(a.astype(int) - image).mean() > 0.5, name
        if name in ("overlay_text", "interlaced", "overexposed", "underexposed"):
            assert gt is mask, name
        else:
            assert set(np.unique(gt)) <= set(np.unique(mask)) and gt.sum() <= mask.sum() * 1.01, name
    framed, gt = bench.PROXIES["circle_frame"](image, mask, None)
    h, w = mask.shape
    assert framed[0, 0].max() == 0 and framed[h // 2, w // 2].max() > 0 and gt[0, 0] == 0


def test_two_models_side_by_side(bench, binary_ir, shared_data, tmp_path, capsys):
    out = tmp_path / "report"
    rc = bench.main([f"a={binary_ir}", f"b={binary_ir.parent}", f"c={binary_ir}#flip", "--data", f"kvasir:{shared_data / 'kvasir-seg'}",
                     "--split", str(REPO / "splits" / "kvasir-seg.json"), "--limit", "1",
                     "--proxies", "288x384", "jpeg30", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "resize_policies.json").read_text())
    assert report["images"] == 1 and list(report["models"]) == ["a", "b", "c"]
    assert [m["tta"] for m in report["models"].values()] == ["none", "none", "flip"]
    assert report["conditions"] == ["stretch", "letterbox", "tiled", "288x384", "jpeg30"]
    for model in report["models"].values():
        assert model["recorded_policy"] == "stretch"
        for c in model["conditions"].values():
            assert 0.0 <= c["mean_dice"] <= 1.0 and 0.0 <= c["near_miss_rate"] <= 1.0
            assert len(c["per_image_dice"]) == 1 and c["mean_dice"] == c["per_image_dice"][0]
            assert c["near_miss_rate"] == float(c["per_image_dice"][0] < 0.1)
            assert c["empty_rate"] in (0.0, 1.0)
    assert report["models"]["a"]["conditions"] == report["models"]["b"]["conditions"]  # same IR, same numbers
    md = (out / "resize_policies.md").read_text()
    assert "| a Dice | a near-miss | b Dice | b near-miss |" in md and "| 288x384 |" in md
    assert "CPU:" in md and "resize_policies.py" in md
