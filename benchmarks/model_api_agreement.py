"""OpenVINO Model API vs attnseg's Segmenter on the same IRs: Dice against the ground truth and
mask agreement, on the Kvasir-SEG test split (the figures quoted in README / issue 13).

1. exports the shipped model (``attnseg/zoo/kvasir_attunet16.pt``) to an FP32 IR (embedded
   preprocessing, the default export) and quantizes it to INT8 with ``attnseg.optimize``
   (calibration on the bundled samples, as the main job does);
2. for each IR, loads it with ``model_api.models.SegmentationModel.create_model(xml)`` (no extra
   configuration: everything comes from the IR's ``model_info``) and with ``Segmenter``;
3. on every test image: both masks, Dice of each against the ground truth, and the share of
   pixels where the two masks agree.

    python benchmarks/model_api_agreement.py --data ../shared/data/kvasir-seg \
        --split splits/kvasir-seg.json --out benchmarks/results

Writes ``model_api_agreement.json`` / ``.md`` in ``--out``. Not a test (minutes of work).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("model_api_agreement")


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    p, g = pred > 0, gt > 0
    denom = int(p.sum()) + int(g.sum())
    return 1.0 if denom == 0 else 2.0 * float(np.logical_and(p, g).sum()) / denom


def compare(xml: Path, images: list[Path], masks: list[Path]) -> dict:
    """Per-image Dice of Model API and Segmenter masks against ground truth, and their agreement."""
    import cv2
    from model_api.models import SegmentationModel

    from attnseg.runtime import Segmenter

    api = SegmentationModel.create_model(str(xml), device="CPU")
    seg = Segmenter(xml, device="CPU")
    rows = []
    for img_path, mask_path in zip(images, masks):
        bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        gt = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE) > 127
        a = np.asarray(api(bgr).resultImage)
        b = seg.predict(bgr).mask
        rows.append({"image": img_path.stem, "dice_model_api": dice(a, gt), "dice_segmenter": dice(b, gt),
                     "equal_pixels": float((a == b).mean()), "mask_dice": dice(a, b)})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("dice_model_api", "dice_segmenter",
                                                                "equal_pixels", "mask_dice")}
    return {"images": len(rows), "mean": mean, "dice_gap": mean["dice_model_api"] - mean["dice_segmenter"],
            "min_equal_pixels": float(min(r["equal_pixels"] for r in rows)),
            "model_info": _model_info(xml), "per_image": rows}


def _model_info(xml: Path) -> dict:
    import openvino as ov

    from attnseg.export.model_api import read_model_info

    return read_model_info(ov.Core().read_model(str(xml)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="../shared/data/kvasir-seg", help="Kvasir-SEG folder (images/, masks/)")
    ap.add_argument("--split", default="splits/kvasir-seg.json")
    ap.add_argument("--split-name", default="test")
    ap.add_argument("--limit", type=int, help="only the first N images of the split")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--render", action="store_true", help="only rewrite the .md from the .json in --out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(args.out)
    if args.render:
        write_markdown(json.loads((out / "model_api_agreement.json").read_text()), out)
        return

    import model_api
    import openvino

    from attnseg import __version__
    from attnseg.benchmarking.machine import machine_info
    from attnseg.export import AdvancedExportParameters, export
    from attnseg.optimize import AdvancedQuantizationParameters, quantize
    from attnseg.zoo import default_checkpoint, sample_dir

    data = Path(args.data)
    names = json.loads(Path(args.split).read_text())["splits"][args.split_name][: args.limit]
    images = [next((data / "images").glob(f"{n}.*")) for n in names]
    masks = [next((data / "masks").glob(f"{n}.*")) for n in names]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        exp = export(default_checkpoint(), output_dir=Path(tmp) / "export",
                     advanced=AdvancedExportParameters(parity_batches=1))
        calib = sample_dir() / "images"  # the main job's calibration: the 30 bundled samples
        int8 = quantize(exp.xml_path, calibration=calib, subset_size=len(list(calib.iterdir())), quiet=True,
                        advanced=AdvancedQuantizationParameters(latency_runs=1))
        log.info("export + INT8 in %.0f s", time.perf_counter() - t)
        for label, xml in (("fp32", exp.xml_path), ("int8", int8.output_xml)):
            results[label] = compare(Path(xml), images, masks)
            m = results[label]["mean"]
            log.info("%s: Dice Model API %.4f, Segmenter %.4f, equal pixels %.4f", label, m["dice_model_api"],
                     m["dice_segmenter"], m["equal_pixels"])
    report = {
        "command": "python benchmarks/model_api_agreement.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v not in (None, False)),
        "split": f"{args.split}:{args.split_name}", "images": len(images),
        "versions": {"attnseg": __version__, "openvino": openvino.__version__,
                     "openvino-model-api": getattr(model_api, "__version__", "0.4.7"),
                     "python": platform.python_version()},
        "machine": machine_info().to_dict(), "results": results,
        "input_interpolation": exp.metadata.input_interpolation,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "model_api_agreement.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_markdown(report, out)


_FILTERS = {"area": "area", "linear": "bilinear"}


def write_markdown(report: dict, out: Path) -> None:
    results = report["results"]
    lines = [
        "# OpenVINO Model API vs attnseg Segmenter (shipped Kvasir AttU_Net w16)", "",
        f"`{report['command']}`", "",
        (f"{report['images']} images of {report['split']}; CPU: {report['machine']['cpu_model']} "
        f"({', '.join(report['machine']['cpu_flags']) or 'no bf16/vnni/amx flags'}); "
        f"Model API {report['versions']['openvino-model-api']}, OpenVINO {report['versions']['openvino']}."), "",
        "| IR | Dice, Model API | Dice, Segmenter | gap | equal pixels (mean) | equal pixels (worst image) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, r in results.items():
        m = r["mean"]
        lines.append(f"| {label.upper()} | {m['dice_model_api']:.4f} | {m['dice_segmenter']:.4f} | "
                     f"{r['dice_gap']:+.4f} | {100 * m['equal_pixels']:.2f}% | {100 * r['min_equal_pixels']:.2f}% |")
    lines += ["", ("Both read the same IR. Model API resizes the image inside the graph (OpenVINO Interpolate, "
              "linear, no antialiasing) and resizes the arg-maxed map back nearest-neighbour; the Segmenter "
              f"shrinks with OpenCV's {_FILTERS.get(report.get('input_interpolation', 'area'), 'area')} filter (the "
              "training resize, recorded in the model) and resizes the scores bilinearly before thresholding. Model API also computes in the device's default precision (bf16 on a "
              "CPU with avx512_bf16), the Segmenter in the precision its `auto` measured as faster for each IR. The "
              "disagreeing pixels lie on mask boundaries.")]
    (out / "model_api_agreement.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
