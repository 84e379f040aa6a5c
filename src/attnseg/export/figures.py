"""Export figures: parity and export time of every registered architecture, as a table.

    python -m attnseg.export.figures --width 4 --size 64            # every architecture, tiny
    python -m attnseg.export.figures --arch AttU_Net --width 64 --size 256 --samples DIR

Models get random weights (seed 0) with the last bias shifted so that logits straddle the
threshold: masks then hold both labels and "equal pixels"/Dice mean something. HybridSN
variants use 30 bands, 25x25 patches and 16 classes (Indian Pines after PCA).
"""

from __future__ import annotations

import argparse
import inspect
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def balanced(model: Any, size: tuple[int, int]) -> Any:
    """Shift the last layer's bias by the median logit of a random batch (see module doc)."""
    import torch

    torch.manual_seed(0)
    model.eval()
    last = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None][-1]
    if model.capabilities.volumetric:
        kw = model.arch_kwargs
        x = torch.randn(8, 1, kw["bands"], kw["patch_size"], kw["patch_size"])
    else:
        x = torch.rand(2, model.in_channels, *size) * 4 - 2
    with torch.no_grad():
        y = model(x)
        last.bias -= y.transpose(0, 1).reshape(y.shape[1], -1).median(dim=1).values
    return model


def build(arch: str, width: int, size: tuple[int, int]) -> Any:
    from attnseg.models import create_model, get_model_class, model_capabilities

    if model_capabilities(arch).volumetric:
        kw: dict[str, Any] = {"bands": 30, "patch_size": 25, "num_classes": 16}
    else:
        params = inspect.signature(get_model_class(arch).__init__).parameters
        kw = {"base_width": width} if "base_width" in params else {}
    return balanced(create_model(arch, **kw), size)


def run(archs: Sequence[str], width: int, size: tuple[int, int], samples: str | None, device: str,
        precision: str) -> list[dict[str, Any]]:
    from attnseg.export import export
    from attnseg.models import save_checkpoint

    rows = []
    with tempfile.TemporaryDirectory(prefix="attnseg-figures-") as tmp:
        for arch in archs:
            model = build(arch, width, size)
            ckpt = Path(tmp) / f"{arch}.pt"
            volumetric = model.capabilities.volumetric
            save_checkpoint(ckpt, model, input_size=None if volumetric else size)
            res = export(ckpt, output_dir=Path(tmp) / arch, input_size=None if volumetric else size,
                         samples=None if volumetric else samples, device=device, precision=precision)
            row = {"arch": arch, "input": "x".join(map(str, res.parity.input_shape)), "timings_s": res.timings,
                   "onnx_nodes": json.loads(res.report_path.read_text())["onnx"]["nodes"], "inputs": res.parity.inputs}
            for b in res.parity.backends:
                row[f"{b.backend}[{b.execution}]"] = {
                    "max_abs_diff": b.max_abs_diff, "equal_pixels": b.equal_pixels, "dice": b.dice,
                }
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    backends = sorted({k for r in rows for k in r if "[" in k}, key=lambda k: (not k.startswith("onnx"), k))
    head = ["arch", "input", "export s (wall)", "export s (CPU)", "onnx s"] + [f"{b} max|diff| / equal px / Dice" for b in backends]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["timings_s"]
        cells = [r["arch"], r["input"], f"{t['total_s']:.1f}", f"{t['total_cpu_s']:.1f}", f"{t['onnx_s']:.1f}"]
        for b in backends:
            f = r.get(b)
            cells.append(f"{f['max_abs_diff']:.1e} / {100 * f['equal_pixels']:.2f}% / {f['dice']:.4f}" if f else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    from attnseg.models import list_models

    p = argparse.ArgumentParser(prog="python -m attnseg.export.figures", description=__doc__.splitlines()[0])
    p.add_argument("--arch", action="append", help="architecture (repeatable; default: every registered one)")
    p.add_argument("--width", type=int, default=4, help="base width of the U-Net family (default 4)")
    p.add_argument("--size", type=int, default=64, help="square input size (default 64)")
    p.add_argument("--samples", help="image folder for the parity inputs (default random images)")
    p.add_argument("--device", default="CPU")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    rows = run(args.arch or list_models(), args.width, (args.size, args.size), args.samples, args.device,
               args.precision)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
