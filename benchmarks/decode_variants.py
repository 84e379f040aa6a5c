"""What a cheaper decode would cost in accuracy: the runtime's exact preprocessing against two
faster ones, on the Kvasir-SEG test split with the shipped model's FP32 IR.

* ``exact``: full JPEG decode, area resize to the model size (what training did; the runtime's
  ``Segmenter.predict(path)``);
* ``reduced2``: libjpeg's half-size decode (``cv2.IMREAD_REDUCED_COLOR_2``), then the same resize;
* ``linear``: full decode, bilinear resize (no area averaging when shrinking).

For each: mean Dice against the ground truth, the share of mask pixels that differ from
``exact``, and the CPU time per image of decode + resize. This is why ``stream()`` keeps the
exact path and leaves some throughput on the table when the model is small (README,
"Results on this project's machine").

    python benchmarks/decode_variants.py --out benchmarks/results

Writes ``decode_variants.json`` / ``.md`` in ``--out``. Not a test (a minute of work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from model_api_agreement import dice


def variants(size: tuple[int, int]) -> dict:
    import cv2

    from attnseg.imaging import read_image, resize_image

    h, w = size

    def reduced2(path: Path) -> np.ndarray:
        img = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_2)
        return resize_image(img, size)

    return {
        "exact": lambda path: resize_image(read_image(path), size),
        "reduced2": reduced2,
        "linear": lambda path: cv2.resize(read_image(path), (w, h), interpolation=cv2.INTER_LINEAR),
    }


def score(xml: Path, images: list[Path], masks: list[Path]) -> dict:
    import cv2

    from attnseg.runtime import Segmenter

    seg = Segmenter(xml, inference_precision="f32")
    out: dict = {}
    exact_masks: list[np.ndarray] = []
    for name, fed_by in variants(seg.input_size).items():
        dices, differ, cpu = [], [], []
        for i, (img_path, mask_path) in enumerate(zip(images, masks)):
            gt = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
            c0 = time.process_time()
            fed = fed_by(img_path)
            cpu.append((time.process_time() - c0) * 1e3)
            prep = seg.preprocess(fed)  # already at the model size: nothing is resized again
            prep.original_size = gt.shape  # map the mask back to the image, as predict(path) does
            mask = seg.postprocess(prep, seg.infer(prep)).mask
            if name == "exact":
                exact_masks.append(mask)
                assert np.array_equal(mask, seg.predict(img_path).mask), "exact must be predict(path)"
            dices.append(dice(mask, gt))
            differ.append(float((mask != exact_masks[i]).mean()))
        out[name] = {"dice": float(np.mean(dices)), "pixels_differing": float(np.mean(differ)),
                     "decode_resize_cpu_ms": statistics.median(cpu)}
        print(f"{name}: Dice {out[name]['dice']:.4f}, {100 * out[name]['pixels_differing']:.3f}% pixels differ, "
              f"decode + resize {out[name]['decode_resize_cpu_ms']:.2f} ms CPU", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "kvasir-seg"))
    ap.add_argument("--split", default=str(HERE.parent / "splits" / "kvasir-seg.json"))
    ap.add_argument("--split-name", default="test")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    args = ap.parse_args()

    from attnseg.benchmarking.machine import machine_info
    from attnseg.export import export
    from attnseg.zoo import default_checkpoint

    data = Path(args.data)
    names = json.loads(Path(args.split).read_text())["splits"][args.split_name]
    images = [next((data / "images").glob(f"{n}.*")) for n in names]
    masks = [next((data / "masks").glob(f"{n}.*")) for n in names]
    with tempfile.TemporaryDirectory() as tmp:
        exp = export(default_checkpoint(), output_dir=Path(tmp) / "export")
        results = score(Path(exp.xml_path), images, masks)
    info = machine_info()
    report = {"command": "python benchmarks/decode_variants.py " + " ".join(sys.argv[1:]),
              "split": f"{Path(args.split).name}:{args.split_name}", "images": len(images),
              "cpu": info.cpu_model, "load_average": os.getloadavg(), "results": results}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "decode_variants.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Decode and resize variants, shipped model FP32 IR at f32 ({info.cpu_model})", "",
             f"`{report['command']}`", "", f"{len(images)} images of {report['split']}.", "",
             "| variant | Dice | mask pixels differing from exact | decode + resize CPU ms / image |",
             "| --- | ---: | ---: | ---: |"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['dice']:.4f} | {100 * r['pixels_differing']:.3f}% | "
                     f"{r['decode_resize_cpu_ms']:.2f} |")
    (args.out / "decode_variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
