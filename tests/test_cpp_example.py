"""examples/cpp builds with CMake against the pip wheel's OpenVINO and gives Segmenter's masks.

The example is configured and built once in a temporary folder, then run on 8 real Kvasir-SEG
images (sizes 570x531 to 1348x1070) with IRs that exercise every branch of its pre- and
postprocessing: the shipped model (embedded u8 preprocessing; one-channel logits, and the binary
pair export writes; stretch and letterbox), and tiny IRs with raw f32 NCHW input (normalized in
C++), three classes, a mask head and dynamic height/width. Its ``OUT/masks/NAME.png`` are
compared with ``Segmenter.predict`` at the same inference precision, pixel by pixel.

Where pixels may differ: only through OpenCV, which differs between the pip wheel (Python, 4.14)
and Debian's libopencv-dev (C++, 4.6); the network is the same OpenVINO on both sides. Measured on
100 Kvasir-SEG images (benchmarks/cpp_parity.py): JPEG decoding plus the area resize give
byte-identical input tensors, but the bilinear resize of f32 scores back to the image differs
(about half the values, by up to ~3e-5), which flips a pixel only where the score margin is
below that, i.e. at the threshold on a region boundary: 0 pixels at f32, 1 pixel on 1 image of
100 at bf16. The test reports how many differing pixels lie on a boundary.

Skipped, with the reason, only when a build prerequisite is missing (cmake, a C++ compiler,
OpenCV or nlohmann-json development files); with ``ATTNSEG_REQUIRE_CPP=1`` (set by .ci/run) a
missing prerequisite fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "cpp"
MIN_EQUAL = 0.999


def _missing_prerequisites() -> list[str]:
    missing = [tool for tool in ("cmake", "make") if shutil.which(tool) is None]
    if shutil.which("c++") is None and shutil.which("g++") is None and shutil.which("clang++") is None:
        missing.append("a C++ compiler (g++)")
    opencv = [Path("/usr/include/opencv4/opencv2/core.hpp"), Path("/usr/local/include/opencv4/opencv2/core.hpp")]
    if not any(p.is_file() for p in opencv) and not os.environ.get("OpenCV_DIR"):
        missing.append("OpenCV headers (apt-get install libopencv-dev)")
    if not any(Path(d, "nlohmann", "json.hpp").is_file() for d in ("/usr/include", "/usr/local/include")):
        missing.append("nlohmann-json (apt-get install nlohmann-json3-dev)")
    return missing


@pytest.fixture(scope="module")
def cpp_app(tmp_path_factory) -> Path:
    missing = _missing_prerequisites()
    if missing:
        reason = f"the C++ example's build prerequisites are missing: {', '.join(missing)}"
        if os.environ.get("ATTNSEG_REQUIRE_CPP") == "1":
            pytest.fail(reason + " (ATTNSEG_REQUIRE_CPP=1)")
        pytest.skip(reason)
    import openvino

    build = tmp_path_factory.mktemp("cpp_build")
    ov_dir = Path(openvino.__file__).parent / "cmake"
    for cmd in (["cmake", "-S", str(EXAMPLE), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 f"-DOpenVINO_DIR={ov_dir}"],
                ["cmake", "--build", str(build), "-j2"]):
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    app = build / "attnseg_infer"
    assert app.is_file()
    return app


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels within one pixel of a change of class."""
    import cv2

    m = mask.astype(np.int32)
    k = np.ones((3, 3), np.uint8)
    return cv2.dilate(m.astype(np.float32), k) != cv2.erode(m.astype(np.float32), k)


def _compare(app: Path, xml: Path, images: list[Path], out: Path, precision: str = "f32") -> dict[str, float]:
    import cv2

    from attnseg.runtime import Segmenter

    folder = out / "images"
    folder.mkdir(parents=True)
    for p in images:
        shutil.copy(p, folder / p.name)
    res = subprocess.run([str(app), str(xml), str(folder), "-o", str(out / "cpp"), "-d", "CPU",
                          "--inference-precision", precision], capture_output=True, text=True, timeout=600,
                         check=False)
    assert res.returncode == 0, f"attnseg_infer failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    assert "Latency" in res.stdout and "Median" in res.stdout, res.stdout
    seg = Segmenter(xml, inference_precision=precision)
    assert seg.inference_precision == precision
    codec = seg.codec  # its mask_picture is what seg-infer writes: binary 0/255, class ids otherwise
    equal, problems = {}, []
    for p in images:
        expected = codec.mask_picture(seg.predict(folder / p.name).mask)
        got = cv2.imread(str(out / "cpp" / "masks" / f"{p.stem}.png"), cv2.IMREAD_UNCHANGED)
        assert got is not None, f"no mask for {p.name}"
        assert got.shape == expected.shape and got.dtype == expected.dtype, (got.shape, expected.shape)
        same = got == expected
        equal[p.name] = float(same.mean())
        if equal[p.name] < MIN_EQUAL:
            diff = ~same
            on_edge = int((diff & _boundary(expected)).sum())
            problems.append(f"{p.name}: {equal[p.name]:.5%} equal, {int(diff.sum())} pixels differ, "
                            f"{on_edge} of them on a region boundary")
    assert not problems, f"{xml.parent.name}: C++ masks differ from Segmenter's:\n" + "\n".join(problems)
    return equal


def _pair_ir(shipped_ir: Path, root: Path) -> Path:
    """The shipped weights with the two-channel logits head seg-export writes for binary models."""
    import openvino as ov

    from attnseg.export.options import OutputKind
    from attnseg.export.to_openvino import add_output_head
    from attnseg.metadata import ModelMetadata
    from tests.runtime._irs import save

    meta = ModelMetadata.read_json(shipped_ir.with_suffix(".json"))
    model = add_output_head(ov.Core().read_model(str(shipped_ir)), OutputKind.LOGITS, 1, meta.threshold)
    meta.output_spec = {"binary_pair": True, "channels": 2, "dtype": "f32"}
    return save(model, meta, root / "shipped_pair" / "model.xml")


@pytest.mark.slow
def test_cpp_masks_match_segmenter_on_the_shipped_model(cpp_app, shipped_ir, shipped_letterbox_ir, kvasir_images,
                                                          tmp_path):
    pair = _pair_ir(shipped_ir, tmp_path)
    for name, xml in (("logits", shipped_ir), ("pair", pair), ("letterbox", shipped_letterbox_ir)):
        equal = _compare(cpp_app, xml, kvasir_images, tmp_path / name)
        assert len(equal) == len(kvasir_images) and min(equal.values()) >= MIN_EQUAL


@pytest.mark.slow
def test_cpp_masks_match_segmenter_in_bf16(cpp_app, shipped_ir, kvasir_images, tmp_path):
    """The same precision on both sides gives the same masks in bf16 too (where the CPU has it)."""
    import openvino as ov

    if "BF16" not in " ".join(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")):
        pytest.skip("this CPU has no bf16")
    _compare(cpp_app, shipped_ir, kvasir_images[:4], tmp_path, precision="bf16")


@pytest.mark.parametrize("variant", ["binary_ir", "multiclass_ir", "mask_ir", "dynamic_ir"])
def test_cpp_masks_match_segmenter_on_every_ir_kind(cpp_app, variant, request, kvasir_images, tmp_path):
    """Raw f32 NCHW input normalized in C++ (binary_ir, dynamic_ir), three classes (class ids, not
    0/255), a mask head, and dynamic height/width (padded to a multiple of 16 and cropped back)."""
    _compare(cpp_app, request.getfixturevalue(variant), kvasir_images[:4], tmp_path)


def test_cpp_refuses_a_newer_metadata_schema(cpp_app, binary_ir, kvasir_images, tmp_path):
    import openvino as ov

    from attnseg.metadata import RT_INFO_KEY

    model = ov.Core().read_model(str(binary_ir))
    text = model.get_rt_info([RT_INFO_KEY, "json"]).astype(str).replace('"schema_version": 2', '"schema_version": 99')
    model.set_rt_info(text, [RT_INFO_KEY, "json"])
    xml = tmp_path / "future" / "model.xml"
    xml.parent.mkdir()
    ov.save_model(model, str(xml), compress_to_fp16=False)
    res = subprocess.run([str(cpp_app), str(xml), str(kvasir_images[0]), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 2 and "schema_version 99" in res.stderr, res.stderr


def test_cpp_video_frames_match_seg_infer(cpp_app, binary_ir, kvasir_images, tmp_path):
    """A video (real Kvasir-SEG frames, mp4v) gives seg-infer's masks/frame_NNNNNN.png, pixel for pixel
    (both decode it with FFmpeg: the wheel's in Python, Debian's in C++)."""
    import cv2

    from attnseg.cli.infer import main

    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 256))
    for p in kvasir_images[:5]:
        writer.write(cv2.resize(cv2.imread(str(p)), (320, 256), interpolation=cv2.INTER_AREA))
    writer.release()
    res = subprocess.run([str(cpp_app), str(binary_ir), str(video), "-o", str(tmp_path / "cpp"),
                          "--inference-precision", "f32"], capture_output=True, text=True, timeout=300, check=False)
    assert res.returncode == 0, res.stderr
    assert main([str(binary_ir), str(video), "-o", str(tmp_path / "py"), "--inference-precision", "f32", "-q",
                 "--no-overlays"]) == 0
    names = sorted(p.name for p in (tmp_path / "py" / "masks").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "cpp" / "masks").iterdir()) == \
        [f"frame_{i:06d}.png" for i in range(5)]
    for name in names:
        a = cv2.imread(str(tmp_path / "py" / "masks" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "cpp" / "masks" / name), cv2.IMREAD_UNCHANGED)
        assert a.shape == b.shape and float((a == b).mean()) >= MIN_EQUAL, name


@pytest.fixture(scope="module")
def grey_ir(tmp_path_factory) -> Path:
    """A one-channel (grey) AttU_Net with raw f32 input: the C++ side converts BGR to grey itself."""
    import openvino as ov
    import torch

    from attnseg.export.options import OutputKind
    from attnseg.export.to_openvino import add_output_head
    from attnseg.metadata import ModelMetadata, Normalization
    from attnseg.models import AttU_Net
    from tests.runtime._irs import SIZE, save

    torch.manual_seed(0)
    net = AttU_Net(img_ch=1, output_ch=1, base_width=4)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 1, *SIZE))
        net.eval()
        net.Conv_1x1.bias -= net(torch.randn(4, 1, *SIZE)).median()
    m = ov.convert_model(net, example_input=torch.randn(1, 1, *SIZE), input=[ov.PartialShape([1, 1, *SIZE])])
    m.inputs[0].get_tensor().set_names({"image"})
    m.outputs[0].get_tensor().set_names({"logits"})
    m = add_output_head(m, OutputKind.LOGITS, 1, 0.5)
    meta = ModelMetadata(task="binary", classes=["membrane"], arch="AttU_Net", input_size=list(SIZE),
                         input_layout="NCHW", input_dtype="f32", input_channels=1, batch=1,
                         normalization=Normalization(mean=(0.5,), std=(0.25,), channel_order="GRAY"),
                         output="logits", input_divisor=16)
    return save(m, meta, tmp_path_factory.mktemp("grey") / "model.xml")


def test_cpp_masks_match_segmenter_on_a_grey_model(cpp_app, grey_ir, kvasir_images, tmp_path):
    _compare(cpp_app, grey_ir, kvasir_images[:4], tmp_path)
