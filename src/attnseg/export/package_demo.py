"""Segment an image, a folder of images, a video file or a camera with the model in this folder.

    python demo.py polyp.jpg                      # -> out/polyp_mask.png, out/polyp_overlay.jpg
    python demo.py images/ -o results/            # every image of the folder
    python demo.py clip.mp4                       # -> out/clip_overlay.mp4 (+ one mask per frame with --masks)
    python demo.py 0 --frames 100                 # camera 0, 100 frames -> out/camera0_overlay.mp4
    python demo.py polyp.jpg --model model_int8.xml --device GPU

Needs only the attnseg core install (openvino, numpy, opencv-python-headless; no torch): the
model's own description (rt_info / model.json) tells the runtime everything else.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    import cv2

    from attnseg.errors import AttnsegError
    from attnseg.imaging import read_image
    from attnseg.runtime import Segmenter, open_source

    ap = argparse.ArgumentParser(description="Segment images, a folder, a video or a camera.")
    ap.add_argument("input", help="image, folder of images, video file, or a camera index (0, 1, ...)")
    ap.add_argument("-m", "--model", default=str(HERE / "model.xml"), help="IR to run (default: model.xml here)")
    ap.add_argument("-o", "--output", default="out", help="folder for masks and overlays (default: out)")
    ap.add_argument("--device", default="CPU", help="CPU, GPU, NPU or AUTO (default CPU)")
    ap.add_argument("--frames", type=int, help="stop after N frames (videos, cameras)")
    ap.add_argument("--masks", action="store_true", help="videos and cameras: also write one mask PNG per frame")
    args = ap.parse_args(argv)
    try:
        seg = Segmenter(args.model, device=args.device, hint="throughput")
        source = open_source(args.input, max_frames=args.frames)
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        codec = seg.codec  # the model's own mask encoding, background and overlay colours
        writer, stem, summary, pending, skipped = None, Path(str(args.input)).stem, [], {}, []

        def remembered():  # the stream yields results in order; keep each input until its result
            for name, item in source:
                if not source.is_video:  # an unreadable file is skipped and reported, not the end of the run
                    try:
                        item = read_image(item)
                    except AttnsegError as exc:
                        skipped.append({"source": str(name), "error": str(exc)})
                        print(f"skipped: {exc}", file=sys.stderr)
                        continue
                pending[name] = item
                yield name, item

        for r in seg.stream(remembered()):
            frame = pending.pop(r.source)
            name = Path(str(r.source)).stem
            if not source.is_video or args.masks:
                cv2.imwrite(str(out / f"{name}_mask.png"), codec.mask_picture(r.mask))
            picture = codec.overlay(frame, r.mask)
            if source.is_video:
                if writer is None:
                    h, w = picture.shape[:2]
                    tag = f"camera{args.input}" if source.kind == "camera" else stem
                    writer = cv2.VideoWriter(str(out / f"{tag}_overlay.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                             source.fps or 25.0, (w, h))
                writer.write(picture)
            else:
                cv2.imwrite(str(out / f"{name}_overlay.jpg"), picture)
            summary.append({"source": str(r.source), "foreground_fraction": round(r.foreground_fraction, 4),
                            "pixels": r.class_pixel_counts, "ms": round(r.timings.total, 1)})
        if writer is not None:
            writer.release()
    except AttnsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (out / "summary.json").write_text(json.dumps({"model": str(args.model), "classes": seg.classes,
                                                  "results": summary, "skipped": skipped}, indent=2) + "\n")
    print(f"{len(summary)} {'frames' if source.is_video else 'images'} -> {out}/ (masks, overlays, summary.json)"
          + (f"; {len(skipped)} unreadable skipped (listed in summary.json)" if skipped else ""))
    return 2 if skipped else 0


if __name__ == "__main__":
    raise SystemExit(main())
