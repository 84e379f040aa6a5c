"""``Segmenter``: the segmentation wrapper over an ``OpenVINOAdapter``.

The adapter reads, compiles and runs the IR; the Segmenter's ``codec`` (``ModelCodec``, built
from the IR's metadata and port shapes) turns images into the IR's input (``preprocess``) and
raw outputs into masks, probabilities and attention maps at the image's own size
(``postprocess``). Other front ends (a server, a Ray actor, a tiler, a remote client) reuse the
same codec around their own transport. Only openvino, numpy and OpenCV are used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import openvino as ov

from attnseg.errors import InvalidOptionError, ModelConfigError
from attnseg.metadata import ModelMetadata
from attnseg.resize_policy import ResizePolicy
from attnseg.runtime.adapter import Completed, OpenVINOAdapter
from attnseg.runtime.autotune import PrecisionChoice
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.config_file import read_config_file
from attnseg.runtime.options import TTA, Hint, RuntimeOptions
from attnseg.runtime.pipeline import ordered_async
from attnseg.runtime.ports import Port
from attnseg.runtime.postprocess import OutputSpec
from attnseg.runtime.prefetch import DEFAULT_WORKERS as DEFAULT_PREFETCH
from attnseg.runtime.prefetch import prefetch as prefetch_map
from attnseg.runtime.preprocess import ImageLike, Prepared
from attnseg.runtime.result import SegmentationResult
from attnseg.runtime.tta import flipped, passes_of, unflipped
from attnseg.runtime.tta import merge as merge_passes

log = logging.getLogger(__name__)

ATTENTION_PREFIX = "attention_"
_DEFAULTS = RuntimeOptions()


class Segmenter:
    """An exported attnseg model compiled for one device.

    ``model``: an IR path (``.xml`` or a folder with one) or an ``OpenVINOAdapter`` already
    built (then the other arguments must stay at their defaults). Thread-safe: ``predict`` may
    be called from many threads at once; each call borrows an infer request from the adapter's
    pool. ``stream`` runs its own bounded asynchronous queue.
    """

    def __init__(
        self,
        model: str | Path | OpenVINOAdapter,
        device: str = "CPU",
        hint: str | Hint | None = None,
        num_streams: int | None = None,
        cache_dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
        inference_precision: str | None = "auto",
        resize_policy: str | ResizePolicy | None = None,
        tta: str | TTA | None = None,
        *,
        options: RuntimeOptions | None = None,
    ) -> None:
        """``options``: every runtime setting at once (``RuntimeOptions``, what the front ends hold);
        the keyword arguments are the same settings one by one (not both). ``config``: OpenVINO
        properties that win over everything, e.g. ``{"INFERENCE_PRECISION_HINT": "f32"}``.

        ``hint``: ``latency`` (default), ``throughput`` or ``cumulative_throughput``; None takes
        the tuned configuration's hint (``MODEL.load_config.json`` beside the IR, written by
        ``seg-benchmark --tune``), else latency. The tuned file's properties apply unless an
        argument overrides them (its streams only under its own hint).

        ``inference_precision``: ``auto`` (the fastest precision for this model on this device,
        measured once and cached per user, see ``attnseg.runtime.autotune``; the tuned file's
        precision if there is one), ``default`` (the device's own choice), or ``f32`` / ``bf16`` /
        ``f16``. An ``INFERENCE_PRECISION_HINT`` in ``config`` wins over everything.

        ``resize_policy``: how images are fitted to a static model input (``stretch`` |
        ``letterbox``); default: the policy the model was trained with, from its metadata.

        ``tta``: ``flip`` also runs each image mirrored left-right (twice the inference),
        ``flip4`` also upside down and both (four times); the passes' probabilities are averaged
        before the model's threshold decides the mask."""
        given = {"device": device != "CPU", "hint": hint is not None, "num_streams": num_streams is not None,
                 "cache_dir": cache_dir is not None, "inference_precision": inference_precision != "auto",
                 "resize_policy": resize_policy is not None, "tta": tta is not None}
        if options is None:
            options = RuntimeOptions(device=device, hint=hint, num_streams=num_streams, cache_dir=cache_dir,
                                     inference_precision=inference_precision, resize_policy=resize_policy, tta=tta)
        elif any(given.values()):
            raise InvalidOptionError(f"Segmenter takes options= or keyword settings, not both; move "
                                     f"{', '.join(k for k, v in given.items() if v)} into the RuntimeOptions.")
        self._options = options
        policy = None if options.resize_policy is None else ResizePolicy.parse(options.resize_policy)
        self._tta = options.tta
        if isinstance(model, OpenVINOAdapter):
            compile_given = {**{k: v for k, v in given.items() if k not in ("resize_policy", "tta")},
                             "config": config is not None,
                             **{f: getattr(options, f) != getattr(_DEFAULTS, f)
                                for f in ("device", "hint", "num_streams", "num_requests", "cache_dir",
                                          "inference_precision", "config_file")}}
            if any(compile_given.values()):
                raise InvalidOptionError(
                    f"Segmenter(adapter) takes its device and compile options from the adapter; "
                    f"drop {', '.join(k for k, v in compile_given.items() if v)}.")
            self._adapter = model
        else:
            props = dict(read_config_file(options.config_file, options.device)) if options.config_file else {}
            props.update(config or {})
            self._adapter = OpenVINOAdapter(model, options.device, hint=options.hint,
                                            num_streams=options.num_streams, num_requests=options.num_requests,
                                            cache_dir=options.cache_dir, config=props or None,
                                            inference_precision=options.inference_precision, compile=False)
        adapter = self._adapter
        meta = adapter.metadata
        if meta is None:
            raise ModelConfigError(f"{adapter.name} carries no attnseg metadata; export it with seg-export.")
        self._meta = meta
        adapter.compile()
        self._bind_ports(policy)

    # ------------------------------------------------------------------ properties
    @property
    def adapter(self) -> OpenVINOAdapter:
        """The OpenVINO adapter running the IR (device, compile config, request pool)."""
        return self._adapter

    @property
    def metadata(self) -> ModelMetadata:
        return self._meta

    @property
    def codec(self) -> ModelCodec:
        """How images become this model's input and its outputs become results (shared by every front end)."""
        return self._codec

    @property
    def options(self) -> RuntimeOptions:
        """The runtime settings this Segmenter was made with (``hint`` None: decided as documented)."""
        return self._options

    @property
    def tta(self) -> TTA:
        """Test-time augmentation applied to every prediction (``none``, ``flip`` or ``flip4``)."""
        return self._tta

    @property
    def classes(self) -> list[str]:
        """Name of each mask value (binary models: ``['background', <foreground name>]``)."""
        return self._codec.classes

    @property
    def input_size(self) -> tuple[int, int] | None:
        """(H, W) the model runs at, or ``None`` for models with dynamic height/width."""
        return self._codec.input_size

    @property
    def output_spec(self) -> OutputSpec:
        """How the main output is decoded: kind, channels, threshold, class names, background."""
        return self._codec.output

    @property
    def resize_policy(self) -> ResizePolicy:
        """How images are fitted to the model input (the model's recorded policy unless overridden)."""
        return self._codec.resize_policy

    @property
    def device(self) -> str:
        return self._adapter.device

    @property
    def hint(self) -> Hint:
        return self._adapter.hint

    @property
    def model_path(self) -> Path | None:
        return self._adapter.path

    @property
    def attention_names(self) -> list[str]:
        """Attention maps every result carries (e.g. ``['Att5', 'Att4', 'Att3', 'Att2']``)."""
        return list(self._codec.attention)

    @property
    def inference_precision(self) -> str:
        """The precision the device computes floating-point layers in (e.g. ``f32``, ``bf16``)."""
        return self._adapter.inference_precision

    @property
    def precision_choice(self) -> PrecisionChoice:
        """How ``inference_precision`` was decided: requested, measured (with timings), cached, ..."""
        return self._adapter.precision_choice

    @property
    def num_requests(self) -> int:
        """The device's optimal number of requests in flight for this model and hint (or the tuned number)."""
        return self._adapter.num_requests

    @property
    def compiled_model(self) -> ov.CompiledModel:
        """The underlying ``openvino.CompiledModel`` (for properties, profiling, benchmarking)."""
        return self._adapter.compiled

    def __repr__(self) -> str:
        return (f"Segmenter({str(self.model_path or self._adapter.name)!r}, device={self.device!r}, "
                f"hint={self.hint.value!r}, task={self._meta.task!r}, input_size={self.input_size}, "
                f"resize_policy={self.resize_policy.value!r})")

    # ------------------------------------------------------------------ the public stages
    def preprocess(self, image: ImageLike) -> Prepared:
        """An image (path or array: BGR uint8, grayscale, RGBA or 16-bit) -> the model's input
        (``prepared.tensor``) and the geometry ``postprocess`` needs to map results back."""
        return self._codec.prepare(image)

    def infer(self, prepared: Prepared) -> list[np.ndarray]:
        """Raw outputs for ``prepared``: the main output, then each attention map."""
        return self._adapter.infer({self._in_index: prepared.tensor}, self._out_indices)

    def postprocess(self, prepared: Prepared, raw_outputs: list[np.ndarray],
                    return_probabilities: bool = False) -> SegmentationResult:
        """Raw outputs (main output first, then attention maps in ``attention_names`` order)
        -> mask, class statistics, attention maps (and probabilities) at the image's size.
        ``timings.postprocess`` is measured; the caller fills the other stages it timed."""
        return self._codec.decode(prepared, raw_outputs, return_probabilities)

    # ------------------------------------------------------------------ inference
    def predict(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        """Segment one image (path or array: BGR uint8, grayscale, RGBA or 16-bit)."""
        t0 = time.perf_counter()
        prep = self.preprocess(image)
        t1 = time.perf_counter()
        if self._tta is not TTA.NONE:
            return self._predict_flipped(prep, return_probabilities, t0, t1)
        inferred: list[float] = []

        def decode(raw: list[np.ndarray]) -> SegmentationResult:
            # runs on the request's own output buffers (postprocess only makes new arrays)
            inferred.append(time.perf_counter())
            return self.postprocess(prep, raw, return_probabilities)

        result = self._adapter.infer_apply({self._in_index: prep.tensor}, self._out_indices, decode)
        return _timed(result, t0, t1, inferred[0])

    def stream(
        self,
        images: Iterable[Any],
        max_in_flight: int | None = None,
        return_probabilities: bool = False,
        prefetch: int | None = None,
    ) -> Iterator[SegmentationResult]:
        """Segment an iterable of images with up to ``max_in_flight`` requests running at once.

        Items are images (paths or arrays) or ``(name, image)`` pairs; results come back in
        input order with ``source`` set to the path or name. The default number in flight is
        twice the device's optimal number of requests (``num_requests``; create the Segmenter
        with ``hint="throughput"`` for more than one stream on CPU): one request runs on each
        stream while another waits, so a stream never idles while Python decodes a result or
        prepares the next image (measured: 0.93 -> 0.97-0.99 of benchmark_app's throughput on
        pre-decoded images). An error for one item is raised when the iterator reaches it,
        after all earlier results.

        ``prefetch`` threads (default 2; 0 = none) read, decode and preprocess the next images
        while the current ones infer; results and errors keep their order either way.
        """
        jobs = 2 * self.num_requests if max_in_flight is None else int(max_in_flight)
        if jobs < 1:
            raise InvalidOptionError(f"max_in_flight must be >= 1, got {max_in_flight}.")
        workers = DEFAULT_PREFETCH if prefetch is None else int(prefetch)
        if workers < 0:
            raise InvalidOptionError(f"prefetch must be >= 0 threads, got {prefetch}.")
        if self._tta is not TTA.NONE:  # each item is two requests: predict() on a bounded ordered pool
            return self._stream_predict(images, return_probabilities, max(1, jobs // 2))

        def prep_item(x: Any) -> tuple[Prepared, np.ndarray]:
            name = None
            if isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], np.ndarray):
                name, x = x
            p = self.preprocess(x)
            if name is not None:
                p.source = str(name)
            return p, p.tensor

        def finish(p: Prepared, c: Completed, t0: float, t1: float) -> SegmentationResult:
            r = _timed(self.postprocess(p, c.outputs, return_probabilities), t0, t1, c.t_done)
            r.timings.infer = c.infer_ms
            return r

        return ordered_async(self._adapter, images, prep_item, finish, self._in_index, self._out_indices, jobs,
                             prefetch_workers=workers)

    def __call__(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        return self.predict(image, return_probabilities)

    # ------------------------------------------------------------------ internals
    def _predict_flipped(self, prep: Prepared, return_probabilities: bool, t0: float,
                         t1: float) -> SegmentationResult:
        """The image and its flips (``tta``), merged in probability space by the codec."""
        layout = self._codec.input.layout
        passes = [self.infer(prep)]
        for v, h in passes_of(self._tta)[1:]:
            outputs = self._adapter.infer({self._in_index: flipped(prep.tensor, layout, v, h)}, self._out_indices)
            passes.append(unflipped(outputs, v, h))
        t2 = time.perf_counter()
        return _timed(merge_passes(self._codec, prep, passes, return_probabilities), t0, t1, t2)

    def _stream_predict(self, images: Iterable[Any], return_probabilities: bool,
                        jobs: int) -> Iterator[SegmentationResult]:
        def one(x: Any) -> SegmentationResult:
            name = None
            if isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], np.ndarray):
                name, x = x
            result = self.predict(x, return_probabilities)
            if name is not None:
                result.source = str(name)
            return result

        for future in prefetch_map(images, one, workers=jobs, depth=jobs):
            yield future.result()

    def _bind_ports(self, policy: ResizePolicy | None = None) -> None:
        """Find the image input, the main output and the attention outputs; check the IR."""
        meta, name = self._meta, self._adapter.name
        inputs = self._adapter.inputs
        idx = next((i for i, p in enumerate(inputs) if meta.input_name in p.get_names()), None)
        if idx is None:
            if len(inputs) != 1:
                raise ModelConfigError(
                    f"{name} has {len(inputs)} inputs and none is named {meta.input_name!r}; "
                    "it was not exported by attnseg."
                )
            idx = 0
        self._in_index = idx

        outputs = self._adapter.outputs
        names = [p.get_names() for p in outputs]
        main = next((i for i, n in enumerate(names) if meta.output in n), None)
        if main is None:
            plain = [i for i, n in enumerate(names)
                     if not any(s.startswith(ATTENTION_PREFIX) for s in n)]
            if not plain:
                raise ModelConfigError(f"{name} has no segmentation output.")
            main = plain[0]
        att_idx: list[int] = []
        att_names: list[str] = []
        wanted = list(meta.attention_outputs) or sorted(
            s for n in names for s in n if s.startswith(ATTENTION_PREFIX))
        for att in wanted:
            i = next((k for k, n in enumerate(names) if att in n), None)
            if i is None:
                log.warning("%s: attention output %s listed in metadata is missing", name, att)
                continue
            att_idx.append(i)
            att_names.append(att.removeprefix(ATTENTION_PREFIX))
        self._out_indices = [main, *att_idx]
        self._codec = ModelCodec.from_metadata(meta, Port.of(inputs[idx]), Port.of(outputs[main]), att_names,
                                               name, policy)


def _timed(result: SegmentationResult, t0: float, t1: float, t2: float) -> SegmentationResult:
    """Fill the stages timed around ``postprocess`` (start, prepared, inferred)."""
    t = result.timings
    t.preprocess, t.infer = (t1 - t0) * 1e3, (t2 - t1) * 1e3
    t.total = t.preprocess + t.infer + t.postprocess
    return result


__all__ = ["Hint", "RuntimeOptions", "Segmenter"]
