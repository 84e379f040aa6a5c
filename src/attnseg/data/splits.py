"""Deterministic, seeded train/val/test splits, kept in a JSON file so a test split stays one.

A split is a mapping ``{"train": [names], "val": [...], "test": [...]}`` of sample names. It
depends only on the sorted set of names and the seed, never on directory listing order, so
the same folder and seed give the same split on every machine. Once written, reuse the file
(``load_or_make_split``): re-deriving a split after adding images would move images between
train and test.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from attnseg.atomic import atomic_file
from attnseg.data.samples import Sample, name_list
from attnseg.errors import DataError, InputFileError

SPLIT_FORMAT = "attnseg.split/1"
DEFAULT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}


class Split(dict):
    """``dict[str, list[str]]`` of sample names per split, plus the seed that made it."""

    def __init__(self, parts: Mapping[str, list[str]], seed: int | None = None, fingerprint: str = ""):
        super().__init__({k: list(v) for k, v in parts.items()})
        self.seed = seed
        self.fingerprint = fingerprint

    @property
    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.items()}


def names_fingerprint(names: Iterable[str]) -> str:
    """sha256 of the sorted names: tells whether a split file was made for this data set."""
    h = hashlib.sha256()
    for n in sorted(names):
        h.update(n.encode("utf-8") + b"\n")
    return h.hexdigest()[:16]


def _names(samples: Iterable[Sample | str]) -> list[str]:
    names = [s if isinstance(s, str) else s.name for s in samples]
    if len(set(names)) != len(names):
        raise DataError("Sample names must be unique to make a split.")
    return sorted(names)


def _counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder rounding; every split with a positive fraction gets at least one."""
    raw = {k: f * n for k, f in fractions.items()}
    counts = {k: math.floor(v) for k, v in raw.items()}
    order = sorted(raw, key=lambda k: (-(raw[k] - counts[k]), list(fractions).index(k)))
    for k in order[: n - sum(counts.values())]:
        counts[k] += 1
    for k, f in fractions.items():
        if f > 0 and counts[k] == 0:
            donor = max(counts, key=lambda j: counts[j])
            counts[donor] -= 1
            counts[k] = 1
    return counts


def make_split(
    samples: Iterable[Sample | str],
    fractions: Mapping[str, float] | None = None,
    test_count: int | None = None,
    seed: int = 0,
    val_count: int | None = None,
) -> Split:
    """Shuffle the sorted sample names with ``seed`` and cut them into splits.

    ``fractions`` (default 0.8/0.1/0.1) must sum to 1. ``test_count`` / ``val_count`` fix those
    sizes exactly; the rest is shared by the other splits in proportion to their fractions.
    """
    names = _names(samples)
    n = len(names)
    fr = dict(DEFAULT_FRACTIONS if fractions is None else fractions)
    if not fr or any((not isinstance(v, (int, float))) or v < 0 or math.isnan(v) for v in fr.values()):
        raise DataError(f"Split fractions must be non-negative numbers, got {fr}.")
    fixed = {k: c for k, c in (("test", test_count), ("val", val_count)) if c is not None}
    for k, c in fixed.items():
        if c < 0:
            raise DataError(f"{k}_count must be >= 0, got {c}.")
        fr.setdefault(k, 0.0)
    if not fixed and abs(sum(fr.values()) - 1.0) > 1e-6:
        raise DataError(f"Split fractions must sum to 1, got {fr} (sum {sum(fr.values()):.3f}).")
    rest_keys = [k for k in fr if k not in fixed]
    rest_n = n - sum(fixed.values())
    needed = sum(1 for k in rest_keys if fr[k] > 0) + sum(1 for c in fixed.values() if c > 0)
    if rest_n < 0 or n < needed:
        raise DataError(
            f"Cannot split {n} samples into {', '.join(f'{k}' for k in fr)} "
            f"(fractions {fr}, fixed counts {fixed or 'none'}): too few samples."
        )
    counts = dict(fixed)
    rest_total = sum(fr[k] for k in rest_keys)
    if rest_keys:
        if rest_total <= 0:
            raise DataError(f"No split left for the remaining {rest_n} samples (fractions {fr}).")
        counts.update(_counts(rest_n, {k: fr[k] / rest_total for k in rest_keys}))
    elif rest_n:
        raise DataError(f"Fixed counts {fixed} leave {rest_n} samples without a split.")
    perm = np.random.default_rng(seed).permutation(n)
    parts: dict[str, list[str]] = {}
    start = 0
    for k in fr:
        idx = perm[start : start + counts[k]]
        parts[k] = sorted(names[i] for i in idx)
        start += counts[k]
    return Split(parts, seed=seed, fingerprint=names_fingerprint(names))


def make_split_keeping(
    samples: Iterable[Sample | str],
    keep: Mapping[str, list[str]],
    fractions: Mapping[str, float],
    seed: int = 0,
) -> Split:
    """Keep the parts in ``keep`` as given (e.g. an official test set) and split the other
    samples by ``fractions`` (which must sum to 1) with ``seed``."""
    names = _names(samples)
    known = set(names)
    kept: dict[str, list[str]] = {}
    used: set[str] = set()
    for k, part in keep.items():
        missing = [n for n in part if n not in known]
        if missing:
            raise DataError(f"Kept split '{k}' names {len(missing)} unknown samples: {name_list(missing)}.")
        if used & set(part):
            raise DataError(f"Kept split '{k}' overlaps another kept split.")
        used |= set(part)
        kept[k] = sorted(part)
    rest = [n for n in names if n not in used]
    inner = make_split(rest, fractions=fractions, seed=seed)
    parts = {**{k: inner[k] for k in fractions}, **kept}
    return Split(parts, seed=seed, fingerprint=names_fingerprint(names))


def write_split(path: str | Path, split: Mapping[str, list[str]], seed: int | None = None) -> Path:
    """Write ``split`` as JSON (format, seed, counts, fingerprint, names), atomically."""
    path = Path(path)
    seed = seed if seed is not None else getattr(split, "seed", None)
    all_names = [n for v in split.values() for n in v]
    doc = {
        "format": SPLIT_FORMAT,
        "seed": seed,
        "counts": {k: len(v) for k, v in split.items()},
        "fingerprint": getattr(split, "fingerprint", "") or names_fingerprint(all_names),
        "splits": {k: list(v) for k, v in split.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return path


def read_split(path: str | Path) -> Split:
    """Read a split file written by ``write_split`` (or a plain ``{"train": [...], ...}`` JSON)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"Split file {path} does not exist.")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"Split file {path} is not valid JSON ({e}).") from None
    parts = doc.get("splits", doc) if isinstance(doc, dict) else None
    if not isinstance(parts, dict) or not all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in parts.values()
    ):
        raise DataError(f"Split file {path} must map split names to lists of sample names.")
    seen: dict[str, str] = {}
    for k, v in parts.items():
        for n in v:
            if n in seen and seen[n] != k:
                raise DataError(f"Split file {path}: sample {n} is in both '{seen[n]}' and '{k}'.")
            seen[n] = k
    return Split(parts, seed=doc.get("seed"), fingerprint=doc.get("fingerprint", ""))


def apply_split(samples: Iterable[Sample], split: Mapping[str, list[str]], name: str) -> list[Sample]:
    """The samples of split ``name``, in the split's order; every listed name must exist."""
    if name not in split:
        raise DataError(f"Split '{name}' is not in the split file (it has: {', '.join(split) or 'nothing'}).")
    wanted = list(split[name])
    if not wanted:
        raise DataError(
            f"Split '{name}' is empty: nothing to train or evaluate on. Use a split with "
            f"samples in '{name}' (counts: { {k: len(v) for k, v in split.items()} })."
        )
    by_name = {s.name: s for s in samples}
    missing = [n for n in wanted if n not in by_name]
    if missing:
        raise DataError(
            f"Split '{name}': {len(missing)} of {len(wanted)} samples are not in the data set: "
            f"{name_list(missing)}. The split file belongs to another data set or images were removed."
        )
    return [by_name[n] for n in wanted]


def load_or_make_split(
    path: str | Path,
    samples: list[Sample],
    fractions: Mapping[str, float] | None = None,
    test_count: int | None = None,
    seed: int = 0,
) -> Split:
    """Reuse the split file at ``path`` if it exists (checked against ``samples``), else make and
    write one. Samples added since the file was written are reported, never silently assigned."""
    path = Path(path)
    if path.exists():
        split = read_split(path)
        have = {s.name for s in samples}
        listed = {n for v in split.values() for n in v}
        missing = sorted(listed - have)
        if missing:
            raise DataError(
                f"Split file {path} lists {len(missing)} samples that are not in the data set: "
                f"{name_list(missing)}. Point --split at the file made for this data set."
            )
        extra = sorted(have - listed)
        if extra:
            import logging

            logging.getLogger(__name__).warning(
                "%d samples are in no split of %s and are not used: %s", len(extra), path, name_list(extra)
            )
        return split
    split = make_split(samples, fractions=fractions, test_count=test_count, seed=seed)
    write_split(path, split)
    return split
