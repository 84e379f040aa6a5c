from __future__ import annotations

import json

import pytest
import torch

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


def test_precision_names_are_checked():
    assert acceleration.resolve_precision("auto") is acceleration.Precision.AUTO  # decided by measuring
    assert acceleration.resolve_precision("bf16") is acceleration.Precision.BF16
    with pytest.raises(ModelConfigError, match="use auto, fp32 or bf16"):
        acceleration.resolve_precision("int4")


@pytest.mark.parametrize(("rounds", "expected"), [
    ({"fp32": [1000.0, 1010.0, 990.0], "bf16": [600.0, 620.0, 610.0]}, "bf16"),  # clearly faster every round
    ({"fp32": [1000.0, 400.0, 990.0], "bf16": [600.0, 620.0, 610.0]}, "bf16"),  # one loaded round: still bf16
    ({"fp32": [1000.0, 1000.0, 1000.0], "bf16": [920.0, 930.0, 925.0]}, "fp32"),  # 8%: within the margin
    ({"fp32": [1014.0, 640.0, 650.0], "bf16": [623.0, 660.0, 655.0]}, "fp32"),  # one loaded round: noise
    ({"fp32": [100.0, 600.0, 600.0], "bf16": [500.0, 500.0, 700.0]}, "fp32"),  # median faster, 1 of 3 rounds
    ({"fp32": [700.0, 690.0, 710.0], "bf16": [1000.0, 990.0, 1010.0]}, "fp32"),  # bf16 slower (no AMX Xeon)
])
def test_training_auto_decision_is_a_function_of_the_timings(rounds, expected):
    decision = acceleration.decide_precision(rounds)
    assert decision.choice == expected
    assert decision == acceleration.decide_precision({k: list(v) for k, v in rounds.items()})  # deterministic
    assert decision.medians_ms == {k: sorted(v)[1] for k, v in rounds.items()}
    assert ("faster than fp32" in decision.reason) == (expected == "bf16")


def test_auto_measures_in_interleaved_rounds_then_reads_the_cache(monkeypatch, tmp_path):
    from attnseg.models import create_model

    monkeypatch.setenv("ATTNSEG_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(acceleration, "has_native_bf16", lambda: True)  # measure on any CPU (bf16 emulated)
    model = create_model("AttU_Net", base_width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    plan = acceleration.plan_acceleration("auto", model=model, input_shape=(2, 3, 32, 32))
    probe = plan.auto_probe_ms
    assert set(probe) == {"fp32", "bf16"} and all(v > 0 for v in probe.values())
    assert plan.precision in ("fp32", "bf16") and plan.precision_reason.startswith("auto (measured)")
    # The probe runs on copies with their own generator: weights, BN stats and the global RNG are untouched.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())
    (entry,) = json.loads((tmp_path / acceleration.CACHE_NAME).read_text()).values()
    assert len(entry["rounds_ms"]["fp32"]) == acceleration.PROBE_ROUNDS
    assert entry["choice"] == acceleration.decide_precision(entry["rounds_ms"]).choice == plan.precision

    again = acceleration.plan_acceleration("auto", model=model, input_shape=(2, 3, 32, 32))
    assert again.precision == plan.precision and again.precision_reason.startswith("auto (cached)")
    bigger = acceleration.plan_acceleration("auto", model=model, input_shape=(4, 3, 32, 32))  # another batch
    assert bigger.precision_reason.startswith("auto (measured)")

    monkeypatch.setattr(acceleration, "has_native_bf16", lambda: False)
    assert acceleration.plan_acceleration("auto", model=model, input_shape=(2, 3, 32, 32)).precision == "fp32"
    forced = acceleration.plan_acceleration("bf16", model=model, input_shape=(2, 3, 32, 32))
    assert forced.precision == "bf16" and forced.precision_reason == "requested" and forced.auto_probe_ms is None


def test_ipex_is_optional():
    # Not installed here: must say so, never raise.
    assert acceleration.ipex_status() in ("not installed", "ok") or acceleration.ipex_status().startswith("skipped")
    plan = acceleration.plan_acceleration("fp32", threads=1)
    assert plan.precision == "fp32" and plan.channels_last and plan.threads == 1


def test_tversky_presence_loss_punishes_a_missed_lesion_more_than_bce_dice():
    """An image whose small lesion is missed entirely costs more under bce-tversky than a loose
    prediction of the same lesion; an exact prediction costs almost nothing."""
    import torch

    from attnseg.train.losses import SegmentationLoss

    target = torch.zeros(1, 32, 32, dtype=torch.long)
    target[0, 10:14, 10:14] = 1
    missed = torch.full((1, 1, 32, 32), -6.0)
    loose = missed.clone()
    loose[0, 0, 8:16, 8:16] = 6.0
    for kind in ("bce-dice", "bce-tversky"):
        loss = SegmentationLoss(1, kind=kind)
        assert float(loss(missed, target)) > float(loss(loose, target))
    tv, bd = SegmentationLoss(1, kind="bce-tversky"), SegmentationLoss(1, kind="bce-dice")
    assert float(tv(missed, target)) - float(tv(loose, target)) > 0.5
    exact = torch.where(target[:, None] > 0, 8.0, -8.0)
    assert float(tv(exact, target)) < 0.05 and float(bd(exact, target)) < 0.05
    with pytest.raises(ValueError, match="Unknown loss"):
        SegmentationLoss(1, kind="nope")
