"""Throwaway IRs for runtime tests, built straight from tiny torch models with ov.convert_model.

Used until/unless ``attnseg.export`` provides them; they follow the exported-model contract in
``attnseg.metadata`` (input "image", output "logits", "attention_Att*" outputs, rt_info).
"""

from __future__ import annotations

from pathlib import Path


from attnseg.metadata import ModelMetadata, Normalization, write_rt_info


def make_net(classes=("polyp",), size=(64, 64), base_width=4, seed=0):
    """A random AttU_Net whose masks are not constant: BatchNorm statistics are calibrated on
    noise (random init + eval BN otherwise kills every activation) and the output bias is set
    so that about half the pixels of a noise image are foreground."""
    import torch

    from attnseg.models import AttU_Net

    torch.manual_seed(seed)
    multiclass = len(classes) > 1
    net = AttU_Net(img_ch=3, output_ch=len(classes) if multiclass else 1, base_width=base_width)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    gen = torch.Generator().manual_seed(seed)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(4, 3, *size, generator=gen))
        net.eval()
        y = net(torch.randn(4, 3, *size, generator=gen))
        net.Conv_1x1.bias -= y.transpose(0, 1).reshape(y.shape[1], -1).median(dim=1).values
    return net


def build_ir(out_xml: Path, *, classes=("polyp",), size=(64, 64), base_width=4, embedded=False,
             attention=False, dynamic=False, seed=0, write_rt=True) -> Path:
    import openvino as ov
    import torch
    from openvino.preprocess import ColorFormat, PrePostProcessor

    net = make_net(classes, size, base_width, seed)
    net.return_attention = attention
    example = torch.randn(1, 3, *size)
    shape = [1, 3, -1, -1] if dynamic else [1, 3, *size]
    m = ov.convert_model(net, example_input=example, input=[ov.PartialShape(shape)])
    m.inputs[0].get_tensor().set_names({"image"})
    m.outputs[0].get_tensor().set_names({"logits"})
    att_names = []
    if attention:
        for port, name in zip(m.outputs[1:], net.attention_names):
            port.get_tensor().set_names({f"attention_{name}"})
            att_names.append(f"attention_{name}")
    norm = Normalization()
    if embedded:
        ppp = PrePostProcessor(m)
        ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")) \
            .set_color_format(ColorFormat.BGR)
        ppp.input().model().set_layout(ov.Layout("NCHW"))
        ppp.input().preprocess().convert_element_type(ov.Type.f32).convert_color(ColorFormat.RGB) \
            .mean([255.0 * v for v in norm.mean]).scale([255.0 * v for v in norm.std])
        m = ppp.build()
    meta = ModelMetadata(
        task="multiclass" if len(classes) > 1 else "binary", classes=list(classes), arch="AttU_Net",
        input_size=None if dynamic else list(size),
        input_layout="NHWC" if embedded else "NCHW", input_dtype="u8" if embedded else "f32",
        normalization=norm, preprocessing_embedded=embedded, output="logits",
        attention_outputs=att_names,
    )
    if write_rt:
        write_rt_info(m, meta)
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(m, str(out_xml), compress_to_fp16=False)
    meta.write_json(out_xml.with_suffix(".json"))
    return out_xml
