"""Tiny IRs for the optimize tests, built straight from a small torch AttU_Net with
``ov.convert_model`` (seconds, where a full ``attnseg.export`` takes much longer on a busy CPU).

They follow the exported-model contract: input ``image`` (u8 NHWC BGR with the project's own
embedded preprocessing, or f32 NCHW), output ``logits``, metadata in rt_info and model.json.
The network is trained for a few seconds on real Kvasir images (to find their bright regions),
so its masks are non-trivial and it is decisive away from edges, as a real model is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from attnseg.imaging import read_image, resize_image, to_model_input
from attnseg.metadata import ModelMetadata, Normalization, write_rt_info

SIZE = (64, 64)


def bright_regions(bgr: np.ndarray, classes: int = 1) -> np.ndarray:
    """An easy target a tiny net learns in seconds: the brighter half of the blurred image
    (binary), or its grey-level quantiles as class ids (multiclass)."""
    g = cv2.GaussianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32), (0, 0), 3)
    if classes == 1:
        return (g > np.median(g)).astype(np.float32)
    edges = np.quantile(g, np.linspace(0, 1, classes + 1)[1:-1])
    return np.digitize(g, edges).astype(np.int64)


def make_net(images: list[Path], base_width: int = 4, seed: int = 0, steps: int = 60, classes: int = 1):
    """A tiny AttU_Net trained briefly on real images to segment their bright regions.

    A random network puts most pixels near the decision boundary, where any rounding flips
    them; a trained one is decisive away from object edges, like a real model. About 6 s of
    CPU with one thread.
    """
    import torch

    from attnseg.models import AttU_Net

    bgr = [resize_image(read_image(p), SIZE) for p in images]
    x = torch.from_numpy(np.concatenate([to_model_input(b, SIZE, Normalization()) for b in bgr]))
    y = torch.from_numpy(np.stack([bright_regions(b, classes) for b in bgr]))
    if classes == 1:
        y = y[:, None]
    loss_fn = torch.nn.functional.binary_cross_entropy_with_logits if classes == 1 else torch.nn.functional.cross_entropy
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core machine: spinning OpenMP threads only waste time
    try:
        torch.manual_seed(seed)
        net = AttU_Net(img_ch=3, output_ch=classes, base_width=base_width)
        opt = torch.optim.Adam(net.parameters(), 1e-2)
        net.train()
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def build_ir(out_xml: Path, images: list[Path], *, embedded: bool = True, seed: int = 0,
             classes: tuple[str, ...] = ("polyp",)) -> Path:
    import openvino as ov
    import torch

    from attnseg.export.to_openvino import embed_preprocessing

    multiclass = len(classes) > 1
    net = make_net(images, seed=seed, classes=len(classes) if multiclass else 1)
    m = ov.convert_model(net, example_input=torch.zeros(1, 3, *SIZE), input=[ov.PartialShape([1, 3, *SIZE])])
    m.inputs[0].get_tensor().set_names({"image"})
    m.outputs[0].get_tensor().set_names({"logits"})
    norm = Normalization()
    if embedded:
        m = embed_preprocessing(m, norm, 3, 1, SIZE)
    meta = ModelMetadata(
        task="multiclass" if multiclass else "binary", classes=list(classes), arch="AttU_Net", input_size=list(SIZE),
        input_layout="NHWC" if embedded else "NCHW", input_dtype="u8" if embedded else "f32",
        normalization=norm, preprocessing_embedded=embedded, output="logits", precision="fp32",
        extra={"input_divisor": 16, "arch_kwargs": {"img_ch": 3, "output_ch": len(classes), "base_width": 4}},
    )
    write_rt_info(m, meta)
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(m, str(out_xml), compress_to_fp16=False)
    meta.write_json(out_xml.with_suffix(".json"))
    return out_xml


def copy_ir(xml: Path, folder: Path) -> Path:
    """The IR (xml, bin, json) copied into ``folder``, so a test can write beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".xml", ".bin", ".json"):
        shutil.copy2(xml.with_suffix(suffix), folder / f"model{suffix}")
    return folder / "model.xml"
