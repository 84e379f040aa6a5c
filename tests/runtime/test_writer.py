"""``OutputWriter``: the one writer below seg-infer, the workers and live mode; the model's codec
decides the mask encoding (binary 0/255 whatever the class names) and the overlay."""

from __future__ import annotations

import cv2
import numpy as np

from attnseg.imaging import read_image
from attnseg.runtime import Segmenter
from attnseg.runtime.outputs import OutputOptions
from attnseg.runtime.writer import OutputWriter


def test_binary_model_named_normal_lesion_writes_0_255_masks_and_overlays(named_binary_ir, kvasir_images, tmp_path):
    seg = Segmenter(named_binary_ir)
    assert seg.classes == ["normal", "lesion"] and seg.codec.binary
    images = {p.name: read_image(p) for p in kvasir_images[:2]}
    encoded = {}
    with OutputWriter(tmp_path, seg.codec, OutputOptions(attention=False)) as writer:
        for result in seg.stream(list(images.items())):
            writer.write(result, images[result.source])
            encoded.update(writer.files(result, images[result.source]))
    for name, bgr in images.items():
        stem = name.rsplit(".", 1)[0]
        assert {f"masks/{stem}.png", f"overlays/{stem}.jpg"} <= set(encoded)
        written = tmp_path / "masks" / f"{stem}.png"
        assert written.read_bytes() == encoded[f"masks/{stem}.png"]  # files() is what write() writes
        png = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
        assert set(np.unique(png).tolist()) == {0, 255}
        assert np.array_equal(png > 0, seg.predict(bgr).mask > 0)
        assert cv2.imread(str(tmp_path / "overlays" / f"{stem}.jpg")).shape == bgr.shape


def test_video_frames_write_mask_pngs_and_one_overlay_video(binary_ir, kvasir_images, tmp_path):
    seg = Segmenter(binary_ir)
    frame = cv2.resize(read_image(kvasir_images[0]), (96, 80))
    with OutputWriter(tmp_path, seg.codec, OutputOptions(), video=True, fps=10) as writer:
        for i in range(3):
            result = seg.predict(frame)
            result.source = f"frame_{i:06d}"
            writer.write(result, frame)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == [f"frame_{i:06d}.png" for i in range(3)]
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    finally:
        cap.release()


def test_video_frames_skipped_by_index_hold_the_last_picture(binary_ir, kvasir_images, tmp_path):
    """A live run drops stale frames: the video repeats the newest picture over the gap, so it
    keeps the input's timing, and ``decorate`` (the live panel) is drawn on every video picture."""
    seg = Segmenter(binary_ir)
    frames = [cv2.resize(read_image(p), (96, 80)) for p in kvasir_images[:2]]
    marked = []

    def decorate(picture):
        marked.append(picture.shape)
        picture[:4, :4] = (0, 0, 255)
        return picture

    with OutputWriter(tmp_path, seg.codec, OutputOptions(), video=True, fps=10) as writer:
        for index, frame in ((2, frames[0]), (5, frames[1])):  # frames 0-1 and 3-4 were dropped
            pictures = writer.write(seg.predict(frame), frame, stem=f"frame_{index:06d}", index=index,
                                    decorate=decorate)
            assert tuple(pictures["overlay"][0, 0]) == (0, 0, 255)
    assert marked == [(80, 96, 3), (80, 96, 3)]
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["frame_000002.png", "frame_000005.png"]
    cap = cv2.VideoCapture(str(tmp_path / "overlay.mp4"))
    try:
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 6  # 0-2 from the first picture, 3-5 from the second
    finally:
        cap.release()
