"""What every attnseg model declares about itself."""

from __future__ import annotations

import torch
from torch import nn

from attnseg.errors import ModelConfigError
from attnseg.models.registry import ModelCapabilities


def is_exporting() -> bool:
    """True while torch traces, scripts, exports or compiles the model (skip shape checks)."""
    return bool(
        torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


class SegmentationModel(nn.Module):
    """A dense-prediction model: (N, C, H, W) -> logits (N, classes, H, W).

    Subclasses declare what they support in ``capabilities`` (input divisor = 2 ** number of
    poolings, argument names, ...) and record their constructor arguments in ``arch_kwargs`` so
    a checkpoint can rebuild them.
    """

    capabilities = ModelCapabilities()
    #: True for architectures with attention gates whose maps can be exported.
    has_attention_gates = False

    def __init__(self, **arch_kwargs):
        super().__init__()
        self.arch_kwargs = dict(arch_kwargs)
        self.return_attention = False

    @property
    def arch(self) -> str:
        return type(self).__name__

    @property
    def task(self) -> str:
        return self.capabilities.task

    @property
    def input_divisor(self) -> int:
        return self.capabilities.input_divisor

    @property
    def in_channels(self) -> int:
        return int(self.arch_kwargs.get("img_ch", self.arch_kwargs.get("n_channels", 3)))

    @property
    def num_outputs(self) -> int:
        return int(self.arch_kwargs.get("output_ch", self.arch_kwargs.get("n_classes", 1)))

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse inputs the architecture cannot handle, naming the nearest valid sizes."""
        if is_exporting():
            return
        if x.dim() != 4:
            raise ModelConfigError(
                f"{self.arch} expects a 4-D (N, C, H, W) tensor, got shape {tuple(x.shape)}."
            )
        if x.shape[1] != self.in_channels:
            raise ModelConfigError(
                f"{self.arch} was built for {self.in_channels} input channels, got {x.shape[1]}."
            )
        d = self.input_divisor
        bad = [s for s in x.shape[2:] if s % d or s == 0]
        if bad:
            sizes = [nearest_valid_sizes(s, d) for s in x.shape[2:]]
            hint = " x ".join("/".join(str(v) for v in pair) for pair in sizes)
            raise ModelConfigError(
                f"{self.arch} needs height and width divisible by {d}; got "
                f"{x.shape[2]}x{x.shape[3]}. Nearest valid sizes: {hint}."
            )


def nearest_valid_sizes(size: int, divisor: int) -> tuple[int, ...]:
    """The multiples of ``divisor`` just below and above ``size`` (only one if exact)."""
    below = max(divisor, (size // divisor) * divisor)
    above = below + divisor if below < size else below
    return (below,) if below == above else (below, above)
