"""Tiny IRs for runtime tests, fast: export's own graph steps without its slow ONNX round trip.

``attnseg.export.export`` goes torch -> ONNX (dynamo) -> IR and checks parity, which takes
minutes on a busy 2-core machine; one slow test runs it end to end (test_export_contract.py).
Everything else derives from ONE ``ov.convert_model`` of a tiny AttU_Net (base_width 4,
64x64, attention outputs on): the variants (raw or embedded input, multiclass, dynamic,
probabilities / mask heads) are made with OpenVINO graph edits and the export module's own
``add_output_head`` and ``embed_preprocessing``, and carry the metadata contract in rt_info
and JSON, so they have the layout, names and rt_info that ``export()`` writes.
"""

from __future__ import annotations

from pathlib import Path

from attnseg.metadata import ModelMetadata, Normalization, write_rt_info

SIZE = (64, 64)
ATTENTION = ["attention_Att5", "attention_Att4", "attention_Att3", "attention_Att2"]


def make_net(classes=("polyp",), size=SIZE, base_width=4, seed=0):
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


def base_model(seed: int = 0):
    """The one torch conversion: binary AttU_Net, f32 NCHW input 'image', outputs 'logits' and
    'attention_Att5'..'attention_Att2'."""
    import openvino as ov
    import torch

    net = make_net(seed=seed)
    net.return_attention = True
    m = ov.convert_model(net, example_input=torch.randn(1, 3, *SIZE), input=[ov.PartialShape([1, 3, *SIZE])])
    m.inputs[0].get_tensor().set_names({"image"})
    m.outputs[0].get_tensor().set_names({"logits"})
    for port, name in zip(m.outputs[1:], ATTENTION):
        port.get_tensor().set_names({name})
    return m


def derive(base, out_xml: Path, *, classes=("polyp",), embedded=False, attention=False,
           dynamic=False, output="logits", resize_policy="stretch", threshold=0.5, task=None,
           shift=0.0) -> Path:
    """Write a variant of ``base`` as ``model.xml``/``.bin``/``.json`` in export's layout.

    Multiclass (3 classes) scores are built from the binary logit L as (0, L, -L - 0.3), so
    all three classes appear: L > 0 -> 1, L < -0.3 -> 2, otherwise 0. ``task="binary"`` with two
    class names is a binary model whose classes are named freely (e.g. ``normal`` / ``lesion``);
    ``threshold`` is exported into the binary head and the metadata, as ``seg-export --threshold``;
    ``shift`` is added to the network's logit (to put a threshold's cut inside real images' scores).
    """
    task = task or ("multiclass" if len(classes) > 1 else "binary")
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    from attnseg.export.options import OutputKind
    from attnseg.export.to_openvino import add_output_head, embed_preprocessing

    m = base.clone()
    logits = m.output("logits").get_node().input_value(0)
    if shift:
        logits = ops.add(logits, ops.constant(np.float32(shift))).output(0)
    if task == "multiclass":
        assert len(classes) == 3
        zero = ops.multiply(logits, ops.constant(np.float32(0.0)))
        neg = ops.subtract(ops.negative(logits), ops.constant(np.float32(0.3)))
        logits = ops.concat([zero, logits, neg], 1).output(0)
    head = ops.result(logits)
    head.output(0).get_tensor().set_names({"logits"})
    results = [head]
    att_names = ATTENTION if attention else []
    for name in att_names:
        results.append(ops.result(m.output(name).get_node().input_value(0)))
    m = ov.Model(results, m.get_parameters(), "AttU_Net")
    m.outputs[0].get_tensor().set_names({"logits"})
    for port, name in zip(m.outputs[1:], att_names):
        port.get_tensor().set_names({name})
    if dynamic:
        m.reshape({0: ov.PartialShape([-1, 3, -1, -1])})
    m = add_output_head(m, OutputKind(output), 1 if task == "binary" else len(classes), threshold, att_names)
    norm = Normalization()
    if embedded:
        m = embed_preprocessing(m, norm, 3, None if dynamic else 1, None if dynamic else SIZE)
    meta = ModelMetadata(
        task=task, classes=list(classes), arch="AttU_Net", threshold=threshold,
        input_size=None if dynamic else list(SIZE),
        input_layout="NHWC" if embedded else "NCHW", input_dtype="u8" if embedded else "f32",
        input_channels=3, batch=None if dynamic else 1,
        normalization=norm, preprocessing_embedded=embedded, output=output,
        attention_outputs=list(att_names), input_divisor=16, resize_policy=resize_policy,
        input_interpolation="area",  # the contracts compare exact pixels on these images
    )
    return save(m, meta, out_xml)


def shipped(out_xml: Path, resize_policy: str | None = None) -> Path:
    """The shipped Kvasir AttU_Net (attnseg.zoo) as export writes it by default (embedded
    preprocessing, logits), converted directly; metadata from the checkpoint. ``resize_policy``
    overrides the checkpoint's recorded policy."""
    import openvino as ov
    import torch

    from attnseg.export.to_openvino import embed_preprocessing
    from attnseg.models import load_checkpoint
    from attnseg.zoo import default_checkpoint

    net, info = load_checkpoint(default_checkpoint())
    size = tuple(info.input_size)
    m = ov.convert_model(net, example_input=torch.zeros(1, 3, *size), input=[ov.PartialShape([1, 3, *size])])
    m.inputs[0].get_tensor().set_names({"image"})
    m.outputs[0].get_tensor().set_names({"logits"})
    m = embed_preprocessing(m, info.normalization, 3, 1, size)
    meta = ModelMetadata(
        task=info.task, classes=list(info.classes), arch=info.arch, input_size=list(size),
        input_layout="NHWC", input_dtype="u8", input_channels=3, batch=1,
        normalization=info.normalization, preprocessing_embedded=True, output="logits",
        threshold=info.threshold, resize_policy=resize_policy or info.resize_policy,
        source_checkpoint_sha256=info.sha256, input_divisor=16, input_interpolation=info.input_interpolation,
    )
    return save(m, meta, out_xml)


def save(m, meta: ModelMetadata, out_xml: Path) -> Path:
    import openvino as ov

    write_rt_info(m, meta)
    out_xml = Path(out_xml)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(m, str(out_xml), compress_to_fp16=False)
    meta.write_json(out_xml.with_suffix(".json"))
    return out_xml
