"""Score polyp models under each resize policy and under domain-shift proxies (issue 18).

Every model runs through the runtime (``attnseg.runtime.Segmenter`` on an OpenVINO IR), the path
users run. For each model and each Kvasir-SEG test image (``--split``'s ``test`` part):

* policies on the original images: ``stretch``, ``letterbox``, ``tiled`` (``TiledSegmenter``,
  overlap 0.25, Gaussian blend; tiles at the model's input size);
* proxies, with the model's recorded policy (``--cross``: under every policy): the image AND its
  mask re-rendered at ``288x384`` and ``384x288`` (H x W; image area-resized, mask
  nearest), then segmented and scored at that size; ``colour`` (per-image seeded hue shift
  +-12 deg, saturation x0.6-1.4, brightness x0.7-1.3, gamma 0.7-1.5); ``blur`` (Gaussian,
  sigma 2 px); ``jpeg30`` (JPEG quality 30); ``lowres`` (down x0.5 and back up); ``small_polyps`` (the
  frame at half its sides in a black border); ``other_hospital`` (288x384 + colour + blur);
  what endoscopes differ in: ``circle_frame`` (round field, black outside, vignetting),
  ``overlay_text`` (burnt-in patient/date text and a marker), ``interlaced`` (odd lines 4 px
  sideways), ``overexposed`` / ``underexposed`` (gain x1.7 / x0.45, clipped), ``wide_lens``
  (barrel distortion). These are fixed renderings, written apart from the training augmentation.

Reports mean Dice, median Dice, the near-miss rate (share of images with Dice < 0.1) and the
empty rate (share of images where the model finds no lesion at all) per condition and model, side by side, in ``resize_policies.json`` and ``resize_policies.md``
under ``--out``:

    python benchmarks/resize_policies.py old=model_old/model.xml new=runs/new/best.pt new_tta=runs/new/best.pt#flip4 \
        --data kvasir:../shared/data/kvasir-seg --split splits/kvasir-seg.json \
        --out benchmarks/results/resize_policies

A model is ``[label=]path``: an IR ``.xml`` (or its folder), or an attnseg checkpoint ``.pt``,
exported first to a temporary folder with ``attnseg.export.export`` (FP32, the export defaults).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger("resize_policies")

NEAR_MISS = 0.1
POLICIES = ("stretch", "letterbox", "tiled")
TILE_OVERLAP = 0.25


# ---------------------------------------------------------------------- proxies
def rerender(size: tuple[int, int]) -> Callable:
    """Image and mask both re-rendered at ``size`` = (H, W): another endoscope's frame size."""
    def apply(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        h, w = size
        shrink = image.shape[0] > h and image.shape[1] > w
        img = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return img, cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
    return apply


def colour(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Another light source and sensor: hue, saturation, brightness and gamma, drawn per image."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6.0, 6.0)) % 180.0  # OpenCV hue: 2 degrees per unit
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.6, 1.4), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(0.7, 1.3), 0, 255)
    img = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)
    gamma = rng.uniform(0.7, 1.5)
    lut = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut), mask


def blur(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=2.0), mask


def jpeg30(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 30])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), mask


def lowres(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), mask


def small_polyps(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The frame shrunk to half its sides inside a black border: polyps a quarter of their area, as
    from a wider-angle endoscope or a more distant view."""
    h, w = image.shape[:2]
    img, msk = np.zeros_like(image), np.zeros_like(mask)
    sh, sw = max(1, h // 2), max(1, w // 2)
    y0, x0 = (h - sh) // 2, (w - sw) // 2
    img[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA)
    msk[y0 : y0 + sh, x0 : x0 + sw] = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_NEAREST)
    return img, msk


def other_hospital(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Several shifts at once: a 288x384 frame, another colour response and a softer lens."""
    img, msk = rerender((288, 384))(image, mask, rng)
    img, msk = colour(img, msk, rng)
    return blur(img, msk, rng)


def circle_frame(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A round endoscope field: a circular black frame that cuts the corners and the sides, with
    vignetting towards its edge. A polyp under the black is invisible, so it is background there."""
    h, w = mask.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (h / 2)) ** 2)  # radius h/2, round
    vis = np.clip((1.05 - r) / 0.05, 0, 1) * np.clip(1.0 - 0.35 * r * r, 0, 1)
    img = np.clip(image.astype(np.float32) * vis[..., None] + 0.5, 0, 255).astype(np.uint8)
    return img, np.where(vis < 0.05, 0, mask).astype(mask.dtype)


def overlay_text(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What video processors burn in: a patient/date block on the left, a status line at the
    bottom and a green scope marker, in another font than training ever draws."""
    img = image.copy()
    h, w = img.shape[:2]
    scale = max(0.6, w / 500)
    for k, line in enumerate(("ID 0042-7781", "F 1962/03/14", "08/11/2026", "14:22:09", "Eh:A5 Cv:2")):
        cv2.putText(img, line, (int(0.02 * w), int((0.08 + 0.06 * k) * h)), cv2.FONT_HERSHEY_PLAIN, scale,
                    (255, 255, 255), max(1, int(scale)), cv2.LINE_8)
    cv2.putText(img, "CVP-190  NBI off  Zoom x1.0", (int(0.25 * w), int(0.96 * h)), cv2.FONT_HERSHEY_PLAIN,
                scale, (230, 230, 230), 1, cv2.LINE_8)
    cv2.rectangle(img, (int(0.9 * w), int(0.05 * h)), (int(0.96 * w), int(0.11 * h)), (0, 200, 0), -1)
    return img, mask


def interlaced(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Interlaced video of a moving scope: odd lines 4 px sideways of even ones (combing)."""
    img = image.copy()
    img[1::2] = np.roll(image[1::2], 4, axis=1)
    return img, mask


def exposure(gain: float) -> Callable:
    """Automatic gain gone wrong: every pixel times ``gain``, clipped (blown highlights or murk)."""
    def apply(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return np.clip(image.astype(np.float32) * gain + 0.5, 0, 255).astype(np.uint8), mask
    return apply


def wide_lens(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A wider-angle lens: barrel distortion (k = 0.25) on image and mask alike, black outside."""
    h, w = mask.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    nx, ny = (xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2)
    scale = 1 + 0.25 * (nx * nx + ny * ny)
    mx, my = nx * scale * (w / 2) + w / 2, ny * scale * (h / 2) + h / 2
    img = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return img, cv2.remap(mask, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


PROXIES: dict[str, Callable] = {
    "288x384": rerender((288, 384)),
    "384x288": rerender((384, 288)),
    "colour": colour,
    "blur": blur,
    "jpeg30": jpeg30,
    "lowres": lowres,
    "small_polyps": small_polyps,
    "other_hospital": other_hospital,
    "circle_frame": circle_frame,
    "overlay_text": overlay_text,
    "interlaced": interlaced,
    "overexposed": exposure(1.7),
    "underexposed": exposure(0.45),
    "wide_lens": wide_lens,
}


# ---------------------------------------------------------------------- models and data
def parse_model(spec: str) -> tuple[str, Path, str]:
    """``[label=]path[#tta]`` -> (label, path, tta): ``new=best.pt#flip4`` scores with 4-flip TTA."""
    spec, _, tta = spec.partition("#")
    label, sep, path = spec.partition("=")
    if not sep:
        label, path = Path(spec).stem if Path(spec).suffix else Path(spec).name, spec
    return label, Path(path), tta or "none"


def as_ir(path: Path, tmp: Path, label: str) -> Path:
    """An IR for ``path``: itself, or a checkpoint exported to ``tmp`` (FP32, export defaults)."""
    if path.suffix.lower() not in (".pt", ".pth"):
        return path
    from attnseg.export import export

    log.info("exporting %s to a temporary IR", path)
    return Path(export(path, output_dir=tmp / label).xml_path)


def test_samples(data: str, split: str, part: str, limit: int | None) -> list:
    from attnseg.data import apply_split, open_dataset, read_split

    info = open_dataset(data)
    samples = apply_split(info.samples, read_split(split), part)
    return samples[:limit] if limit else samples


def conditions(cross: bool, proxies: list[str]) -> list[tuple[str, str | None, str]]:
    """(row name, proxy or None, policy or 'recorded')."""
    rows = [(policy, None, policy) for policy in POLICIES]
    for proxy in proxies:
        for policy in (POLICIES if cross else ("recorded",)):
            rows.append((proxy if policy == "recorded" else f"{proxy} / {policy}", proxy, policy))
    return rows


def score_model(xml: Path, samples: list, rows: list, device: str, seed: int, tta: str = "none") -> dict[str, dict]:
    from attnseg.data import binary_metrics, load_pair
    from attnseg.runtime import Segmenter, TiledSegmenter, TileOptions

    runners = {}
    recorded = Segmenter(xml, device=device, hint="throughput").resize_policy.value
    for policy in {"stretch", "letterbox"} | {recorded}:
        runners[policy] = Segmenter(xml, device=device, hint="throughput", resize_policy=policy, tta=tta)
    runners["tiled"] = TiledSegmenter(runners[recorded], TileOptions(overlap=TILE_OVERLAP))
    dice: dict[str, list[float]] = {name: [] for name, _, _ in rows}
    empty: dict[str, list[bool]] = {name: [] for name, _, _ in rows}
    t0 = time.perf_counter()
    for i, sample in enumerate(samples):
        image, mask = load_pair(sample, "binary")
        for name, proxy, policy in rows:
            img, gt = image, mask
            if proxy is not None:
                rng = np.random.default_rng([seed, i])
                img, gt = PROXIES[proxy](image, mask, rng)
            runner = runners[recorded if policy == "recorded" else policy]
            pred = runner.predict(img).mask
            dice[name].append(binary_metrics(pred, gt)["dice"])
            empty[name].append(not pred.any())
        if (i + 1) % 10 == 0:
            log.info("%s: %d/%d images, %.0f s", xml, i + 1, len(samples), time.perf_counter() - t0)
    out = {}
    for name, values in dice.items():
        v = np.asarray(values, dtype=np.float64)
        out[name] = {"mean_dice": round(float(v.mean()), 4), "median_dice": round(float(np.median(v)), 4),
                     "near_miss_rate": round(float((v < NEAR_MISS).mean()), 4), "images": len(v),
                     "empty_rate": round(float(np.mean(empty[name])), 4),
                     "per_image_dice": [round(float(x), 4) for x in v]}
    return {"recorded_policy": recorded, "tta": tta, "conditions": out}


# ---------------------------------------------------------------------- report
def markdown(report: dict) -> str:
    labels = list(report["models"])
    head = "| condition | " + " | ".join(f"{lb} Dice | {lb} near-miss" for lb in labels) + " |"
    sep = "| --- |" + " --- | --- |" * len(labels)
    lines = [
        "# Resize policies and domain-shift proxies",
        "",
        (f"Kvasir-SEG `{report['split']}` part `{report['part']}`, {report['images']} images; mean Dice and "
         f"near-miss rate (Dice < {NEAR_MISS}; in brackets, images where the model finds nothing at all) per "
         "condition. Proxies run with each model's recorded policy "
         "unless the row names one; `tiled` = TiledSegmenter, overlap 0.25, Gaussian blend."),
        "",
        head, sep,
    ]
    for name in report["conditions"]:
        cells = []
        for lb in labels:
            c = report["models"][lb]["conditions"][name]
            cells.append(f"{c['mean_dice']:.3f} | {100 * c['near_miss_rate']:.0f}% ({100 * c['empty_rate']:.0f}%)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Models:", ""]
    for lb, m in report["models"].items():
        tta = f", TTA `{m['tta']}`" if m.get("tta", "none") != "none" else ""
        lines.append(f"- `{lb}`: `{m['path']}` (recorded policy `{m['recorded_policy']}`{tta})")
    lines += ["", "Command:", "", "```", report["command"], "```", ""]
    lines += report["machine"]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="[label=]model.xml | folder | checkpoint.pt, optionally #flip or "
                                             "#flip4 for test-time augmentation (several: side by side)")
    p.add_argument("--data", default="kvasir:../shared/data/kvasir-seg")
    p.add_argument("--split", default="splits/kvasir-seg.json")
    p.add_argument("--part", default="test", help="which part of the split to score (default test)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/resize_policies"))
    p.add_argument("--proxies", nargs="*", default=list(PROXIES), choices=list(PROXIES))
    p.add_argument("--cross", action="store_true", help="score every proxy under every policy")
    p.add_argument("--limit", type=int, default=None, help="first N images only (smoke runs)")
    p.add_argument("--device", default="CPU")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-image colour draws")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from attnseg.benchmarking.machine import machine_info

    machine = machine_info()
    samples = test_samples(args.data, args.split, args.part, args.limit)
    rows = conditions(args.cross, args.proxies)
    models: dict[str, dict] = {}
    irs: dict[str, Path] = {}  # one export per path, however many labels score it
    with tempfile.TemporaryDirectory(prefix="resize_policies_") as tmp:
        for spec in args.models:
            label, path, tta = parse_model(spec)
            if label in models:
                raise SystemExit(f"two models are labelled {label!r}; name them: label=path")
            key = f"{path}"
            if key not in irs:
                irs[key] = as_ir(path, Path(tmp), f"m{len(irs)}")
            models[label] = {"path": str(path), **score_model(irs[key], samples, rows, args.device, args.seed, tta)}
    report = {
        "data": args.data, "split": args.split, "part": args.part, "images": len(samples),
        "near_miss_below": NEAR_MISS, "tile_overlap": TILE_OVERLAP, "seed": args.seed,
        "conditions": [name for name, _, _ in rows], "models": models,
        "command": " ".join(["python", "benchmarks/resize_policies.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine.summary_lines(), "machine_info": machine.to_dict(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "resize_policies.json", json.dumps(report, indent=2) + "\n")
    write_atomic(args.out / "resize_policies.md", markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
