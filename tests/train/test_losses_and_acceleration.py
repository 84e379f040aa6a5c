from __future__ import annotations

import pytest
import torch

from attnseg import cpu_features
from attnseg.errors import ModelConfigError
from attnseg.train import acceleration
from attnseg.train.losses import SegmentationLoss, soft_dice_loss_binary, soft_dice_loss_multiclass


def test_binary_dice_loss_matches_hand_computation():
    logits = torch.full((1, 1, 2, 2), 10.0)  # sigmoid ~ 1 everywhere
    target = torch.tensor([[[1, 0], [0, 0]]])
    # soft dice = (2*1 + 1) / (4 + 1 + 1) = 0.5
    assert soft_dice_loss_binary(logits, target).item() == pytest.approx(0.5, abs=1e-3)


def test_multiclass_dice_ignores_void_pixels():
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 0, 0, 0] = 20  # pixel 0 -> class 0 (correct); pixel 1 is void
    target = torch.tensor([[[0, 255]]])
    assert soft_dice_loss_multiclass(logits, target, ignore_index=255).item() == pytest.approx(0.0, abs=1e-3)


def test_segmentation_loss_picks_bce_for_one_output_and_ce_otherwise():
    target = torch.randint(0, 2, (2, 8, 8))
    assert SegmentationLoss(1)(torch.randn(2, 1, 8, 8), target).item() > 0
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 30
    assert SegmentationLoss(3)(perfect, target).item() == pytest.approx(0.0, abs=1e-3)


def test_auto_precision_follows_native_bf16(monkeypatch):
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert acceleration.resolve_precision("auto") is acceleration.Precision.BF16
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx2"}))
    assert acceleration.resolve_precision("auto") is acceleration.Precision.FP32
    assert acceleration.resolve_precision("bf16") is acceleration.Precision.BF16
    with pytest.raises(ModelConfigError, match="use auto, fp32 or bf16"):
        acceleration.resolve_precision("int4")


def test_auto_measures_bf16_where_flags_cannot_tell(monkeypatch):
    from attnseg.models import create_model

    model = create_model("AttU_Net", base_width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    plan = acceleration.plan_acceleration("auto", model=model, input_shape=(2, 3, 32, 32))
    probe = plan.auto_probe_ms
    assert set(probe) == {"fp32", "bf16"} and all(v > 0 for v in probe.values())
    expected = "bf16" if probe["fp32"] / probe["bf16"] >= acceleration.PROBE_MIN_SPEEDUP else "fp32"
    assert plan.precision == expected and "measured" in plan.precision_reason
    # The probe runs on a copy with its own generator: weights, BN stats and the global RNG are untouched.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    assert "auto_probe_ms" in plan.to_dict()

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx512_bf16", "amx_bf16", "amx_tile"}))
    amx = acceleration.plan_acceleration("auto", model=model, input_shape=(2, 3, 32, 32))
    assert amx.precision == "bf16" and amx.auto_probe_ms is None and "AMX" in amx.precision_reason
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset({"avx2"}))
    assert acceleration.plan_acceleration("auto", model=model, input_shape=(2, 3, 32, 32)).precision == "fp32"
    forced = acceleration.plan_acceleration("bf16", model=model, input_shape=(2, 3, 32, 32))
    assert forced.precision == "bf16" and forced.precision_reason == "requested" and forced.auto_probe_ms is None


def test_ipex_is_optional():
    # Not installed here: must say so, never raise.
    assert acceleration.ipex_status() in ("not installed", "ok") or acceleration.ipex_status().startswith("skipped")
    plan = acceleration.plan_acceleration("fp32", threads=1)
    assert plan.precision == "fp32" and plan.channels_last and plan.threads == 1
