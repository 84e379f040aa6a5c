"""Indian Pines loading, PCA, patches and stratified pixel splits."""

from __future__ import annotations

import numpy as np
import pytest

from attnseg.data import (
    PatchDataset,
    classification_metrics,
    extract_patches,
    labelled_pixels,
    load_indian_pines,
    open_indian_pines,
    pca_reduce,
    split_pixels,
)
from attnseg.errors import DataError, InputFileError

COUNTS = [46, 1428, 830, 237, 483, 730, 28, 478, 20, 972, 2455, 593, 205, 1265, 386, 93]


@pytest.fixture(scope="module")
def pines(shared_data):
    return load_indian_pines(shared_data / "indian-pines")


def test_load_indian_pines(pines):
    cube, gt = pines
    assert cube.shape == (145, 145, 200) and cube.dtype == np.float32
    assert gt.shape == (145, 145) and gt.dtype == np.int64
    assert cube.min() == 955 and cube.max() == 9604
    assert np.bincount(gt.ravel()).tolist() == [10776, *COUNTS]


def test_pca_reduce_real_cube(pines):
    cube, _ = pines
    z = pca_reduce(cube, 30)
    assert z.shape == (145, 145, 30) and z.dtype == np.float32
    flat = z.reshape(-1, 30).astype(np.float64)
    cov = np.cov(flat, rowvar=False)
    assert np.allclose(np.diag(cov), 1.0, atol=1e-4)  # whitened
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 1e-4  # uncorrelated
    assert np.array_equal(z, pca_reduce(cube, 30))  # deterministic, signs fixed


def test_pca_matches_covariance_eigenvectors():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6))
    cube = (rng.normal(size=(10, 12, 6)) * [5, 3, 2, 1, 0.5, 0.1]) @ mix
    z = pca_reduce(cube, 3, whiten=False).reshape(-1, 3)
    x = cube.reshape(-1, 6) - cube.reshape(-1, 6).mean(axis=0)
    vals, vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vecs[:, ::-1][:, :3]
    ref = x @ top
    for k in range(3):  # same components up to sign
        assert np.allclose(np.abs(z[:, k]), np.abs(ref[:, k]), atol=1e-4)
    assert np.allclose(z.var(axis=0, ddof=1), vals[::-1][:3], rtol=1e-4)
    with pytest.raises(DataError, match="Cannot keep 7 principal components of 6 bands"):
        pca_reduce(cube, 7)


def test_extract_patches_hand_checked():
    cube = np.arange(4 * 5 * 2, dtype=np.float32).reshape(4, 5, 2) + 1  # no zeros inside
    gt = np.zeros((4, 5), np.int64)
    gt[0, 0] = 3
    gt[2, 3] = 1
    x, y = extract_patches(cube, gt, patch=3)
    assert x.shape == (2, 1, 2, 3, 3) and x.dtype == np.float32
    assert y.tolist() == [2, 0]
    corner = x[0, 0]  # pixel (0, 0): top row and left column are zero padding
    assert np.all(corner[:, 0, :] == 0) and np.all(corner[:, :, 0] == 0)
    assert corner[:, 1, 1].tolist() == cube[0, 0].tolist()
    assert np.array_equal(x[1, 0].transpose(1, 2, 0), cube[1:4, 2:5])
    with pytest.raises(DataError, match="positive odd number"):
        extract_patches(cube, gt, patch=4)
    with pytest.raises(DataError, match="use PatchDataset"):
        extract_patches(cube, gt, patch=3, max_bytes=10)


def test_patch_dataset_matches_extract(pines):
    cube, gt = pines
    reduced = pca_reduce(cube, 30)
    coords, labels = labelled_pixels(gt)
    pick = np.array([0, 17, 5000, len(labels) - 1])
    x, y = extract_patches(reduced, gt, patch=25, indices=pick)
    assert x.shape == (4, 1, 30, 25, 25)
    ds = PatchDataset(reduced, coords[pick], labels[pick], patch=25)
    assert len(ds) == 4
    for i in range(4):
        xi, yi = ds[i]
        assert xi.shape == (1, 30, 25, 25) and xi.dtype == np.float32
        assert np.array_equal(xi, x[i]) and yi == y[i]
    r, c = coords[pick[1]]
    assert np.array_equal(ds[1][0][0, :, 12, 12], reduced[r, c])
    with pytest.raises(DataError, match="outside the 145x145 cube"):
        PatchDataset(reduced, np.array([[145, 0]]), np.array([0]))


def test_split_pixels_stratified():
    y = np.repeat(np.arange(4), [10, 3, 1, 50])
    tr, te = split_pixels(y, 0.3, seed=1)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y)
    assert np.bincount(y[tr], minlength=4).tolist() == [3, 1, 0, 15]
    assert np.bincount(y[te], minlength=4).tolist() == [7, 2, 1, 35]
    tr2, _ = split_pixels(y, 0.3, seed=1)
    assert np.array_equal(tr, tr2)
    assert not np.array_equal(tr, split_pixels(y, 0.3, seed=2)[0])
    with pytest.raises(DataError, match="train_fraction"):
        split_pixels(y, 1.0)


def test_open_indian_pines_and_metrics(shared_data):
    data = open_indian_pines(shared_data / "indian-pines", bands=30, patch=25, train_fraction=0.1, seed=0)
    assert data.bands == 30 and len(data.classes) == 16 and data.classes[0] == "Alfalfa"
    assert len(data.train_idx) + len(data.test_idx) == 10249
    assert np.bincount(data.labels[data.train_idx]).tolist() == [round(0.1 * c) or 1 for c in COUNTS]
    test = data.dataset("test")
    xi, _ = test[0]
    assert xi.shape == (1, 30, 25, 25)
    # majority-class baseline on the test pixels, scored by the same metrics module
    y = data.labels[data.test_idx]
    m = classification_metrics(y, np.full_like(y, 10), 16)
    assert m["oa"] == pytest.approx(np.mean(y == 10))
    assert m["aa"] == pytest.approx(1 / 16) and m["kappa"] == pytest.approx(0.0)


def test_bad_indian_pines_folder(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        load_indian_pines(tmp_path / "missing")
    with pytest.raises(DataError, match="needs Indian_pines_corrected.npy"):
        load_indian_pines(tmp_path)
    (tmp_path / "Indian_pines_corrected.npy").write_bytes(b"junk")
    (tmp_path / "Indian_pines_gt.npy").write_bytes(b"junk")
    with pytest.raises(InputFileError, match="not a readable .npy"):
        load_indian_pines(tmp_path)
    np.save(tmp_path / "Indian_pines_corrected.npy", np.zeros((4, 4, 3), np.uint16))
    np.save(tmp_path / "Indian_pines_gt.npy", np.zeros((5, 4), np.uint8))
    with pytest.raises(DataError, match="do not match"):
        load_indian_pines(tmp_path)


def test_corrupt_mat_file(tmp_path):
    np.save(tmp_path / "Indian_pines_corrected.npy", np.zeros((4, 4, 3), np.uint16))
    (tmp_path / "Indian_pines_gt.mat").write_bytes(b"MATLAB junk" * 20)
    with pytest.raises(InputFileError, match="Indian_pines_gt.mat is not a readable MATLAB file"):
        load_indian_pines(tmp_path)
