"""What a cluster run segments, and the manifest a resume reads: no Ray needed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from attnseg.cluster import Location, Store, plan_inputs
from attnseg.cluster.inputs import key_of
from attnseg.cluster.manifest import (
    MANIFEST_NAME,
    build_index,
    digest,
    dumps_shard,
    merge,
    read_records,
    signature,
)
from attnseg.errors import InputFileError


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for name in ("b.jpg", "a.png", "sub/c.jpg"):
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 90, np.uint8))
    (folder / "notes.txt").write_text("x")
    return folder


def _keys(plan):
    return [key_of(p) for p in plan.paths]


def test_folder_glob_list_and_image(images, tmp_path):
    folder = plan_inputs(images)
    assert folder.kind == "folder" and _keys(folder) == ["a.png", "b.jpg"] and folder.root is None
    assert all(p.startswith("/") for p in folder.paths)

    glob = plan_inputs(str(images / "**" / "*.jpg"))
    assert glob.kind == "glob" and _keys(glob) == ["b.jpg", "c.jpg"]

    listing = tmp_path / "list.txt"
    listing.write_text("# the polyps\nimgs/sub/c.jpg\n\n" + str(images / "a.png") + "\nimgs/missing.jpg\n")
    plan = plan_inputs(listing)
    assert plan.kind == "list" and _keys(plan) == ["c.jpg", "a.png", "missing.jpg"]
    assert plan.paths[0] == str(images / "sub" / "c.jpg")

    one = plan_inputs(images / "a.png", max_frames=5)
    assert one.kind == "image" and _keys(one) == ["a.png"]
    assert _keys(plan_inputs(images, max_frames=1)) == ["a.png"]


def test_inputs_naming_nothing_or_colliding_are_errors(images, tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        plan_inputs(tmp_path / "nope")
    with pytest.raises(InputFileError, match="matches no images"):
        plan_inputs(str(images / "*.bmp"))
    cv2.imwrite(str(images / "sub" / "b.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(InputFileError, match=r"would both write masks/b\.png"):
        plan_inputs(str(images / "**" / "b.*"))
    cv2.imwrite(str(images / "a.jpg"), np.zeros((4, 4, 3), np.uint8))  # beside a.png: one folder
    with pytest.raises(InputFileError, match=r"a\.jpg and .*a\.png would both write masks/a\.png"):
        plan_inputs(images)
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
    assert plan.is_video and plan.fps == pytest.approx(10.0) and plan.total == 7
    assert [(u.key, u.frame) for u in plan.units] == [(f"frame_{i:06d}", i) for i in range(7)]
    assert plan.identity == f"{video.stat().st_size}:{video.stat().st_mtime_ns}"
    assert len(plan_inputs(video, max_frames=3).units) == 3


def test_manifest_shards_merge_latest_wins_and_a_cut_line_is_ignored(tmp_path):
    store = Store(Location.of(tmp_path))
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "a.png").write_bytes(b"png")
    sig = signature({"masks": True}, None, "auto", "CPU")
    ok = {"status": "ok", "signature": sig, "model": "/m.xml"}
    store.write(MANIFEST_NAME, dumps_shard([{"key": "a.jpg", "status": "error", "error": "boom", "time": 1}]))
    store.write("manifest.d/r1-w1-000001.jsonl", dumps_shard([
        {**ok, "key": "a.jpg", "content": "h1", "outputs": ["masks/a.png"], "time": 2},
        {**ok, "key": "b.jpg", "content": "h2", "outputs": ["masks/b.png"], "time": 2}])
        + b'{"key": "c.jpg", "stat')  # a killed worker's half-written shard line
    records = read_records(store)
    assert sorted(records) == ["a.jpg", "b.jpg"] and records["a.jpg"]["status"] == "ok"

    index, meta = build_index(str(tmp_path), sig)
    assert meta == {"models": ["/m.xml"], "records": 2}
    assert index.dtype == np.uint64 and list(index) == [digest("a.jpg", "h1", sig)]  # b's mask is gone: redo
    assert digest("a.jpg", "h1", sig) != digest("a.jpg", "h1-changed", sig)  # new content: redo
    assert len(build_index(str(tmp_path), signature({"masks": False}, None, "auto", "CPU"))[0]) == 0

    merged = merge(store)
    assert sorted(merged) == ["a.jpg", "b.jpg"] and not list((tmp_path / "manifest.d").glob("*.jsonl"))
    assert [json.loads(line)["key"] for line in (tmp_path / MANIFEST_NAME).read_text().splitlines()] == [
        "a.jpg", "b.jpg"]
    assert list(build_index(str(tmp_path), sig)[0]) == [digest("a.jpg", "h1", sig)]  # the same after merging


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


def test_object_store_folders_globs_and_lists_are_listed_by_name(s3_server, images):
    from tests.cluster.conftest import upload

    upload(s3_server, "plan", "imgs", images)  # a.png, b.jpg, notes.txt
    upload(s3_server, "plan", "imgs/sub", images / "sub")
    s3_server.put_object(Bucket="plan", Key="lists/two.txt", Body=b"# two\n../imgs/b.jpg\ns3://plan/imgs/sub/c.jpg\n")

    folder = plan_inputs("s3://plan/imgs")
    assert (folder.kind, folder.root, folder.paths) == ("folder", "s3://plan/imgs", ["plan/imgs/a.png", "plan/imgs/b.jpg"])
    assert plan_inputs("s3://plan/imgs/**.jpg").paths == ["plan/imgs/b.jpg", "plan/imgs/sub/c.jpg"]
    listing = plan_inputs("s3://plan/lists/two.txt")
    assert listing.kind == "list" and listing.paths == ["plan/imgs/b.jpg", "plan/imgs/sub/c.jpg"]
    assert plan_inputs("s3://plan/imgs/a.png").kind == "image"
    with pytest.raises(InputFileError, match="does not exist"):
        plan_inputs("s3://plan/nothing-here")
    with pytest.raises(InputFileError, match="videos are read from local files"):
        plan_inputs("s3://plan/clip.mp4")
