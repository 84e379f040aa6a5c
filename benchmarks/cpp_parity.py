"""The C++ example (examples/cpp) against the Python runtime: equal mask pixels and latency.

Builds ``attnseg_infer`` with CMake (or takes ``--app``), exports the shipped model (FP32 IR,
seg-export's defaults), runs both on the first ``--images`` Kvasir-SEG images at each
``--precision``, and compares ``OUT/masks/NAME.png`` with ``Segmenter.predict`` encoded as
seg-infer writes it. Reports per precision: images, the share of equal pixels (min / mean),
images below 100%, differing pixels and how many lie on a region boundary, and the median
per-image latency of each side (C++: preprocess + infer + decode, from its latency line;
Python: ``SegmentationResult.timings.total``). tests/test_cpp_example.py checks the same on 8
images; this is the larger run behind the README's figures.

    python benchmarks/cpp_parity.py --out benchmarks/results

Writes ``cpp_parity.json`` / ``.md``. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from live_latency import machine


def build(work: Path) -> Path:
    import openvino

    build_dir = work / "build"
    for cmd in (["cmake", "-S", str(HERE.parent / "examples" / "cpp"), "-B", str(build_dir),
                 "-DCMAKE_BUILD_TYPE=Release", f"-DOpenVINO_DIR={Path(openvino.__file__).parent / 'cmake'}"],
                ["cmake", "--build", str(build_dir), "-j2"]):
        subprocess.run(cmd, check=True, capture_output=True)
    return build_dir / "attnseg_infer"


def compare(app: Path, xml: Path, images: list[Path], work: Path, precision: str) -> dict:
    import cv2

    from attnseg.runtime import Segmenter

    out = work / f"cpp_{precision}"
    shutil.rmtree(out, ignore_errors=True)
    res = subprocess.run([str(app), str(xml), str(images[0].parent), "-o", str(out), "--inference-precision",
                          precision, "--max-frames", str(len(images))], capture_output=True, text=True, check=True)
    cpp_median = float(re.search(r"Median ([0-9.]+) ms", res.stdout).group(1))
    seg = Segmenter(xml, inference_precision=precision)
    k = np.ones((3, 3), np.uint8)
    equal, lat, below = [], [], []
    for p in images:
        r = seg.predict(p)
        lat.append(r.timings.total)
        expected = seg.codec.mask_picture(r.mask)
        got = cv2.imread(str(out / "masks" / f"{p.stem}.png"), cv2.IMREAD_UNCHANGED)
        same = got == expected
        equal.append(float(same.mean()))
        if not same.all():
            m = expected.astype(np.float32)
            edge = cv2.dilate(m, k) != cv2.erode(m, k)
            below.append({"image": p.name, "equal": round(float(same.mean()), 6), "differ": int((~same).sum()),
                          "on_boundary": int((~same & edge).sum())})
    return {"precision": seg.inference_precision, "images": len(images), "equal_min": round(min(equal), 6),
            "equal_mean": round(float(np.mean(equal)), 6), "images_below_100pct": below,
            "cpp_latency_ms_median": cpp_median, "python_latency_ms_median": round(float(np.median(lat)), 2)}


def markdown(r: dict) -> str:
    lines = ["# C++ example vs Segmenter (benchmarks/cpp_parity.py)", "", f"`{r['command']}`", "",
             (f"CPU: {r['machine']['cpu']}, {r['machine']['cores']} cores, shared (load average "
             f"{r['load_average_start'][0]:.1f} at the start). Shipped model, FP32 IR from seg-export; the first "
             f"{r['runs'][0]['images']} Kvasir-SEG images (sorted by name; 332-1920 px wide). C++: Debian OpenCV "
             f"{r['opencv_cpp']}; Python: opencv-python {r['opencv_python']}; OpenVINO {r['openvino']} on both sides."),
             "", "| precision | images | equal pixels min | mean | images < 100% | C++ median ms | Python median ms |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for x in r["runs"]:
        lines.append(f"| {x['precision']} | {x['images']} | {x['equal_min']:.4%} | {x['equal_mean']:.4%} | "
                     f"{len(x['images_below_100pct'])} | {x['cpp_latency_ms_median']:.1f} | "
                     f"{x['python_latency_ms_median']:.1f} |")
    for x in r["runs"]:
        for b in x["images_below_100pct"]:
            lines.append(f"- {x['precision']} {b['image']}: {b['equal']:.4%} equal, {b['differ']} pixels differ, "
                         f"{b['on_boundary']} on a region boundary")
    lines += ["", ("Latency per image: C++ = preprocess + infer + decode (its latency line); Python = "
              "`SegmentationResult.timings.total` (the same stages). Both exclude reading the file."), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "kvasir-seg")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--precision", nargs="+", default=["f32", "bf16"])
    p.add_argument("--app", type=Path, default=None, help="a built attnseg_infer (default: build one)")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "attnseg-cpp-parity")
    p.add_argument("--out", type=Path, default=HERE / "results")
    args = p.parse_args(argv)
    import cv2
    import openvino

    from attnseg.export import AdvancedExportParameters, export
    from attnseg.zoo import default_checkpoint

    args.work.mkdir(parents=True, exist_ok=True)
    images_dir = args.work / "images"
    shutil.rmtree(images_dir, ignore_errors=True)
    images_dir.mkdir()
    images = []
    for src in sorted((args.data / "images").glob("*.jpg"))[:args.images]:
        images.append(Path(shutil.copy(src, images_dir / src.name)))
    xml = args.work / "shipped" / "model.xml"
    if not xml.is_file():
        export(default_checkpoint(), output_dir=xml.parent, force=True,
               advanced=AdvancedExportParameters(parity_batches=1))
    app = args.app or build(args.work)
    opencv_cpp = subprocess.run(["pkg-config", "--modversion", "opencv4"], capture_output=True, text=True,
                                check=False).stdout.strip() or "?"
    report = {"command": "python benchmarks/cpp_parity.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine(), "load_average_start": list(os.getloadavg()), "openvino": openvino.__version__,
              "opencv_python": cv2.__version__, "opencv_cpp": opencv_cpp,
              "runs": [compare(app, xml, images, args.work, prec) for prec in args.precision]}
    report["load_average_end"] = list(os.getloadavg())
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cpp_parity.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "cpp_parity.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
