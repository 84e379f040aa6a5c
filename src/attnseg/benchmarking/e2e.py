"""End-to-end timing on real images: decode, preprocess, infer, postprocess, and all together.

Inference-only figures flatter a deployment: a 2-core edge box may spend as long decoding
and resizing a JPEG as running the network. This times each stage separately on real
files, preparing and decoding through the model's own ``ModelCodec`` (``attnseg.runtime``),
the code an application runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from attnseg.benchmarking.config import BenchmarkConfig
from attnseg.benchmarking.result import EndToEndResult, StageTiming
from attnseg.benchmarking.stats import LatencyStats
from attnseg.errors import BenchmarkError, InputFileError

log = logging.getLogger(__name__)
STAGES = ("decode", "preprocess", "infer", "postprocess", "total")


def model_metadata(model: Any, model_path: str | Path) -> Any:
    """The model's own description (rt_info, else the JSON twin, else inferred defaults)."""
    from attnseg.metadata import ModelMetadata
    from attnseg.runtime.adapter import read_metadata

    meta = read_metadata(model, Path(model_path), required=False)
    if meta is None:
        out_c = model.outputs[0].partial_shape[1]
        n = out_c.get_length() if out_c.is_static else 1
        meta = ModelMetadata(task="binary" if n == 1 else "multiclass",
                             classes=["foreground"] if n == 1 else [f"class_{i}" for i in range(n)])
    return meta


def _input_size(model: Any, meta: Any) -> list[int]:
    if meta.input_size:
        return [int(v) for v in meta.input_size]
    ps = model.inputs[0].partial_shape
    h_idx, w_idx = (1, 2) if meta.input_layout == "NHWC" else (2, 3)
    if ps.rank.is_static and ps.rank.get_length() == 4 and ps[h_idx].is_static and ps[w_idx].is_static:
        return [ps[h_idx].get_length(), ps[w_idx].get_length()]
    raise BenchmarkError("The model has a dynamic spatial size and no input_size in its metadata; pass -shape.")


StageFn = Callable[[Path], dict[str, float]]


def _segmenter_stages(cfg: BenchmarkConfig) -> tuple[StageFn, list[int], str] | None:
    """Stages timed by ``attnseg.runtime.Segmenter`` (the code an application runs).

    None when the runtime is missing or the IR has no attnseg metadata (a bare IR).
    """
    try:
        from attnseg.runtime import RuntimeOptions, Segmenter
    except ImportError:
        return None
    from attnseg.errors import InputFileError as _NoMetadata
    from attnseg.imaging import read_image

    try:
        seg = Segmenter(cfg.model_path, options=RuntimeOptions(
            device=cfg.device, hint="latency", cache_dir=cfg.cache_dir, config_file=cfg.config_file,
            inference_precision=cfg.infer_precision or "auto", resize_policy=cfg.resize_policy, tta=cfg.tta))
    except _NoMetadata as exc:
        if "no attnseg metadata" not in str(exc):
            raise
        log.info("%s; timing the stages with attnseg.imaging instead of the Segmenter.", exc)
        return None
    if seg.input_size is None:
        return None

    def one(path: Path) -> dict[str, float]:
        t0 = time.perf_counter()
        bgr = read_image(path)
        decode_ms = (time.perf_counter() - t0) * 1000.0
        t = seg.predict(bgr).timings
        return {"decode": decode_ms, "preprocess": t.preprocess, "infer": t.infer,
                "postprocess": t.postprocess, "total": decode_ms + t.total}

    return one, list(seg.input_size), "attnseg.runtime.Segmenter (hint latency) + attnseg.imaging.read_image"


def _local_stages(cfg: BenchmarkConfig) -> tuple[StageFn, list[int], str]:
    """Stages for a bare IR (no attnseg metadata, a ``Segmenter`` refuses it): the codec of the
    description ``model_metadata`` infers, around a compiled model."""
    import openvino as ov

    from attnseg.benchmarking.openvino_bench import benchmark_properties
    from attnseg.devices import validate_device
    from attnseg.errors import short_message
    from attnseg.imaging import read_image
    from attnseg.runtime.adapter import read_model
    from attnseg.runtime.codec import ModelCodec
    from attnseg.runtime.ports import Port

    core = ov.Core()
    validate_device(cfg.device, core)
    model = read_model(core, cfg.model_path)
    meta = model_metadata(model, cfg.model_path)
    size = _input_size(model, meta)
    if model.inputs[0].partial_shape.is_dynamic:
        c = meta.input_channels
        model.reshape({model.inputs[0].get_any_name(): ov.PartialShape(
            [1, size[0], size[1], c] if meta.input_layout == "NHWC" else [1, c, size[0], size[1]])})
    props = {**benchmark_properties(cfg), "PERF_COUNT": False, "PERFORMANCE_HINT": "LATENCY"}
    props.pop("NUM_STREAMS", None)
    try:
        compiled = core.compile_model(model, cfg.device, props)
    except RuntimeError as exc:
        raise BenchmarkError(f"{cfg.device} cannot compile {cfg.model_path}: {short_message(exc)}") from None
    request = compiled.create_infer_request()
    codec = ModelCodec.from_metadata(meta, Port.of(compiled.inputs[0]), Port.of(compiled.outputs[0]))

    def one(path: Path) -> dict[str, float]:
        t0 = time.perf_counter()
        bgr = read_image(path)
        t1 = time.perf_counter()
        prepared = codec.prepare(bgr)
        t2 = time.perf_counter()
        out = request.infer({0: prepared.tensor})[compiled.outputs[0]]
        t3 = time.perf_counter()
        codec.decode(prepared, [out])
        t4 = time.perf_counter()
        ms = lambda a, b: (b - a) * 1000.0
        return {"decode": ms(t0, t1), "preprocess": ms(t1, t2), "infer": ms(t2, t3),
                "postprocess": ms(t3, t4), "total": ms(t0, t4)}

    return one, size, "attnseg.runtime.ModelCodec + OpenVINO compiled model (sync, hint latency)"


def benchmark_end_to_end(
    cfg: BenchmarkConfig,
    images_dir: str | Path | Sequence[Path],
    inference_only_median_ms: float,
    niter: int | None = None,
    duration_s: float | None = None,
    max_images: int | None = None,
) -> EndToEndResult:
    """Time decode / preprocess / infer / postprocess on the images in ``images_dir`` (a folder,
    or the image paths of a data set: ``seg-benchmark --images KIND:PATH``).

    Runs ``niter`` images (cycling through the folder; default: every image once) or for
    ``duration_s``; one warm-up image is not counted. Images are processed one at a time
    with the latency hint: this is the per-image cost an application sees.
    """
    from attnseg.imaging import list_images

    if isinstance(images_dir, (list, tuple)):
        images, images_dir = [Path(p) for p in images_dir], f"{len(images_dir)} images of a data set"
    else:
        images_dir = Path(images_dir)
        images = list_images(images_dir)
    if not images:
        raise InputFileError(f"--images {images_dir} holds no images (.jpg, .png, .bmp, .tif, .webp).")
    if max_images:
        images = images[:max_images]
    if cfg.shape or cfg.batch:
        log.info("End-to-end mode runs one image at a time; -shape / -b apply to the inference-only figure only.")
    one, size, source = _segmenter_stages(cfg) or _local_stages(cfg)

    one(images[0])  # warm-up, not counted
    target = niter or (None if duration_s else len(images))
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    i = 0
    start = time.perf_counter()
    while (target and i < target) or (duration_s and time.perf_counter() - start < duration_s):
        for stage, ms in one(images[i % len(images)]).items():
            samples[stage].append(ms)
        i += 1
    wall = time.perf_counter() - start
    return EndToEndResult(
        images_dir=str(images_dir),
        num_images=len(images),
        count=i,
        input_size=size,
        stages=[StageTiming(s, LatencyStats.from_samples(samples[s])) for s in STAGES],
        throughput_fps=i / wall if wall > 0 else float("nan"),
        inference_only_median_ms=inference_only_median_ms,
        timing_source=source,
    )
