"""``manifest.jsonl``: one line per image a run finished or failed, the record a resume reads.

A line is appended only after the image's files were renamed into place, so "in the manifest
with status ok and its files present" means done; a run killed in between redoes that image.
The last line of a killed run may be cut short: it is ignored (and the image redone).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from attnseg.errors import InputFileError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"


class Manifest:
    """Append-only JSON lines; the latest record of a key wins."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.path = Path(folder) / MANIFEST_NAME
        self.records: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()
        self._fh = None

    def _load(self) -> None:
        bad = 0
        with self.path.open("r", encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                    self.records[str(record["key"])] = record
                except (json.JSONDecodeError, KeyError, TypeError):
                    bad += 1
        if bad:
            log.warning("%s: ignored %d unreadable line(s) (a killed run's last write)", self.path, bad)

    def done(self, key: str, expected: Iterable[str]) -> bool:
        """Finished by an earlier run: recorded ok and every expected file is present."""
        record = self.records.get(key)
        if record is None or record.get("status") != "ok":
            return False
        folder = self.path.parent
        return all((folder / rel).is_file() for rel in expected)

    def append(self, record: Mapping[str, Any]) -> None:
        """One line, flushed at once, so a killed run loses at most the line being written."""
        if self._fh is None:
            try:
                cut = self.path.is_file() and self.path.stat().st_size > 0 and not self._ends_with_newline()
                self._fh = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                raise InputFileError(f"Cannot write {self.path}: {exc.strerror}.") from None
            if cut:  # a killed run's half line: start ours on a line of its own
                self._fh.write("\n")
        self._fh.write(json.dumps(record, sort_keys=True) + "\n")
        self._fh.flush()
        self.records[str(record["key"])] = dict(record)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
