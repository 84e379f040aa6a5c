"""The examples every ``seg-*`` command shows at the end of its ``--help`` (one place, one test)."""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "seg-train": [
        "seg-train --data kvasir:../shared/data/kvasir-seg --split splits/kvasir-seg.json -o runs/kvasir "
        "--arch AttU_Net --base-width 16 --input-size 256 256 --epochs 30",
        "seg-train --data kvasir:DATA -o runs/quick --epochs 1 --max-train-batches 2   # a smoke test",
        "seg-train --data kvasir:DATA -o runs/kvasir --resume runs/kvasir/last.pt --epochs 40",
        "seg-train --list-models",
    ],
    "seg-eval": [
        "seg-eval runs/kvasir/best.pt --data kvasir:../shared/data/kvasir-seg   # the run's own test split",
        "seg-eval best.pt --data kvasir:DATA --split splits/kvasir-seg.json:val --json",
        "seg-eval exported/model_int8.xml --data kvasir:DATA --split splits/kvasir-seg.json:test -d CPU",
    ],
    "seg-export": [
        "seg-export --device CPU   # the main job on the shipped model",
        "seg-export runs/kvasir/best.pt -o exported/ --device CPU --samples ../shared/data/kvasir-seg/images",
        "seg-export ref.pkl --arch AttU_Net --base-width 64 -o exported/ --precision fp16",
    ],
    "seg-optimize": [
        "seg-optimize exported/model.xml --calibration kvasir:../shared/data/kvasir-seg "
        "--split splits/kvasir-seg.json:train",
        "seg-optimize exported/model.xml --precision fp16",
    ],
    "seg-infer": [
        "seg-infer exported/model.xml polyps/ -o out/ --json",
        "seg-infer exported/model.xml clip.mp4 -o out/ --attention-maps",
    ],
    "seg-benchmark": [
        "seg-benchmark exported/model_int8.xml -d CPU --hint latency -niter 200 -o reports/",
        "seg-benchmark compare runs/kvasir/best.pt --data kvasir:../shared/data/kvasir-seg",
    ],
    "seg-benchmark compare": [
        "seg-benchmark compare runs/kvasir/best.pt --data kvasir:../shared/data/kvasir-seg "
        "--split splits/kvasir-seg.json:test",
    ],
    "seg-serve": [
        "seg-serve exported/model.xml --host 127.0.0.1 --http-port 8080",
    ],
}


def epilog(prog: str) -> str | None:
    """``Examples:`` and the lines for ``prog``, or None for a command without examples."""
    lines = EXAMPLES.get(prog) or EXAMPLES.get(prog.split()[0] if prog else "")
    if not lines:
        return None
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)
