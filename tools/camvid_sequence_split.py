#!/usr/bin/env python
"""Write splits/camvid-by-sequence.json: CamVid split by video sequence, not by frame.

Only CamVid's val (101 frames of sequence 0016E5) and test (62 of 0001TP, 171 of Seq05VD)
folders are available here. Neighbouring frames of one sequence are near-duplicates, so a
random frame split leaks, and training on val alone (one daylight sequence) does not carry
over to the other sequences (test mIoU 0.16 for an AttU_Net w16 that scored 0.77 on held-out
frames of its own sequence). This split trains on 0016E5 and 0001TP and tests on the unseen
sequence Seq05VD; validation is the last frames of each training sequence (a contiguous tail,
so its neighbours in time are few). It is *not* the official CamVid protocol (train 367 /
val 101 / test 233): figures on it are not comparable with published ones.

    python tools/camvid_sequence_split.py ../shared/data/camvid
"""

from __future__ import annotations

import sys
from pathlib import Path

from attnseg.data import open_dataset
from attnseg.data.splits import write_split

VAL_TAIL = {"0016E5": 10, "0001TP": 8}
TEST_SEQUENCES = ("Seq05VD",)


def main(root: str) -> int:
    names = sorted(s.name for s in open_dataset(f"camvid:{root}").samples)
    parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for seq in sorted({n.split("_")[0] for n in names}):
        frames = [n for n in names if n.split("_")[0] == seq]
        if seq in TEST_SEQUENCES:
            parts["test"] += frames
            continue
        tail = VAL_TAIL.get(seq, max(1, len(frames) // 10))
        parts["train"] += frames[:-tail]
        parts["val"] += frames[-tail:]
    out = write_split(Path(__file__).resolve().parents[1] / "splits" / "camvid-by-sequence.json", parts)
    print(out, {k: len(v) for k, v in parts.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/camvid"))
