"""Deterministic splits, their JSON file, and the bad inputs around them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnseg.data import (
    Sample,
    apply_split,
    load_or_make_split,
    make_split,
    make_split_keeping,
    read_split,
    write_split,
)
from attnseg.errors import DataError, InputFileError


def samples(n: int) -> list[Sample]:
    return [
        Sample(image=Path(f"/x/{i:03d}.jpg"), mask=Path(f"/y/{i:03d}.png"), name=f"{i:03d}") for i in range(n)
    ]


def test_make_split_counts_disjoint_and_deterministic():
    s = make_split(samples(100), seed=3)
    assert s.counts == {"train": 80, "val": 10, "test": 10}
    assert s.seed == 3
    allnames = s["train"] + s["val"] + s["test"]
    assert sorted(allnames) == [f"{i:03d}" for i in range(100)]
    # Listing order does not matter, the seed does.
    assert make_split(list(reversed(samples(100))), seed=3) == s
    assert make_split(samples(100), seed=4) != s
    assert s["test"] == sorted(s["test"])


def test_make_split_rounding_and_counts():
    s = make_split(samples(7), fractions={"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    assert s.counts == {"train": 5, "val": 1, "test": 1}
    s = make_split(samples(50), test_count=7, seed=0, fractions={"train": 0.9, "val": 0.1})
    assert s.counts == {"train": 39, "val": 4, "test": 7}
    s = make_split(samples(3), seed=0)  # every requested split gets at least one sample
    assert s.counts == {"train": 1, "val": 1, "test": 1}


def test_make_split_bad_input():
    with pytest.raises(DataError, match="too few samples"):
        make_split(samples(2), seed=0)
    with pytest.raises(DataError, match="must sum to 1"):
        make_split(samples(10), fractions={"train": 0.5, "test": 0.2})
    with pytest.raises(DataError, match="too few samples"):
        make_split(samples(10), test_count=11)


def test_split_file_roundtrip(tmp_path):
    s = make_split(samples(20), seed=7)
    path = write_split(tmp_path / "split.json", s)
    doc = json.loads(path.read_text())
    assert doc["seed"] == 7 and doc["counts"] == {"train": 16, "val": 2, "test": 2}
    back = read_split(path)
    assert back == s and back.seed == 7
    test = apply_split(samples(20), back, "test")
    assert [x.name for x in test] == s["test"]


def test_apply_split_errors(tmp_path):
    s = make_split(samples(20), seed=0)
    with pytest.raises(DataError, match=r"Split 'val' is empty"):
        apply_split(samples(20), {"train": s["train"], "val": []}, "val")
    with pytest.raises(
        DataError, match=r"Split 'valid' is not in the split file \(it has: train, val, test\)"
    ):
        apply_split(samples(20), s, "valid")
    with pytest.raises(DataError, match=r"Split 'train': \d+ of 16 samples are not in the data set"):
        apply_split(samples(10), s, "train")
    with pytest.raises(InputFileError, match="Split file .*missing.json does not exist"):
        read_split(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_split(tmp_path / "bad.json")
    (tmp_path / "twice.json").write_text(json.dumps({"train": ["a"], "test": ["a"]}))
    with pytest.raises(DataError, match="sample a is in both 'train' and 'test'"):
        read_split(tmp_path / "twice.json")


def test_load_or_make_split_keeps_the_file(tmp_path):
    path = tmp_path / "split.json"
    first = load_or_make_split(path, samples(30), seed=1)
    assert path.exists()
    # More images later, another seed: the written split still rules.
    again = load_or_make_split(path, samples(40), seed=99)
    assert again == first
    with pytest.raises(DataError, match="lists \\d+ samples that are not in the data set"):
        load_or_make_split(path, samples(10), seed=1)


def test_make_split_keeping_an_official_test_set():
    official = ["001", "005", "009"]
    s = make_split_keeping(samples(13), {"test": official}, {"train": 0.8, "val": 0.2}, seed=0)
    assert s["test"] == official
    assert s.counts == {"train": 8, "val": 2, "test": 3}
    assert not set(s["train"] + s["val"]) & set(official)
    with pytest.raises(DataError, match="unknown samples: 999"):
        make_split_keeping(samples(5), {"test": ["999"]}, {"train": 1.0}, seed=0)
