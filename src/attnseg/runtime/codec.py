"""``ModelCodec``: everything between an image and an exported model's tensors, defined once.

Built from the model's validated metadata and its port shapes (``Port``: no OpenVINO object),
so the local ``Segmenter``, the tiler, ``RemoteSegmenter`` (both against seg-serve and against
a raw-IR server), the server, the Ray workers, the output writer, calibration, the scorer,
parity and the benchmarks all prepare and decide the same way:

    codec = segmenter.codec                      # or ModelCodec.from_metadata(meta, in_port, out_port)
    prepared = codec.prepare("polyp.jpg")        # colour, resize policy (letterbox), padding, layout
    result = codec.decode(prepared, raw_outputs) # mask, probabilities, attention, class statistics
    mask = codec.decide(mean_probabilities)      # merged soft predictions -> mask (model threshold)
    png = codec.mask_picture(result.mask)        # binary 0/255, class ids otherwise
    picture = codec.overlay(image, result.mask)  # colours over the image, background left clear

The pieces live in ``preprocess`` (image -> tensor) and ``postprocess`` (tensor -> mask); this
class is the only way the rest of attnseg reaches them, and the only place a
``SegmentationResult`` is built. numpy + OpenCV only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from attnseg.errors import ModelConfigError
from attnseg.metadata import ModelMetadata, check_interpolation
from attnseg.resize_policy import ResizePolicy
from attnseg.runtime import overlay as draw
from attnseg.runtime import postprocess as post
from attnseg.runtime.ports import Port
from attnseg.runtime.preprocess import ImageLike, InputSpec, Prepared, input_spec, prepare
from attnseg.runtime.result import SegmentationResult, StageTimings


@dataclass(frozen=True)
class ModelCodec:
    """How one exported model's image input is prepared and its outputs decoded.

    ``input`` is None for a codec of masks decided elsewhere (a seg-serve server's answers);
    ``attention`` names the attention gates (``Att5``...) whose maps follow the main output in
    ``decode``'s raw outputs."""

    input: InputSpec | None
    output: post.OutputSpec
    attention: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, meta: ModelMetadata, input_port: Port | None, output_port: Port | None = None,
                      attention: Sequence[str] = (), name: str = "model",
                      resize_policy: str | ResizePolicy | None = None) -> ModelCodec:
        """The codec of a model described by ``meta`` whose image input and main output have
        these shapes (without ``output_port``, the output the metadata describes);
        ``resize_policy`` overrides the recorded one."""
        if meta.task not in ("binary", "multiclass"):
            raise ModelConfigError(f"{name} is a {meta.task} model ({meta.arch}); only image segmentation "
                                   "models (binary or multiclass) are decoded to masks.")
        policy = None if resize_policy is None else ResizePolicy.parse(resize_policy)
        spec = None if input_port is None else input_spec(input_port, meta, name, policy)
        return cls(spec, post.output_spec(output_port or _described_output(meta), meta), tuple(attention))

    @classmethod
    def for_network(cls, *, task: str, classes: Sequence[str], input_size: Sequence[int], normalization: Any,
                    threshold: float = 0.5, resize_policy: str | ResizePolicy = "stretch", in_channels: int = 3,
                    out_channels: int | None = None, input_interpolation: str | None = None) -> ModelCodec:
        """The codec of a network's own logits, fed normalized f32 NCHW at ``input_size``: how the
        measuring code (seg-eval, parity, compare) feeds PyTorch and ONNX Runtime exactly as an
        exported IR of the same checkpoint is fed, and decides their outputs by the same rule.
        ``input_interpolation``: the checkpoint's (``CheckpointInfo.input_interpolation``); None =
        ``attnseg.metadata.DEFAULT_INTERPOLATION``."""
        h, w = int(input_size[0]), int(input_size[1])
        meta = ModelMetadata(task=task, classes=list(classes), input_size=[h, w], input_channels=int(in_channels),
                             input_layout="NCHW", input_dtype="f32", normalization=normalization,
                             preprocessing_embedded=False, output="logits", threshold=float(threshold),
                             resize_policy=ResizePolicy.parse(resize_policy).value,
                             input_interpolation=check_interpolation(input_interpolation))
        out = int(out_channels or (1 if task == "binary" else len(classes)))
        f32 = np.dtype(np.float32)
        return cls.from_metadata(meta, Port((1, int(in_channels), h, w), f32), Port((1, out, h, w), f32))

    @classmethod
    def for_served_masks(cls, classes: Sequence[str], background: int | None, binary: bool,
                         attention: Sequence[str] = ()) -> ModelCodec:
        """The codec of masks a seg-serve server already decided (its response names the classes,
        the background and whether the model is binary): statistics, encoding and overlays only."""
        spec = post.OutputSpec(kind="mask", channels=len(classes), threshold=0.5, classes=tuple(classes),
                               background=background, binary=bool(binary))
        return cls(None, spec, tuple(attention))

    # ------------------------------------------------------------------ what the model means
    @property
    def classes(self) -> list[str]:
        """Name of each mask value (binary models: ``[<background>, <the class>]``)."""
        return list(self.output.classes)

    @property
    def background(self) -> int | None:
        """The mask value that means background (``postprocess.background_index``), None if no class does."""
        return self.output.background

    @property
    def binary(self) -> bool:
        """A binary model: masks are 0/1, written as 0/255 pictures."""
        return self.output.binary

    @property
    def threshold(self) -> float:
        """Binary models: foreground where the probability exceeds it (the exported threshold)."""
        return self.output.threshold

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(H, W) of a static model input, None for dynamic height and width."""
        return self._input().size

    @property
    def resize_policy(self) -> ResizePolicy:
        return self._input().resize_policy

    @property
    def interpolation(self) -> str:
        """How images are resized to the input: the model's ``input_interpolation`` (area | linear)."""
        return self._input().interpolation

    # ------------------------------------------------------------------ image -> tensor
    def prepare(self, image: ImageLike, source: str | None = None) -> Prepared:
        """An image (path or array: BGR uint8, grayscale, RGBA or 16-bit) -> the model's input
        batch (``prepared.tensor``) and the geometry ``decode`` needs to map results back."""
        prepared = prepare(image, self._input())
        if source is not None:
            prepared.source = source
        return prepared

    def tensor(self, image: ImageLike) -> np.ndarray:
        """Just the model's input batch for ``image`` (calibration, scoring, benchmarks)."""
        return self.prepare(image).tensor

    # ------------------------------------------------------------------ tensors -> result
    def decode(self, prepared: Prepared, raw_outputs: Sequence[np.ndarray],
               return_probabilities: bool = False) -> SegmentationResult:
        """Raw outputs (the main output, then one map per ``attention`` gate; fewer maps are
        fine) -> mask, class statistics, attention maps (and probabilities) at the image's size.
        Only new arrays are returned (raw outputs may be a request's reused buffers)."""
        t0 = time.perf_counter()
        mask, probs = post.decode(raw_outputs[0], prepared, self.output, return_probabilities)
        attention = {name: post.attention_map(a, prepared) for name, a in zip(self.attention, raw_outputs[1:])}
        ms = (time.perf_counter() - t0) * 1e3
        return self.result(mask, probs, attention, prepared.source, StageTimings(postprocess=ms, total=ms))

    def decide_at_output_size(self, raw: np.ndarray) -> np.ndarray:
        """The mask of one raw main output (1, C, h, w) / (1, h, w) at the output's own size, no
        image geometry: comparing backends pixel for pixel in model space (the parity check)."""
        size = tuple(int(v) for v in np.shape(raw)[-2:])
        prepared = Prepared(tensor=np.empty(0), original_size=size, input_size=size, valid_size=size)
        return post.decode(raw, prepared, self.output, False)[0]

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """(K, H, W) probabilities merged from several passes (tiles, flips) -> class ids, by the
        model's own rule (the exported threshold for binary models)."""
        return post.decide(probabilities, self.output)

    def result(self, mask: np.ndarray, probabilities: np.ndarray | None = None,
               attention: Mapping[str, np.ndarray] | None = None, source: str | None = None,
               timings: StageTimings | None = None) -> SegmentationResult:
        """The one constructor of ``SegmentationResult``: class statistics follow the background rule."""
        counts, fg = post.class_stats(mask, self.output)
        return SegmentationResult(
            mask=mask, classes=self.classes, class_pixel_counts=counts, foreground_fraction=fg,
            probabilities=probabilities, attention=dict(attention or {}), source=source,
            timings=timings or StageTimings(),
        )

    # ------------------------------------------------------------------ masks for people and files
    def mask_picture(self, mask: np.ndarray) -> np.ndarray:
        """What a mask file holds: binary models 0/255 (viewable, like Kvasir's own masks),
        class ids otherwise."""
        return draw.mask_to_png(mask, self.binary)

    def overlay(self, image: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
        """Class colours and outlines over ``image``; background pixels keep the image's colours."""
        return draw.overlay(image, mask, len(self.output.classes), alpha=alpha, background=self.background)

    def _input(self) -> InputSpec:
        if self.input is None:
            raise ModelConfigError("This codec decodes a server's masks only; it has no image input to prepare.")
        return self.input


def _described_output(meta: ModelMetadata) -> Port:
    """The main output as the metadata describes it (channels from ``output_spec``, if recorded)."""
    if meta.output == "mask":
        return Port(None, np.dtype(np.uint8))
    channels = meta.output_channels or (1 if meta.task == "binary" else meta.num_classes)
    return Port((None, int(channels), None, None), np.dtype(np.float32))


__all__ = ["ModelCodec", "Port"]
