"""``--data KIND:PATH`` -> everything training and evaluation need to know about a data set.

``DatasetSpec.parse("kvasir:/data/kvasir-seg")`` names the reader; ``open_dataset(spec)``
lists the samples and returns a ``DatasetInfo`` with the task, class names, ignore index,
input channels, a suggested normalization and input size, and the splits the data set ships
with (CamVid val/test, Cityscapes train/val, ISIC train/valid/test folders), if any.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path

from attnseg.data.masks import CAMVID_CLASSES, CAMVID_VOID_ID, CITYSCAPES_CLASSES, DEFAULT_IGNORE_INDEX
from attnseg.data.samples import (
    MaskEncoding,
    Sample,
    camvid_samples,
    check_unique,
    cityscapes_samples,
    find_isic_pairs,
    folder_pairs,
    isbi_samples,
    require_dir,
)
from attnseg.data.splits import Split, make_split, make_split_keeping
from attnseg.errors import DataError
from attnseg.metadata import Normalization

IMAGENET = Normalization(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channel_order="RGB")
#: Mean / std of the 30 ISBI 2012 training slices (grey levels / 255).
ISBI_NORMALIZATION = Normalization(mean=(0.495,), std=(0.173,), channel_order="GRAY")
VOID_NAMES = {"void", "unlabelled", "unlabeled", "ignore"}


class DatasetKind(str, Enum):
    """Data set readers selectable with ``--data KIND:PATH``."""

    KVASIR = "kvasir"
    FOLDER = "folder"
    ISIC = "isic"
    CAMVID = "camvid"
    CITYSCAPES = "cityscapes"
    ISBI = "isbi"


@dataclass(frozen=True)
class DatasetSpec:
    """Which reader, which folder, and the few options a folder layout cannot say itself.

    ``task`` / ``num_classes`` / ``classes`` matter for ``folder`` only (class-index masks);
    ``splits`` restricts CamVid / Cityscapes to some of their shipped splits.
    """

    kind: DatasetKind
    root: Path
    task: str | None = None
    num_classes: int | None = None
    classes: tuple[str, ...] | None = None
    splits: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str | DatasetSpec, **options) -> DatasetSpec:
        """``KIND:PATH`` (kinds: kvasir, folder, isic, camvid, cityscapes, isbi), or a folder
        (``folder:PATH``: images/ and masks/), the one data grammar of every command."""
        if isinstance(text, DatasetSpec):
            return replace(text, **options) if options else text
        if ":" not in str(text) or Path(str(text)).expanduser().is_dir():
            text = f"folder:{text}"
        kind, sep, path = str(text).partition(":")
        kinds = ", ".join(k.value for k in DatasetKind)
        if not sep or not path:
            raise DataError(f"--data must be KIND:PATH (kinds: {kinds}) or a folder, got {text!r}.")
        try:
            k = DatasetKind(kind.strip().lower().replace("-", "_"))
        except ValueError:
            raise DataError(f"Unknown data set kind {kind!r} in {text!r}; use one of: {kinds}.") from None
        if options.get("classes") is not None:
            options["classes"] = tuple(options["classes"])
        if options.get("splits") is not None:
            options["splits"] = tuple(options["splits"])
        return cls(kind=k, root=Path(path).expanduser(), **options)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.root}"


@dataclass
class DatasetInfo:
    """A listed data set: its samples and how to train on them."""

    spec: DatasetSpec
    samples: list[Sample]
    task: str  # binary | multiclass
    classes: list[str]  # binary: the one foreground name; multiclass: class names by id (no void)
    ignore_index: int | None
    in_channels: int
    normalization: Normalization
    suggested_size: tuple[int, int]
    predefined_splits: dict[str, list[str]] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of model outputs: 1 for binary, the class count for multiclass."""
        return len(self.classes)

    @property
    def official_test(self) -> str | None:
        """The shipped split that serves as test set: ``test`` (CamVid, ISIC folders) or, for
        Cityscapes (whose test labels are withheld), ``val``. ``None`` if nothing is shipped."""
        if self.spec.kind is DatasetKind.CITYSCAPES:
            return "val" if "val" in self.predefined_splits else None
        return "test" if "test" in self.predefined_splits else None

    def default_split(self, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> Split:
        """train / val / test for this data set: the official test split kept as ``test`` when
        the data set ships one (the rest cut into train / val by ``val_fraction``), else a
        seeded cut of all samples by the two fractions. Write it with ``write_split``."""
        official = self.official_test
        if official:
            return make_split_keeping(
                self.samples,
                {"test": self.predefined_splits[official]},
                {"train": 1.0 - val_fraction, "val": val_fraction},
                seed=seed,
            )
        fractions = {"train": 1.0 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
        return make_split(self.samples, fractions=fractions, seed=seed)

    def summary(self) -> dict:
        return {
            "data": str(self.spec),
            "samples": len(self.samples),
            "task": self.task,
            "classes": self.classes,
            "ignore_index": self.ignore_index,
            "in_channels": self.in_channels,
            "suggested_size": list(self.suggested_size),
            "predefined_splits": {k: len(v) for k, v in self.predefined_splits.items()},
        }


def read_class_list(path: Path) -> tuple[list[str], int | None]:
    """Class names from ``classes.txt``: lines ``<id> <name>`` (or just ``<name>``, id = line
    number). Ids must run 0..K-1; a class named void/unlabelled is returned as the void id."""
    entries: list[tuple[int, str]] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first, _, rest = line.partition(" ")
        if first.isdigit() and rest.strip():
            entries.append((int(first), rest.strip()))
        else:
            entries.append((len(entries), line))
    ids = [i for i, _ in entries]
    if ids != list(range(len(entries))):
        raise DataError(f"{path}: class ids must be 0, 1, 2, ... in order, got {ids}.")
    void = [i for i, n in entries if n.lower() in VOID_NAMES]
    if len(void) > 1 or (void and void[0] != len(entries) - 1):
        raise DataError(f"{path}: the void class must be the last line, found it at ids {void}.")
    names = [n for i, n in entries if i not in void]
    return names, (void[0] if void else None)


def _camvid(spec: DatasetSpec) -> DatasetInfo:
    root = require_dir(spec.root, "CamVid folder")
    classes = list(CAMVID_CLASSES)
    class_file = root / "classes.txt"
    if class_file.is_file():
        classes, void = read_class_list(class_file)
        if void != CAMVID_VOID_ID or len(classes) != CAMVID_VOID_ID:
            raise DataError(
                f"{class_file}: expected 11 classes and void id 11 (SegNet CamVid), "
                f"got {len(classes)} classes and void id {void}."
            )
    wanted = spec.splits or tuple(s for s in ("train", "val", "test") if (root / f"{s}annot").is_dir())
    if not wanted:
        raise DataError(f"{root} has no CamVid split folders (train/ + trainannot/, val/ + valannot/, ...).")
    samples: list[Sample] = []
    splits: dict[str, list[str]] = {}
    for s in wanted:
        part = camvid_samples(root, s)
        splits[s] = [x.name for x in part]
        samples.extend(part)
    return DatasetInfo(
        spec, check_unique(samples, f"CamVid {root}"), "multiclass", classes, DEFAULT_IGNORE_INDEX,
        3, IMAGENET, (352, 480), splits,
    )  # fmt: skip


def _cityscapes(spec: DatasetSpec) -> DatasetInfo:
    root = require_dir(spec.root, "Cityscapes folder")
    img_root = require_dir(root / "leftImg8bit", "Cityscapes image folder")
    require_dir(root / "gtFine", "Cityscapes gtFine folder")
    # The test split's gtFine labels are placeholders: listed only when asked for.
    wanted = spec.splits or tuple(s for s in ("train", "val") if (img_root / s).is_dir())
    if not wanted:
        raise DataError(f"{img_root} has neither train/ nor val/.")
    samples: list[Sample] = []
    splits: dict[str, list[str]] = {}
    for s in wanted:
        part = cityscapes_samples(root, s)
        splits[s] = [x.name for x in part]
        samples.extend(part)
    return DatasetInfo(
        spec, check_unique(samples, f"Cityscapes {root}"), "multiclass", list(CITYSCAPES_CLASSES),
        DEFAULT_IGNORE_INDEX, 3, IMAGENET, (256, 512), splits,
    )  # fmt: skip


def _folder(spec: DatasetSpec, foreground: str) -> DatasetInfo:
    task = spec.task or ("multiclass" if (spec.num_classes or 0) > 1 or spec.classes else "binary")
    if task not in ("binary", "multiclass"):
        raise DataError(f"Unknown task {task!r}: use 'binary' or 'multiclass'.")
    if task == "binary":
        samples = folder_pairs(spec.root, encoding=MaskEncoding.BINARY)
        classes = list(spec.classes) if spec.classes else [foreground]
        if len(classes) != 1:
            raise DataError(f"A binary data set has one foreground class, got {classes}.")
        ignore = None
    else:
        if spec.classes:
            classes = list(spec.classes)
            if spec.num_classes is not None and spec.num_classes != len(classes):
                raise DataError(f"num_classes={spec.num_classes} but {len(classes)} class names were given.")
        elif spec.num_classes and spec.num_classes > 1:
            classes = [f"class_{i}" for i in range(spec.num_classes)]
        else:
            raise DataError("A multiclass folder data set needs --num-classes (>= 2) or a class list.")
        samples = folder_pairs(spec.root, encoding=MaskEncoding.INDEX)
        ignore = DEFAULT_IGNORE_INDEX
    splits: dict[str, list[str]] = {}
    if not (spec.root / "images").is_dir():
        for img_dir, _ in find_isic_pairs(spec.root):
            names = {s.stem for s in img_dir.iterdir()}
            splits[img_dir.name] = [s.name for s in samples if s.name in names]
        if len(splits) < 2:
            splits = {}
    return DatasetInfo(spec, samples, task, classes, ignore, 3, IMAGENET, (256, 256), splits)


def _isbi(spec: DatasetSpec) -> DatasetInfo:
    samples = isbi_samples(spec.root)
    return DatasetInfo(spec, samples, "binary", ["membrane"], None, 1, ISBI_NORMALIZATION, (256, 256))


def open_dataset(spec: DatasetSpec | str, **options) -> DatasetInfo:
    """List a data set: ``open_dataset("kvasir:/data/kvasir-seg")`` or a ``DatasetSpec``."""
    spec = DatasetSpec.parse(spec, **options)
    if spec.kind is DatasetKind.CAMVID:
        return _camvid(spec)
    if spec.kind is DatasetKind.CITYSCAPES:
        return _cityscapes(spec)
    if spec.kind is DatasetKind.ISBI:
        return _isbi(spec)
    foreground = {DatasetKind.KVASIR: "polyp", DatasetKind.ISIC: "lesion"}.get(spec.kind, "foreground")
    if spec.kind in (DatasetKind.KVASIR, DatasetKind.ISIC) and spec.task not in (None, "binary"):
        raise DataError(f"{spec.kind.value} is a binary data set; drop task={spec.task!r}.")
    return _folder(spec, foreground)
