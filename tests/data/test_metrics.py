"""Metrics against hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from attnseg.data.metrics import BinaryMetrics, MulticlassMetrics, binary_metrics, classification_metrics
from attnseg.errors import DataError


def test_binary_metrics_hand_computed():
    # 4x4 image: gt has 4 foreground pixels, pred has 3 of them plus 2 false positives.
    gt = np.zeros((4, 4), np.uint8)
    gt[0, 0:4] = 1
    pred = np.zeros((4, 4), np.uint8)
    pred[0, 0:3] = 1
    pred[3, 2:4] = 1
    # TP=3 FP=2 FN=1 TN=10
    m = binary_metrics(pred, gt)
    assert m["accuracy"] == pytest.approx(13 / 16)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(10 / 12)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["dice"] == pytest.approx(6 / 9)
    assert m["f1"] == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    assert m["jaccard"] == pytest.approx(3 / 6)


def test_binary_metrics_probabilities_are_thresholded():
    gt = np.array([[1, 0], [1, 0]])
    prob = np.array([[0.9, 0.6], [0.2, 0.1]], dtype=np.float32)
    m = binary_metrics(prob, gt)  # pred = [[1,1],[0,0]]: TP=1 FP=1 FN=1 TN=1
    assert m["dice"] == pytest.approx(0.5)
    assert binary_metrics(prob, gt, threshold=0.15)["sensitivity"] == pytest.approx(1.0)


def test_empty_vs_empty_and_empty_gt():
    z = np.zeros((3, 3), bool)
    m = binary_metrics(z, z)
    assert m == {k: 1.0 for k in m}
    fp = z.copy()
    fp[1, 1] = True
    m = binary_metrics(fp, z)
    assert m["dice"] == 0.0 and m["jaccard"] == 0.0 and m["precision"] == 0.0
    assert m["sensitivity"] == 0.0
    assert m["specificity"] == pytest.approx(8 / 9)
    miss = binary_metrics(z, ~z)  # everything foreground, nothing predicted
    assert miss["sensitivity"] == 0.0 and miss["precision"] == 0.0 and miss["dice"] == 0.0
    assert miss["specificity"] == 0.0


def test_binary_accumulator_averages_per_image():
    gt = np.zeros((2, 1, 2, 2), np.uint8)
    gt[0, 0, 0, 0] = 1  # image 0: one fg pixel, predicted -> dice 1
    pred = gt.copy()
    pred[1, 0, 1, 1] = 1  # image 1: empty gt, one fp -> dice 0
    acc = BinaryMetrics()
    acc.update(pred, gt, names=["a", "b"])
    out = acc.compute()
    assert out["count"] == 2
    assert out["dice"] == pytest.approx(0.5)
    assert out["accuracy"] == pytest.approx((1.0 + 0.75) / 2)
    assert [r["name"] for r in acc.per_image] == ["a", "b"]
    with pytest.raises(DataError, match="differ"):
        acc.update(np.zeros((1, 2, 2)), np.zeros((1, 3, 3)))
    with pytest.raises(DataError, match="No images"):
        BinaryMetrics().compute()


def test_multiclass_confusion_iou_and_void():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 3, 3]])
    mm = MulticlassMetrics(num_classes=5, ignore_index=255)
    mm.update(pred, gt)
    out = mm.compute()
    # valid pixels: 6. class 0: TP1 FP1 FN1 -> 1/3; class 1: TP2 FP1 FN0 -> 2/3; class 2: TP1 FN1 -> 1/2
    # class 3 only on void pixels -> not counted, absent; class 4 absent.
    assert out["iou"][:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert out["iou"][3] is None and out["iou"][4] is None
    assert out["miou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert out["pixel_accuracy"] == pytest.approx(4 / 6)
    assert out["class_accuracy"][:3] == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert out["pixels"] == 6 and out["count"] == 1


def test_multiclass_predicted_absent_class_counts_in_miou():
    gt = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 0, 1])
    mm = MulticlassMetrics(2, ignore_index=None)
    mm.update(pred, gt)
    out = mm.compute()
    assert out["iou"] == pytest.approx([3 / 4, 0.0])
    assert out["miou"] == pytest.approx(3 / 8)


def test_multiclass_bad_ids():
    mm = MulticlassMetrics(3)
    with pytest.raises(DataError, match="outside 0..2"):
        mm.update(np.zeros((2, 2), int), np.full((2, 2), 7))
    with pytest.raises(DataError, match="No labelled pixels"):
        mm.update(np.zeros((2, 2), int), np.full((2, 2), 255))
        mm.compute()


def test_classification_metrics_hand_computed():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 2, 2, 2, 1])
    out = classification_metrics(y_true, y_pred, num_classes=4)
    assert out["oa"] == pytest.approx(7 / 10)
    assert out["per_class_accuracy"][:3] == pytest.approx([3 / 4, 1 / 2, 3 / 4])
    assert out["per_class_accuracy"][3] is None
    assert out["aa"] == pytest.approx((3 / 4 + 1 / 2 + 3 / 4) / 3)
    # rows (true) = 4, 2, 4, 0; cols (pred) = 4, 3, 3, 0 -> pe = (16 + 6 + 12) / 100 = 0.34
    assert out["kappa"] == pytest.approx((0.7 - 0.34) / (1 - 0.34))
    assert out["confusion"][0] == [3, 1, 0, 0]
    perfect = classification_metrics([1, 1], [1, 1], 2)
    assert perfect["kappa"] == 1.0 and perfect["oa"] == 1.0
    with pytest.raises(DataError, match="outside 0..1"):
        classification_metrics([0, 2], [0, 1], 2)
