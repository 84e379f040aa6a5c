"""Data sets, splits, augmentation and metrics (numpy + OpenCV only, never torch).

Flat public API: readers return ``Sample`` lists, ``open_dataset("kvasir:/path")`` describes a
data set, ``make_split`` / ``write_split`` / ``apply_split`` keep splits fixed on disk,
``SegmentationDataset`` feeds a torch ``DataLoader`` or an exported model, and
``attnseg.data.metrics`` scores both the same way.
"""

from attnseg.data.augment import Augmentation
from attnseg.data.datasets import DatasetInfo, DatasetKind, DatasetSpec, open_dataset, read_class_list
from attnseg.data.hyperspectral import (
    INDIAN_PINES_CLASSES,
    HyperspectralData,
    PatchDataset,
    extract_patches,
    labelled_pixels,
    load_indian_pines,
    open_indian_pines,
    pca_reduce,
    split_pixels,
)
from attnseg.data.masks import (
    CAMVID_CLASSES,
    CITYSCAPES_CLASSES,
    CITYSCAPES_TRAIN_IDS,
    DEFAULT_IGNORE_INDEX,
    check_class_ids,
    read_mask,
)
from attnseg.data.metrics import BinaryMetrics, MulticlassMetrics, binary_metrics, classification_metrics
from attnseg.data.samples import (
    MaskEncoding,
    Sample,
    camvid_samples,
    cityscapes_samples,
    folder_pairs,
    isbi_samples,
)
from attnseg.data.segmentation import SegmentationDataset, load_pair
from attnseg.data.splits import (
    Split,
    apply_split,
    load_or_make_split,
    make_split,
    make_split_keeping,
    read_split,
    write_split,
)

__all__ = [
    "CAMVID_CLASSES",
    "CITYSCAPES_CLASSES",
    "CITYSCAPES_TRAIN_IDS",
    "DEFAULT_IGNORE_INDEX",
    "INDIAN_PINES_CLASSES",
    "Augmentation",
    "BinaryMetrics",
    "DatasetInfo",
    "DatasetKind",
    "DatasetSpec",
    "HyperspectralData",
    "MaskEncoding",
    "MulticlassMetrics",
    "PatchDataset",
    "Sample",
    "SegmentationDataset",
    "Split",
    "apply_split",
    "binary_metrics",
    "camvid_samples",
    "check_class_ids",
    "cityscapes_samples",
    "classification_metrics",
    "extract_patches",
    "folder_pairs",
    "isbi_samples",
    "labelled_pixels",
    "load_indian_pines",
    "load_or_make_split",
    "load_pair",
    "make_split",
    "make_split_keeping",
    "open_dataset",
    "open_indian_pines",
    "pca_reduce",
    "read_class_list",
    "read_mask",
    "read_split",
    "split_pixels",
    "write_split",
]
