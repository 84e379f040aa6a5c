"""The input interpolation is one recorded preprocessing field (issue 28): training resizes with
the runtime codec's own function and records it in the checkpoint, the checkpoint reader
validates it through the metadata schema, export carries it to the IR, and the Segmenter
prepares images with it. Real Kvasir-SEG images, real training steps, real OpenVINO."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from attnseg.errors import AttnsegError, InvalidOptionError, MetadataError
from attnseg.imaging import read_image
from attnseg.metadata import (
    DEFAULT_INTERPOLATION,
    INTERPOLATIONS,
    LEGACY_INTERPOLATION,
    ModelMetadata,
    metadata_json_path,
    read_rt_info,
    write_rt_info,
)
from tests.conftest import copy_kvasir_pairs

SIZE = (64, 64)
CV2_FLAG = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}


@pytest.fixture(scope="module")
def kvasir_pairs(shared_data, tmp_path_factory) -> Path:
    """8 real Kvasir-SEG image / mask pairs in the images/ + masks/ layout."""
    return copy_kvasir_pairs(shared_data, tmp_path_factory.mktemp("kvasir8"), 8)


def samples(root: Path):
    from attnseg.data import open_dataset

    return open_dataset(f"kvasir:{root}").samples


def by_cv2(path: Path, interpolation: str) -> np.ndarray:
    """What a model of input SIZE must be fed: the decoded file, one cv2.resize, nothing else."""
    return cv2.resize(read_image(path), (SIZE[1], SIZE[0]), interpolation=CV2_FLAG[interpolation])


def train_checkpoint(root: Path, out: Path, interpolation: str) -> Path:
    """An AttU_Net trained a few steps on images the data pipeline resized with ``interpolation``;
    ``save_checkpoint`` records what the dataset used, as the training loop does."""
    import torch

    from attnseg.metadata import Normalization
    from attnseg.models import create_model, save_checkpoint
    from attnseg.train.cache import CachedSegmentationDataset

    torch.manual_seed(0)
    ds = CachedSegmentationDataset(samples(root), SIZE, Normalization(), "binary",
                                   interpolation=interpolation).preload()
    model = create_model("AttU_Net", base_width=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    for x, y in torch.utils.data.DataLoader(ds, batch_size=4):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], y.float())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return save_checkpoint(out / f"{interpolation}.pt", model, input_size=SIZE, input_interpolation=ds.interpolation)


@pytest.fixture(scope="module")
def checkpoints(kvasir_pairs, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("ckpt")
    return {i: train_checkpoint(kvasir_pairs, out, i) for i in ("linear", "area")}


@pytest.fixture(scope="module")
def exports(checkpoints, tmp_path_factory) -> dict[str, Path]:
    from attnseg.export import AdvancedExportParameters, export

    root = tmp_path_factory.mktemp("export")
    return {i: Path(export(ckpt, output_dir=root / i, device="CPU",
                           advanced=AdvancedExportParameters(parity_batches=1)).xml_path)
            for i, ckpt in checkpoints.items()}


@pytest.fixture(scope="module")
def linear_checkpoint(checkpoints) -> Path:
    return checkpoints["linear"]


def rewrite_ir(xml: Path, target: Path, interpolation: str | None) -> Path:
    """A copy of ``xml`` whose metadata records ``interpolation`` (None: the field removed, as in
    an IR exported before it existed)."""
    import openvino as ov

    model = ov.Core().read_model(xml)
    meta = read_rt_info(model)
    data = meta.to_dict()
    if interpolation is None:
        data.pop("input_interpolation")
        model.set_rt_info(json.dumps(data), ["attnseg", "json"])
    else:
        write_rt_info(model, ModelMetadata.from_dict({**data, "input_interpolation": interpolation}))
    target.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, target, compress_to_fp16=False)
    return target


# ---------------------------------------------------------------------- training side
@pytest.mark.parametrize("interpolation", ["area", "linear"])
def test_training_data_is_resized_like_the_runtime(kvasir_pairs, interpolation):
    """Plain and cached datasets and the augmentation's resize feed exactly cv2.resize of the
    decoded file with the dataset's interpolation (what the codec feeds an IR recording it)."""
    from attnseg.data import Augmentation, SegmentationDataset
    from attnseg.metadata import Normalization
    from attnseg.train.cache import CachedSegmentationDataset

    pairs = samples(kvasir_pairs)[:3]
    plain = SegmentationDataset(pairs, SIZE, Normalization(), "binary", interpolation=interpolation)
    resize_only = Augmentation(prob=1.0, hflip=False, vflip=False, rotate_deg=0, crop_scale=(1.0, 1.0),
                               color_jitter=0.0)  # the augmentation's own resize to the model size
    augmented = SegmentationDataset(pairs, SIZE, Normalization(), "binary", augment=resize_only,
                                    interpolation=interpolation)
    cached = CachedSegmentationDataset(pairs, SIZE, Normalization(), "binary", interpolation=interpolation)
    other = "linear" if interpolation == "area" else "area"
    for i, sample in enumerate(pairs):
        want = by_cv2(sample.image, interpolation)
        assert np.array_equal(plain.load(i)[0], want)
        assert np.array_equal(cached.load(i)[0], want)
        assert np.array_equal(augmented.load(i)[0], want)
        assert not np.array_equal(want, by_cv2(sample.image, other))  # the two really differ here


def _train_args(data, out, epochs, *extra):
    return ["--data", f"kvasir:{data}", "-o", str(out), "--base-width", "4", "--input-size", "64", "64",
            "--epochs", str(epochs), "--batch-size", "4", "--test-count", "1", "--val-fraction", "0.25",
            "--workers", "0", "--threads", "1", "-q", *extra]


def test_a_training_run_records_the_interpolation_it_used(kvasir_pairs, tmp_path):
    from attnseg.cli.train import main as seg_train
    from attnseg.models import load_checkpoint
    from attnseg.models.checkpoint import read_checkpoint_file

    out = tmp_path / "run"
    assert seg_train(_train_args(kvasir_pairs, out, 1)) == 0
    for name in ("best.pt", "last.pt"):
        assert read_checkpoint_file(out / name)["input_interpolation"] == DEFAULT_INTERPOLATION
        assert load_checkpoint(out / name)[1].input_interpolation == DEFAULT_INTERPOLATION
    other = next(i for i in INTERPOLATIONS if i != DEFAULT_INTERPOLATION)
    assert seg_train(_train_args(kvasir_pairs, tmp_path / "other", 1, "--input-interpolation", other)) == 0
    assert load_checkpoint(tmp_path / "other" / "best.pt")[1].input_interpolation == other


def test_resuming_a_run_from_before_the_field_keeps_area(kvasir_pairs, tmp_path):
    """A last.pt without ``input_interpolation`` was trained with area: --resume goes on with area."""
    import torch

    from attnseg.cli.train import main as seg_train
    from attnseg.models.checkpoint import read_checkpoint_file

    out = tmp_path / "run"
    assert seg_train(_train_args(kvasir_pairs, out, 1, "--input-interpolation", "area")) == 0
    raw = read_checkpoint_file(out / "last.pt")
    raw.pop("input_interpolation")
    raw["trained_with"]["config"].pop("input_interpolation")
    torch.save(raw, out / "last.pt")
    assert seg_train(_train_args(kvasir_pairs, out, 2, "--resume", str(out / "last.pt"))) == 0
    assert read_checkpoint_file(out / "last.pt")["input_interpolation"] == "area"


def test_a_bad_training_interpolation_is_refused_before_any_work(kvasir_pairs, tmp_path, capsys):
    from attnseg.errors import ModelConfigError
    from attnseg.train import TrainConfig, train

    with pytest.raises(ModelConfigError, match="--input-interpolation must be one of area, linear, got 'cubic'"):
        train(TrainConfig(data=f"kvasir:{kvasir_pairs}", output_dir=str(tmp_path / "o"), input_interpolation="cubic"))
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------- checkpoint contract
def test_checkpoint_reader_returns_the_recorded_value_and_area_when_absent(linear_checkpoint, tmp_path):
    import torch

    from attnseg.models import load_checkpoint
    from attnseg.models.checkpoint import read_checkpoint_file

    assert read_checkpoint_file(linear_checkpoint)["input_interpolation"] == "linear"
    assert load_checkpoint(linear_checkpoint)[1].input_interpolation == "linear"
    raw = read_checkpoint_file(linear_checkpoint)
    del raw["input_interpolation"]  # a checkpoint saved before the field existed
    torch.save(raw, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt")[1].input_interpolation == LEGACY_INTERPOLATION == "area"


def test_a_bad_value_in_a_checkpoint_is_one_clear_error_naming_the_field(linear_checkpoint, tmp_path):
    import torch

    from attnseg.export import export
    from attnseg.models import create_model, load_checkpoint, save_checkpoint
    from attnseg.models.checkpoint import read_checkpoint_file

    raw = read_checkpoint_file(linear_checkpoint)
    raw["input_interpolation"] = "cubic"
    bad = tmp_path / "bad.pt"
    torch.save(raw, bad)
    for attempt in (lambda: load_checkpoint(bad), lambda: export(bad, output_dir=tmp_path / "never", device="CPU")):
        with pytest.raises(MetadataError) as info:
            attempt()
        text = str(info.value)
        assert "input_interpolation: 'cubic' is not one of area, linear" in text, text
        assert text.count("input_interpolation") == 1 and "\n" not in text
        assert isinstance(info.value, AttnsegError)
    assert not (tmp_path / "never").exists()
    with pytest.raises(InvalidOptionError, match=r"input_interpolation must be one of area, linear, got 'cubic'"):
        save_checkpoint(tmp_path / "never.pt", create_model("AttU_Net", base_width=4), input_interpolation="cubic")
    assert not (tmp_path / "never.pt").exists()


# ---------------------------------------------------------------------- IR metadata and the runtime
def test_metadata_without_the_field_keeps_area():
    """IRs exported before the field existed resized with area; reading one must not change that,
    whatever the default for new models is."""
    meta = ModelMetadata.from_dict({"task": "binary", "classes": ["polyp"], "input_size": [64, 64]})
    assert meta.input_interpolation == LEGACY_INTERPOLATION == "area"
    assert ModelMetadata().input_interpolation == DEFAULT_INTERPOLATION
    with pytest.raises(MetadataError, match=r"input_interpolation: 'bicubic' is not one of area, linear"):
        ModelMetadata.from_dict({"input_interpolation": "bicubic"})


@pytest.mark.parametrize("recorded", ["linear", "area", None])
def test_segmenter_prepares_images_with_the_recorded_interpolation(exports, kvasir_images, tmp_path, recorded):
    """An IR recording ``linear`` is fed cv2.INTER_LINEAR, one recording ``area`` INTER_AREA, and
    one without the field (older exports) INTER_AREA, as it was when it was made."""
    from attnseg.runtime import Segmenter

    xml = rewrite_ir(exports["linear"], tmp_path / "ir" / "model.xml", recorded)
    seg = Segmenter(xml, inference_precision="f32")
    expected = recorded or "area"
    assert seg.metadata.input_interpolation == expected and seg.codec.interpolation == expected
    for path in kvasir_images[:3]:
        tensor = seg.preprocess(path).tensor  # u8 NHWC BGR: embedded preprocessing
        assert tensor.shape == (1, *SIZE, 3) and tensor.dtype == np.uint8
        assert np.array_equal(tensor[0], by_cv2(path, expected))
        assert seg.predict(path).mask.shape == read_image(path).shape[:2]


@pytest.mark.parametrize("trained", ["linear", "area"])
def test_a_checkpoint_exports_an_ir_that_resizes_as_it_was_trained(exports, kvasir_images, trained):
    """A checkpoint trained with ``linear`` exports an IR whose metadata (rt_info and JSON) says
    linear and whose Segmenter feeds cv2.INTER_LINEAR; one trained with ``area``, INTER_AREA."""
    from attnseg.runtime import Segmenter

    xml = exports[trained]
    assert ModelMetadata.read_json(metadata_json_path(xml)).input_interpolation == trained
    seg = Segmenter(xml, inference_precision="f32")
    assert seg.metadata.input_interpolation == trained
    for path in kvasir_images[:3]:
        assert np.array_equal(seg.preprocess(path).tensor[0], by_cv2(path, trained))
