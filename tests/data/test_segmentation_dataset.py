"""SegmentationDataset on real samples, inside a torch DataLoader, and its bad inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from attnseg.data import Augmentation, SegmentationDataset, folder_pairs, open_dataset
from attnseg.data.samples import Sample
from attnseg.errors import DataError, InputFileError
from attnseg.imaging import normalize, read_image, resize_image
from attnseg.metadata import Normalization

NORM = Normalization()


@pytest.fixture(scope="module")
def kvasir(shared_data):
    return folder_pairs(shared_data / "kvasir-seg")[:6]


def test_items_match_imaging_preprocessing(kvasir):
    ds = SegmentationDataset(kvasir, (64, 96), NORM, "binary")
    assert len(ds) == 6
    x, y = ds[0]
    assert x.shape == (3, 64, 96) and x.dtype == np.float32
    assert y.shape == (64, 96) and y.dtype == np.int64 and set(np.unique(y)) <= {0, 1}
    expected = normalize(resize_image(read_image(kvasir[0].image), (64, 96)), NORM)
    assert np.array_equal(x, expected)
    assert 0 < y.mean() < 1
    assert np.array_equal(ds[-1][1], ds[5][1])
    with pytest.raises(IndexError):
        ds[6]


def test_isbi_is_grayscale(shared_data):
    info = open_dataset(f"isbi:{shared_data / 'isbi-membrane'}")
    ds = SegmentationDataset(
        info.samples[:2], (64, 64), info.normalization, info.task, in_channels=info.in_channels
    )
    x, _ = ds[1]
    assert x.shape == (1, 64, 64)
    assert abs(float(x.mean())) < 1.0
    with pytest.raises(DataError, match="in_channels=3 does not fit normalization channel order 'GRAY'"):
        SegmentationDataset(info.samples, (64, 64), info.normalization, "binary", in_channels=3)


def test_camvid_multiclass_items(shared_data):
    info = open_dataset(f"camvid:{shared_data / 'camvid'}")
    ds = SegmentationDataset(info.samples[:2], (64, 96), info.normalization, info.task, info.num_classes)
    _, y = ds[0]
    assert set(np.unique(y)) <= set(range(11)) | {255} and (y == 255).any()


def test_augmentation_is_reproducible_per_epoch(kvasir):
    aug = Augmentation(prob=1.0)
    ds = SegmentationDataset(kvasir[:2], (64, 64), NORM, "binary", augment=aug, seed=5)
    a = ds[0]
    assert np.array_equal(ds[0][0], a[0]) and np.array_equal(ds[0][1], a[1])
    ds.set_epoch(1)
    b = ds[0]
    assert not np.array_equal(a[0], b[0])
    plain = SegmentationDataset(kvasir[:2], (64, 64), NORM, "binary")
    assert not np.array_equal(plain[0][0], a[0])
    assert set(np.unique(b[1])) <= {0, 1}


LOADER_CHECK = """
import sys, pickle, numpy as np, torch
from pathlib import Path
from attnseg.data import Augmentation, SegmentationDataset, folder_pairs
from attnseg.metadata import Normalization
samples = folder_pairs(Path(sys.argv[1]))[:4]
ds = SegmentationDataset(samples, (32, 32), Normalization(), "binary", augment=Augmentation(prob=1.0), seed=1)
pickle.loads(pickle.dumps(ds))
batches = list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, shuffle=False))
assert batches[0][0].shape == (2, 3, 32, 32) and batches[0][0].dtype == torch.float32
assert batches[0][1].dtype == torch.int64
# Same (seed, epoch, index) -> same augmentation in a worker as in the main process.
assert np.array_equal(batches[1][0][1].numpy(), ds[3][0])
print("ok")
"""


def test_dataloader_with_workers(shared_data):
    # In a fresh interpreter: forking DataLoader workers out of a pytest process that already runs
    # OpenVINO thread pools (other test packages) crashed the whole run at random.
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", LOADER_CHECK, str(shared_data / "kvasir-seg")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_data_package_does_not_import_torch():
    code = "import sys, attnseg.data, attnseg.data.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mask_size_mismatch_and_unreadable_image(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), np.zeros((30, 20), np.uint8))
    (tmp_path / "images" / "b.jpg").write_bytes(b"garbage")
    cv2.imwrite(str(tmp_path / "masks" / "b.png"), np.zeros((20, 30), np.uint8))
    samples = folder_pairs(tmp_path)
    ds = SegmentationDataset(samples, (16, 16), NORM, "binary")
    with pytest.raises(DataError, match=r"Mask .*a.png is 20x30 \(WxH\) but its image .*a.png is 30x20"):
        ds[0]
    with pytest.raises(InputFileError, match="b.jpg cannot be decoded"):
        ds[1]


def test_dataset_bad_arguments(kvasir):
    with pytest.raises(DataError, match="no samples"):
        SegmentationDataset([], (64, 64), NORM, "binary")
    with pytest.raises(DataError, match="num_classes >= 2"):
        SegmentationDataset(kvasir, (64, 64), NORM, "multiclass")
    with pytest.raises(DataError, match="1 samples have no mask"):
        SegmentationDataset([Sample(Path("x.jpg"), None, "x")], (64, 64), NORM, "binary")


def test_class_ids_out_of_range_through_the_dataset(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), np.array([[0, 1, 5, 40, 255, 0, 0, 0]] * 8, np.uint8))
    info = open_dataset(f"folder:{tmp_path}", num_classes=3)
    ds = SegmentationDataset(info.samples, (8, 8), info.normalization, info.task, info.num_classes)
    with pytest.raises(DataError, match=r"Mask .*a.png has class ids 5, 40 outside 0..2 or 255 \(ignore\)"):
        ds[0]


def test_hand_built_samples_follow_the_task(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "m.png"), np.array([[0, 2, 200, 255]] * 4, np.uint8))
    s = Sample(tmp_path / "a.png", tmp_path / "m.png", "a")  # default encoding: auto
    with pytest.raises(DataError, match="class ids 200 outside 0..2"):
        SegmentationDataset([s], (4, 4), NORM, "multiclass", 3)[0]
    _, binary = SegmentationDataset([s], (4, 4), NORM, "binary")[0]
    assert binary[0].tolist() == [0, 1, 1, 1]  # binary: every non-zero value is foreground
