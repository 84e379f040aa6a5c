"""Corrupt metadata, in an IR's rt_info / model.json or a checkpoint's description: one clear
error naming the field, before anything runs, and never copied into an optimized IR.
(The validating schema is attnseg.metadata; these tests hold it to the issue's cases.)"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from attnseg.errors import AttnsegError

#: (case, change to the metadata dict, a word the error must contain)
IR_CASES = [
    ("threshold-text", lambda d: d.update(threshold="abc"), "threshold"),
    ("threshold-nan", lambda d: d.update(threshold=math.nan), "threshold"),
    ("threshold-5", lambda d: d.update(threshold=5), "threshold"),
    ("classes-null", lambda d: d.update(classes=None), "classes"),
    ("classes-vs-channels", lambda d: d.update(classes=[f"c{i}" for i in range(5)]), "classes"),
    ("mean-length", lambda d: d["normalization"].update(mean=[0.5, 0.5]), "mean"),
    ("std-zero", lambda d: d["normalization"].update(std=[0.0, 0.2, 0.2]), "std"),
    ("channel-order", lambda d: d["normalization"].update(channel_order="FOO"), "channel_order"),
    ("output-kind", lambda d: d.update(output="banana"), "output"),
    ("schema-newer", lambda d: d.update(schema_version=99), "schema_version"),
    ("task", lambda d: d.update(task="detection"), "task"),
    ("input-size", lambda d: d.update(input_size=[-4, 64]), "input_size"),
]


def _corrupt_ir(xml: Path, dest: Path, change) -> Path:
    """A copy of the IR whose rt_info (and model.json twin) carry ``change``d metadata."""
    import openvino as ov

    from attnseg.metadata import RT_INFO_KEY

    model = ov.Core().read_model(str(xml))
    raw = model.get_rt_info([RT_INFO_KEY, "json"])
    d = json.loads(raw.astype(str) if hasattr(raw, "astype") else str(raw))
    change(d)
    text = json.dumps(d)
    model.set_rt_info(text, [RT_INFO_KEY, "json"])
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "model.xml"
    ov.save_model(model, str(out), compress_to_fp16=False)
    (dest / "model.json").write_text(text)
    return out


@pytest.mark.parametrize("case, change, word", IR_CASES, ids=[c[0] for c in IR_CASES])
def test_segmenter_refuses_corrupt_ir_metadata_naming_the_field(tiny_ir, tmp_path, case, change, word):
    from attnseg.runtime import Segmenter

    bad = _corrupt_ir(tiny_ir, tmp_path / case, change)
    with pytest.raises(AttnsegError, match=word):
        Segmenter(bad, device="CPU")


def test_metadata_that_is_a_json_list_is_refused(tiny_ir, tmp_path):
    from attnseg.metadata import ModelMetadata

    with pytest.raises(AttnsegError, match="object"):
        ModelMetadata.from_json("[1, 2, 3]")
    (tmp_path / "model.json").write_text("[1, 2, 3]")
    with pytest.raises(AttnsegError):
        ModelMetadata.read_json(tmp_path / "model.json")


def test_mask_output_declared_on_a_logits_ir_is_refused(tiny_ir, tmp_path):
    from attnseg.runtime import Segmenter

    bad = _corrupt_ir(tiny_ir, tmp_path / "mask", lambda d: d.update(output="mask"))
    with pytest.raises(AttnsegError, match="output"):
        Segmenter(bad, device="CPU")


def test_optimize_refuses_an_ir_with_corrupt_metadata_and_writes_nothing(tiny_ir, kvasir12, tmp_path):
    from attnseg.optimize import quantize

    bad = _corrupt_ir(tiny_ir, tmp_path / "ir", lambda d: d.update(threshold=5))
    before = sorted(p.name for p in bad.parent.iterdir())
    with pytest.raises(AttnsegError, match="threshold"):
        quantize(bad, calibration=kvasir12 / "images", subset_size=2, quiet=True)
    assert sorted(p.name for p in bad.parent.iterdir()) == before


CKPT_CASES = [
    ("threshold-text", {"threshold": "abc"}, "threshold"),
    ("threshold-nan", {"threshold": math.nan}, "threshold"),
    ("mean-length", {"normalization": {"mean": [0.5], "std": [0.5, 0.5, 0.5], "channel_order": "RGB"}}, "mean"),
    ("std-zero", {"normalization": {"mean": [0.5] * 3, "std": [0.0] * 3, "channel_order": "RGB"}}, "std"),
    ("channel-order", {"normalization": {"mean": [0.5] * 3, "std": [0.5] * 3, "channel_order": "FOO"}},
     "channel_order"),
    ("classes-vs-outputs", {"classes": ["a", "b", "c", "d", "e"]}, "classes"),
    ("input-size", {"input_size": "big"}, "input_size"),
]


@pytest.mark.parametrize("case, change, word", CKPT_CASES, ids=[c[0] for c in CKPT_CASES])
def test_load_checkpoint_refuses_a_corrupt_description_naming_the_field(tiny_ckpt, tmp_path, case, change, word):
    import torch

    from attnseg.models import load_checkpoint

    raw = torch.load(tiny_ckpt, weights_only=True)
    raw.update(change)
    torch.save(raw, tmp_path / "bad.pt")
    with pytest.raises(AttnsegError, match=word):
        load_checkpoint(tmp_path / "bad.pt")


def test_checkpoint_with_null_classes_loads_as_binary_or_is_refused_clearly(tiny_ckpt, tmp_path):
    import torch

    from attnseg.models import load_checkpoint

    raw = torch.load(tiny_ckpt, weights_only=True)
    raw["classes"] = None
    torch.save(raw, tmp_path / "null.pt")
    try:
        _, info = load_checkpoint(tmp_path / "null.pt")
    except AttnsegError as exc:
        assert "classes" in str(exc)
    else:
        assert info.task == "binary" and len(info.classes) == 1


def test_corrupt_checkpoint_metadata_fails_seg_export_with_one_message(tiny_ckpt, tmp_path):
    import torch

    from .conftest import one_clear_error, run

    raw = torch.load(tiny_ckpt, weights_only=True)
    raw["threshold"] = "abc"
    torch.save(raw, tmp_path / "bad.pt")
    one_clear_error(run("seg-export", tmp_path / "bad.pt", "-o", tmp_path / "o"), "threshold")
    assert not (tmp_path / "o").exists()
