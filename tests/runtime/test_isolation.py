"""The runtime (and seg-infer) work in a process where torch, nncf and onnx cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

BLOCKED = ("torch", "torchvision", "nncf", "onnx", "onnxruntime", "onnxscript")

SCRIPT = textwrap.dedent(
    """
    import importlib.abc, json, sys, time

    BLOCKED = set(sys.argv[1].split(","))
    attempts = []

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ImportError(f"import of {name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())

    t0 = time.perf_counter()
    import attnseg.runtime
    import_s = time.perf_counter() - t0
    from attnseg.runtime import Segmenter, overlay
    from attnseg.imaging import read_image

    xml, image, out = sys.argv[2], sys.argv[3], sys.argv[4]
    seg = Segmenter(xml)
    r = seg.predict(image, return_probabilities=True)
    many = Segmenter(xml, hint="throughput", inference_precision=seg.inference_precision)
    streamed = [x.mask for x in many.stream([image, image])]
    picture = overlay.overlay(read_image(image), r.mask)
    heat = overlay.heatmap(next(iter(r.attention.values())), read_image(image))

    from attnseg.cli.infer import main
    rc = main([xml, image, "-o", out, "--attention-maps", "-q"])
    print(json.dumps({
        "import_s": import_s,
        "mask_shape": list(r.mask.shape),
        "attention": sorted(r.attention),
        "stream_equal": all((m == r.mask).all() for m in streamed),
        "overlay_shape": list(picture.shape), "heat_shape": list(heat.shape),
        "cli_rc": rc,
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
        "attempts": attempts,
    }))
    """
)


def test_runtime_and_cli_run_without_torch_nncf_onnx(embedded_att_ir, kvasir_images, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(BLOCKED), str(embedded_att_ir), str(kvasir_images[0]),
         str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert report["attempts"] == [], f"something tried to import {report['attempts']}"
    assert report["mask_shape"] == list(__import__("cv2").imread(str(kvasir_images[0])).shape[:2])
    assert report["attention"] == ["Att2", "Att3", "Att4", "Att5"]
    assert report["stream_equal"]
    assert report["overlay_shape"][2] == 3 and report["heat_shape"][2] == 3
    assert report["cli_rc"] == 0
    assert (tmp_path / "out" / "masks").is_dir() and (tmp_path / "out" / "summary.json").is_file()
    print(f"import attnseg.runtime: {report['import_s']:.3f} s")  # reported, never asserted
