"""Tiled inference on real images: the grid, seamless blending, equality with predict() where
tiling changes nothing, and seg-infer --tile."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from attnseg.errors import InvalidOptionError, ModelConfigError
from attnseg.imaging import read_image
from attnseg.runtime import Segmenter, TiledSegmenter, TileOptions
from attnseg.runtime.tiler import blend_window, tile_grid, tile_starts
from tests.runtime.frontend_base import FrontEndContract


# ---------------------------------------------------------------------- grid and windows
@pytest.mark.parametrize("length,tile,overlap", [(622, 256, 0.25), (529, 256, 0.0), (256, 256, 0.5),
                                                 (1000, 64, 0.5), (65, 64, 0.25), (30, 64, 0.25)])
def test_tiles_cover_everything_evenly_with_at_least_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts == sorted(set(starts))
    if length <= tile:
        assert starts == [0]
        return
    assert starts[-1] + tile == length  # the last tile ends at the edge, at full size
    gaps = np.diff(starts)
    assert gaps.max() <= tile * (1 - overlap) + 1e-9 and gaps.max() - gaps.min() <= 1  # even spread
    covered = np.zeros(length, dtype=int)
    for s in starts:
        covered[s:s + tile] += 1
    assert covered.min() >= 1


def test_grid_cuts_tiles_to_small_images():
    tiles = tile_grid((40, 300), (64, 64), 0.25)
    assert {(t.h, t.w) for t in tiles} == {(40, 64)} and tiles[0].y == 0 and tiles[-1].x + 64 == 300


@pytest.mark.parametrize("blend", ["gaussian", "linear", "mean"])
def test_windows_peak_in_the_middle_and_never_vanish(blend):
    w = blend_window((64, 48), blend)
    assert w.shape == (64, 48) and w.dtype == np.float32 and w.min() > 0 and w.max() == 1.0
    np.testing.assert_allclose(w, w[::-1, ::-1], rtol=1e-6)  # symmetric
    if blend != "mean":
        assert w[0, 0] < 1e-3 and w[32, 24] > 0.9


def test_options_are_checked():
    with pytest.raises(InvalidOptionError, match="overlap"):
        TileOptions(overlap=1.0)
    with pytest.raises(InvalidOptionError, match="gaussian, linear, mean"):
        TileOptions(blend="max")
    with pytest.raises(InvalidOptionError, match="positive"):
        TileOptions(tile_size=0)
    assert TileOptions(tile_size=96).tile_size == (96, 96)


# ---------------------------------------------------------------------- where tiling changes nothing
@pytest.mark.parametrize("fixture", ["binary_ir", "multiclass_ir", "probabilities_ir", "embedded_att_ir", "mask_ir",
                                     "threshold_ir", "letterbox_ir", "named_binary_ir"])
def test_image_of_the_model_size_gives_exactly_predict(fixture, request, kvasir_images):
    seg = Segmenter(request.getfixturevalue(fixture), inference_precision="f32")
    img = cv2.resize(read_image(kvasir_images[0]), (64, 64), interpolation=cv2.INTER_AREA)
    tiled = TiledSegmenter(seg, TileOptions(overlap=0.5))
    assert len(tiled.grid(img.shape[:2])) == 1
    got, want = tiled.predict(img, return_probabilities=True), seg.predict(img, return_probabilities=True)
    np.testing.assert_array_equal(got.mask, want.mask)
    assert got.classes == want.classes and got.class_pixel_counts == want.class_pixel_counts
    if want.probabilities is None:
        assert got.probabilities is None
    else:
        np.testing.assert_array_equal(got.probabilities, want.probabilities)
    assert sorted(got.attention) == sorted(want.attention)
    for name, amap in want.attention.items():
        np.testing.assert_array_equal(got.attention[name], amap)


@pytest.mark.parametrize("blend", ["gaussian", "linear", "mean"])
def test_constant_image_blends_to_the_weighted_mean_of_identical_tiles(binary_ir, kvasir_images, blend):
    """Every tile of a constant image sees the same pixels, so each returns the same map P; the
    result at each pixel must be the convex combination of the P values the covering tiles put
    there, with weights summing to one, and exactly P where one tile alone covers a pixel."""
    seg = Segmenter(binary_ir, inference_precision="f32")
    colour = read_image(kvasir_images[0]).reshape(-1, 3).mean(axis=0).astype(np.uint8)  # a real mean colour
    img = np.broadcast_to(colour, (150, 200, 3)).copy()
    tiled = TiledSegmenter(seg, TileOptions(overlap=0.25, blend=blend))
    tiles = tiled.grid(img.shape[:2])
    assert len(tiles) == 3 * 4  # overlapping in both directions
    p = seg.predict(img[:64, :64], return_probabilities=True).probabilities[1]
    got = tiled.predict(img, return_probabilities=True)
    lo = np.full(img.shape[:2], np.inf, dtype=np.float32)
    hi = np.full(img.shape[:2], -np.inf, dtype=np.float32)
    count = np.zeros(img.shape[:2], dtype=int)
    for t in tiles:
        region = t.region
        lo[region] = np.minimum(lo[region], p)
        hi[region] = np.maximum(hi[region], p)
        count[region] += 1
    fg = got.probabilities[1]
    assert ((fg >= lo - 1e-6) & (fg <= hi + 1e-6)).all()
    np.testing.assert_allclose(got.probabilities.sum(axis=0), 1.0, atol=1e-5)
    alone = count == 1
    assert alone.any()
    np.testing.assert_allclose(fg[:64, :64][alone[:64, :64]], p[alone[:64, :64]], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(got.mask, (fg > seg.metadata.threshold).astype(np.uint8))


# ---------------------------------------------------------------------- seams on a real image
def _seam_ratios(prob: np.ndarray, tiles, axis: int) -> tuple[float, float]:
    """Largest jump across a tile border relative to its neighbourhood, and the largest such
    ratio at columns (rows) that are not tile borders: the map's own texture."""
    d = np.abs(np.diff(prob.astype(np.float64), axis=axis)).mean(axis=1 - axis)
    ratio = np.full(len(d), np.nan)
    for c in range(4, len(d) - 5):
        ratio[c] = d[c] / max(np.concatenate([d[c - 4:c - 1], d[c + 2:c + 5]]).mean(), 1e-9)
    borders = {c for t in tiles for c in ((t.x - 1, t.x + t.w - 1) if axis == 1 else (t.y - 1, t.y + t.h - 1))}
    borders = sorted(c for c in borders if 4 <= c < len(d) - 5)
    others = np.ones(len(d), dtype=bool)
    others[[c + k for c in borders for k in (-1, 0, 1)]] = False
    return float(np.nanmax(ratio[borders])), float(np.nanmax(ratio[others]))


def test_tiles_blend_without_seams_on_a_real_image(shipped_ir, kvasir_images):
    seg = Segmenter(shipped_ir, hint="throughput", inference_precision="f32")
    full = read_image(kvasir_images[0])
    h, w = full.shape[:2]
    img = full[(h - 400) // 2:(h - 400) // 2 + 400, (w - 400) // 2:(w - 400) // 2 + 400]  # 2 x 2 tiles of 256
    smooth = TiledSegmenter(seg, TileOptions(overlap=0.25, blend="gaussian"))
    hard = TiledSegmenter(seg, TileOptions(overlap=0.25, blend="mean"))
    tiles = smooth.grid(img.shape[:2])
    assert len(tiles) == 4
    p_smooth = smooth.predict(img, return_probabilities=True)
    p_hard = hard.predict(img, return_probabilities=True)
    assert 0.01 < p_smooth.foreground_fraction < 0.99  # a real polyp crosses the tile borders
    for axis in (0, 1):
        seam, texture = _seam_ratios(p_smooth.probabilities[1], tiles, axis)
        assert seam <= max(texture, 1.5), (axis, seam, texture)
        # The measure sees seams where they exist: plain averaging steps at every tile border.
        hard_seam, hard_texture = _seam_ratios(p_hard.probabilities[1], tiles, axis)
        assert hard_seam > 2 * max(hard_texture, seam), (axis, hard_seam, hard_texture)
    # Away from the tile edges the blend and the single tiles agree: tiling changes nothing there.
    centre = seg.predict(img[:256, :256], return_probabilities=True).probabilities[1]
    np.testing.assert_allclose(p_smooth.probabilities[1][40:100, 40:100], centre[40:100, 40:100], atol=0.02)


# ---------------------------------------------------------------------- models and the CLI
def test_dynamic_models_need_a_tile_size(dynamic_ir, kvasir_images):
    seg = Segmenter(dynamic_ir, inference_precision="f32")
    with pytest.raises(ModelConfigError, match="tile size"):
        TiledSegmenter(seg)
    img = read_image(kvasir_images[1])
    result = TiledSegmenter(seg, TileOptions(tile_size=(128, 128))).predict(img)
    assert result.mask.shape == img.shape[:2] and set(np.unique(result.mask)) <= {0, 1}


def test_stream_keeps_order_and_names(binary_ir, kvasir_images):
    tiled = TiledSegmenter(Segmenter(binary_ir, hint="throughput"), TileOptions(max_in_flight=2))
    items = [(p.name, read_image(p)) for p in kvasir_images[:2]]
    results = list(tiled.stream(items))
    assert [r.source for r in results] == [p.name for p in kvasir_images[:2]]
    assert [r.mask.shape for r in results] == [img.shape[:2] for _, img in items]


def test_seg_infer_tile(binary_ir, kvasir_images, tmp_path, capsys):
    from attnseg.cli.infer import main

    src = kvasir_images[2]
    out = tmp_path / "tiled"
    assert main([str(binary_ir), str(src), "-o", str(out), "--tile", "--tile-overlap", "0.5", "--json",
                 "--no-overlays", "--inference-precision", "f32"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tiling"] == {"tile_size": [64, 64], "overlap": 0.5, "blend": "gaussian"}
    assert report["hint"] == "throughput"
    mask = cv2.imread(str(out / "masks" / f"{src.stem}.png"), cv2.IMREAD_UNCHANGED)
    seg = Segmenter(binary_ir, inference_precision="f32")
    want = TiledSegmenter(seg, TileOptions(overlap=0.5)).predict(src).mask
    np.testing.assert_array_equal(mask == 255, want == 1)
    assert (want != seg.predict(src).mask).mean() > 0.01  # tiling ran, not the stretched image
    assert main([str(binary_ir), str(src), "-o", str(tmp_path / "bad"), "--tile", "--tile-overlap", "1.5"]) == 2
    assert "overlap" in capsys.readouterr().err and not (tmp_path / "bad").exists()


class TestTiledContract(FrontEndContract):
    """The shared front-end contract on ``TiledSegmenter``. The contract's reference stretches each
    whole image to the model size, so the tiles are made larger than any test image: one tile per
    image, which must then be exactly the Segmenter's answer, through the tiler's own cutting,
    streaming, blending (weights normalized per pixel) and decision."""

    def segment(self, xml, images, return_probabilities=False):
        tiled = TiledSegmenter(Segmenter(xml, hint="throughput"), TileOptions(tile_size=(4096, 4096)))
        results = list(tiled.stream(images, return_probabilities=return_probabilities))
        assert all(len(tiled.grid(r.mask.shape)) == 1 for r in results)
        return results
