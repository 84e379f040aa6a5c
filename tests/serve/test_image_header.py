"""The declared-size check (``attnseg.imaging.check_image_size``) that protects the server, Segmenter,
seg-infer and the Ray workers: sizes read from headers without decoding, bombs refused before."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from attnseg import imaging


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm", ".pgm"])
def test_declared_size_of_every_format_opencv_writes(ext):
    img = np.zeros((37, 53, 3), np.uint8)
    ok, buf = cv2.imencode(ext, img[:, :, 0] if ext == ".pgm" else img)
    assert ok
    assert imaging.declared_image_size(buf.tobytes()) == (37, 53)
    assert imaging.declared_image_size(buf) == (37, 53)  # a numpy buffer too


def test_declared_size_of_lossless_webp_and_progressive_jpeg():
    img = np.zeros((21, 34, 3), np.uint8)
    assert imaging.declared_image_size(cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, 101])[1]) == (21, 34)
    assert imaging.declared_image_size(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]) == (21, 34)


def test_unknown_or_cut_headers_give_none():
    for data in (b"", b"\xff\xd8", b"\x89PNG\r\n\x1a\n", b"not an image at all", b"BM12", b"GIF8"):
        assert imaging.declared_image_size(data) is None
    with pytest.raises(imaging.InputFileError, match="header"):
        imaging.check_image_size(b"not an image", 100, require_known=True)
    assert imaging.check_image_size(b"not an image", 100) is None  # the decoder decides


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    side = 10000
    ok, buf = cv2.imencode(".png", np.zeros((side, side), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok and buf.size < 1_000_000  # < 1 MB of file for 10^8 pixels
    path = tmp_path / "bomb.png"
    path.write_bytes(buf.tobytes())
    # Above the default limit (8192 x 8192) for read_image / decode_image, hence Segmenter, seg-infer, Ray workers.
    with pytest.raises(imaging.ImageTooLargeError, match="100,000,000 pixels") as err:
        imaging.read_image(path)
    assert err.value.http_status == 413 and "not decoded" in str(err.value)
    with pytest.raises(imaging.ImageTooLargeError, match="over the limit of 1,000"):
        imaging.decode_image(buf.tobytes(), max_pixels=1000)
    monkeypatch.setenv(imaging.MAX_IMAGE_PIXELS_ENV, "200000000")
    assert imaging.check_image_size(buf.tobytes()) == (side, side)
    monkeypatch.setenv(imaging.MAX_IMAGE_PIXELS_ENV, "lots")
    with pytest.raises(imaging.InputFileError, match=imaging.MAX_IMAGE_PIXELS_ENV):
        imaging.check_image_size(buf.tobytes())


def test_segmenter_refuses_the_bomb_by_path(tmp_path, zoo_export):
    from attnseg.runtime import Segmenter

    path = tmp_path / "bomb.png"
    path.write_bytes(cv2.imencode(".png", np.zeros((9000, 9000), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1])
    seg = Segmenter(zoo_export["xml"], device="CPU", hint="latency")
    with pytest.raises(imaging.ImageTooLargeError, match="81,000,000 pixels"):
        seg.predict(path)
