"""What a cluster run segments, and the manifest a resume reads: no Ray needed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from attnseg.cluster import Manifest, plan_inputs
from attnseg.errors import InputFileError


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.jpg", "a.png", "sub/c.jpg"):
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 90, np.uint8))
    (folder / "notes.txt").write_text("x")
    return folder


def test_folder_glob_list_and_image(images, tmp_path):
    folder = plan_inputs(images)
    assert folder.kind == "folder" and [u.key for u in folder.units] == ["a.png", "b.jpg"]
    assert all(u.frame is None and u.path.startswith("/") for u in folder.units)

    glob = plan_inputs(str(images / "**" / "*.jpg"))
    assert glob.kind == "glob" and [u.key for u in glob.units] == ["b.jpg", "c.jpg"]

    listing = tmp_path / "list.txt"
    listing.write_text("# the polyps\nimgs/sub/c.jpg\n\n" + str(images / "a.png") + "\nimgs/missing.jpg\n")
    plan = plan_inputs(listing)
    assert plan.kind == "list" and [u.key for u in plan.units] == ["c.jpg", "a.png", "missing.jpg"]
    assert plan.units[0].path == str((images / "sub" / "c.jpg").resolve())

    one = plan_inputs(images / "a.png", max_frames=5)
    assert one.kind == "image" and [u.key for u in one.units] == ["a.png"]
    assert [u.key for u in plan_inputs(images, max_frames=1).units] == ["a.png"]


def test_inputs_naming_nothing_or_colliding_are_errors(images, tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        plan_inputs(tmp_path / "nope")
    with pytest.raises(InputFileError, match="matches no images"):
        plan_inputs(str(images / "*.bmp"))
    cv2.imwrite(str(images / "sub" / "b.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputFileError, match=r"would both write masks/b\.png"):
        plan_inputs(str(images / "**" / "b.*"))
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(InputFileError, match="lists no image paths"):
        plan_inputs(empty)


def test_video_is_listed_frame_by_frame(tmp_path):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (32, 32))
    for i in range(7):
        writer.write(np.full((32, 32, 3), 30 * i, np.uint8))
    writer.release()
    plan = plan_inputs(video)
    assert plan.is_video and plan.fps == pytest.approx(10.0)
    assert [(u.key, u.frame) for u in plan.units] == [(f"frame_{i:06d}", i) for i in range(7)]
    assert len(plan_inputs(video, max_frames=3).units) == 3


def test_manifest_latest_record_wins_and_a_cut_line_is_ignored(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.png").write_bytes(b"png")
    m = Manifest(tmp_path)
    m.append({"key": "a.jpg", "status": "error", "error": "boom"})
    m.append({"key": "a.jpg", "status": "ok"})
    m.append({"key": "b.jpg", "status": "ok"})
    m.close()
    with m.path.open("a") as fh:
        fh.write('{"key": "c.jpg", "stat')  # a killed run's last, half-written line
    again = Manifest(tmp_path)
    assert sorted(again.records) == ["a.jpg", "b.jpg"]
    assert again.done("a.jpg", ["masks/a.png"])
    assert not again.done("b.jpg", ["masks/b.png"])  # recorded, but its mask is gone: redo it
    assert not again.done("c.jpg", [])
    assert [json.loads(line)["key"] for line in m.path.read_text().splitlines()[:3]] == ["a.jpg"] * 2 + ["b.jpg"]
    again.append({"key": "c.jpg", "status": "ok"})  # after the cut line, on a line of its own
    again.close()
    assert sorted(Manifest(tmp_path).records) == ["a.jpg", "b.jpg", "c.jpg"]


def test_runtime_and_local_seg_infer_never_import_ray():
    script = textwrap.dedent("""
        import sys
        import attnseg.runtime, attnseg.runtime.outputs, attnseg.cli.infer, attnseg.cluster
        from attnseg.cli.infer import build_parser
        build_parser().parse_args(["m.xml", "in", "--ray"])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "ray"))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
