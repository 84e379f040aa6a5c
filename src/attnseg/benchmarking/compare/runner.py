"""Time every backend on one input in alternating rounds; score them on a data set.

Rounds alternate (and rotate the order) so that a burst of load from another process, a
frequency change or a thermal drift hits every backend alike instead of whichever ran
last. The baseline is PyTorch eager fp32 when it runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from attnseg.benchmarking.compare.backends import (
    Backend,
    BackendName,
    ModelFiles,
    make_backend,
    parse_backends,
    prepare_backend,
)
from attnseg.benchmarking.compare.result import CompareResult
from attnseg.benchmarking.machine import load_average, machine_info
from attnseg.benchmarking.stats import LatencyStats
from attnseg.errors import BenchmarkError, DataError
from attnseg.metadata import LEGACY_INTERPOLATION

log = logging.getLogger(__name__)
#: Calibration images taken from the data set for INT8 (NNCF recommends >= 100; more is slower).
CALIBRATION_IMAGES = 128


def _dataset(data: str, info: Any, max_images: int | None, split: str | None,
             split_name: str) -> tuple[list[Any], Any, str, list[Any]]:
    """The scored samples and their data set, its description, and the INT8 calibration images
    (the split's ``train`` part when a split file is given)."""
    from attnseg.data import DatasetSpec, apply_split, open_dataset, read_split

    spec_text = data if ":" in data and not Path(data).exists() else f"folder:{data}"
    ds_info = open_dataset(DatasetSpec.parse(spec_text))
    task = info.task
    if task not in ("binary", "multiclass"):
        raise DataError(f"--data scores segmentation models; {info.arch} is a {task} model.")
    if ds_info.task != task:
        raise DataError(f"The checkpoint is a {task} model but {spec_text} is a {ds_info.task} data set.")
    samples, calib, desc = ds_info.samples, ds_info.samples, str(ds_info.spec)
    if split:
        parts = read_split(split)
        samples = apply_split(ds_info.samples, parts, split_name)
        calib = apply_split(ds_info.samples, parts, "train") if "train" in parts and split_name != "train" else samples
        desc += f" ({split_name} split of {split})"
    samples = samples[:max_images] if max_images else samples
    if not split:
        calib = samples
    return samples, ds_info, desc, [c.image for c in calib[:CALIBRATION_IMAGES]]


class _Codecs:
    """The checkpoint's codec (an exported IR's preparation and decision) for each output width
    a backend returns: the network's logits, or a binary IR's pair ``[logit(t), logit]``."""

    def __init__(self, info: Any, size: tuple[int, int]) -> None:
        self.info, self.size = info, size
        self._by_channels: dict[int, Any] = {}

    def __call__(self, channels: int | None = None) -> Any:
        from attnseg.runtime.codec import ModelCodec

        info = self.info
        if channels not in self._by_channels:
            self._by_channels[channels] = ModelCodec.for_network(
                task=info.task, classes=info.classes, input_size=self.size, normalization=info.normalization,
                threshold=info.threshold, resize_policy=getattr(info, "resize_policy", None) or "stretch",
                in_channels=info.in_channels, out_channels=channels,
                input_interpolation=getattr(info, "input_interpolation", LEGACY_INTERPOLATION))
        return self._by_channels[channels]

    def mask(self, out: Any) -> Any:
        """A backend's output (1, C, h, w) -> its mask at the output's size."""
        return self(int(out.shape[1])).decide_at_output_size(out)


def _accuracy(backend: Backend, samples: list[Any], ds_info: Any, info: Any, codecs: _Codecs) -> dict[str, Any]:
    """Scored as deployed: each image prepared by the codec, each output decided at the image's size."""
    from attnseg.data import BinaryMetrics, MulticlassMetrics, load_pair

    ignore = ds_info.ignore_index if ds_info.ignore_index is not None else 255
    if info.task == "binary":
        metrics: Any = BinaryMetrics()
    else:
        metrics = MulticlassMetrics(len(info.classes), ignore, list(info.classes))
    for sample in samples:
        image, y = load_pair(sample, info.task, len(info.classes) if info.task == "multiclass" else 2, ignore)
        prepared = codecs().prepare(image)
        out = backend(prepared.tensor)
        pred = codecs(int(out.shape[1])).decode(prepared, [out]).mask
        metrics.update(pred[None], y[None])
    values = metrics.compute()
    if info.task == "binary":
        return {"metric": "dice", "value": values["dice"], "jaccard": values["jaccard"], "count": values["count"]}
    return {"metric": "miou", "value": values["miou"], "pixel_accuracy": values["pixel_accuracy"],
            "count": values["count"]}


def check_input_size(size: Sequence[int], divisor: int) -> tuple[int, int]:
    if len(size) != 2:
        raise BenchmarkError(f"--input-size takes H W, got {list(size)}.")
    h, w = int(size[0]), int(size[1])
    if h < divisor or w < divisor or h % divisor or w % divisor:
        raise BenchmarkError(f"--input-size {h} {w}: both sides must be positive multiples of {divisor} for this model.")
    return h, w


def compare_backends(
    checkpoint: str | Path,
    output_dir: str | Path,
    data: str | None = None,
    input_size: Sequence[int] | None = None,
    compile: bool = False,
    backends: str | Sequence[str] | None = None,
    rounds: int = 5,
    iters: int = 5,
    warmup: int = 2,
    max_images: int | None = 50,
    arch: str | None = None,
    split: str | None = None,
    split_name: str = "test",
    calibration: str | None = None,
    force: bool = False,
    seed: int = 0,
    command: str = "",
) -> CompareResult:
    """Compare every backend on ``checkpoint``; reports go to ``output_dir`` (see writers).

    ``split`` / ``split_name`` pick the scored images from a split file (``seg-train``'s). INT8 is
    calibrated on ``calibration`` (a folder or data set spec), else on the split's ``train``
    images, else on the scored images, else on noise (timing only; the report says so).
    """
    import numpy as np

    from attnseg.atomic import atomic_dir
    from attnseg.benchmarking.compare.writers import write_compare_reports
    from attnseg.models import load_checkpoint

    if rounds < 1 or iters < 1 or warmup < 0:
        raise BenchmarkError("--rounds and --iters must be at least 1, --warmup at least 0.")
    names = parse_backends(",".join(backends) if isinstance(backends, (list, tuple)) else backends, compile)
    machine = machine_info()
    checkpoint = Path(checkpoint)
    model, info = load_checkpoint(checkpoint, arch=arch)
    size = check_input_size(input_size or info.input_size or (256, 256), int(getattr(model, "input_divisor", 16)))
    dataset, ds_info, data_desc, calib_images = None, None, None, None
    if split and not data:
        raise BenchmarkError("--split needs --data (the data set the split file describes).")
    if data:
        dataset, ds_info, data_desc, calib_images = _dataset(data, info, max_images, split, split_name)
    codecs = _Codecs(info, size)
    if dataset:
        from attnseg.imaging import read_image

        x = codecs().tensor(read_image(dataset[0].image))
    else:
        x = np.random.default_rng(seed).standard_normal((1, info.in_channels, *size)).astype(np.float32)

    notes = []
    with atomic_dir(Path(output_dir), force=force) as tmp:
        calib = calibration or calib_images
        files = ModelFiles(checkpoint, model, size, tmp / "models", calibration=calib, arch=arch)
        every = [make_backend(name, files) for name in names]
        runners: list[Backend] = []
        for b in every:
            log.info("Preparing %s ...", b.result.label)
            if prepare_backend(b):
                runners.append(b)
        if not runners:
            raise BenchmarkError("No backend could run; see the notes above.")

        for b in runners:  # first inference, then warm-up (not counted)
            t0 = time.perf_counter()
            b(x)
            b.result.first_inference_ms = (time.perf_counter() - t0) * 1000.0
            for _ in range(warmup):
                b(x)

        samples: dict[str, list[float]] = {b.name.value: [] for b in runners}
        cpu: dict[str, list[float]] = {b.name.value: [] for b in runners}
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for r in range(rounds):
            order = runners[r % len(runners):] + runners[:r % len(runners)]
            log.info("Round %d/%d: %s", r + 1, rounds, ", ".join(b.name.value for b in order))
            for b in order:
                for _ in range(iters):
                    c0, t0 = time.process_time(), time.perf_counter()
                    b(x)
                    samples[b.name.value].append((time.perf_counter() - t0) * 1000.0)
                    cpu[b.name.value].append((time.process_time() - c0) * 1000.0)
        cpu_share = (time.process_time() - cpu0) / max((time.perf_counter() - wall0) * machine.usable_cores, 1e-9)
        for b in runners:
            b.result.samples_ms = samples[b.name.value]
            b.result.cpu_ms = cpu[b.name.value]
            b.result.latency = LatencyStats.from_samples(b.result.samples_ms)

        base = next((b for b in runners if b.name is BackendName.TORCH_FP32), runners[0])
        ref = base(x)
        ref_mask = codecs.mask(ref)
        for b in runners:
            out = b(x)
            if out.ndim == 4 and ref.ndim == 4 and out.shape[1] == 2 and ref.shape[1] == 1:
                out = out[:, 1:2]  # a binary IR's logits are the pair [logit(t), logit]: channel 1 is the network's
            if out.shape != ref.shape:
                b.result.note = (b.result.note + "; " if b.result.note else "") + f"output shape {out.shape} != {ref.shape}"
                continue
            b.result.max_abs_diff = float(np.max(np.abs(out.astype(np.float32) - ref)))
            b.result.mask_agreement = float(np.mean(codecs.mask(out) == ref_mask))
            b.result.speedup = base.result.latency.median_ms / b.result.latency.median_ms
        if dataset is not None:
            for b in runners:
                log.info("Scoring %s on %d images ...", b.result.label, len(dataset))
                b.result.accuracy = _accuracy(b, dataset, ds_info, info, codecs)

        results = [b.result for b in every]  # skipped / failed rows keep their place
        for res in results:
            if res.model_path:
                try:
                    res.model_path = str(Path(res.model_path).relative_to(tmp))
                except ValueError:
                    pass
        for b in runners:
            b.close()
        int8 = next((b for b in runners if b.name is BackendName.OPENVINO_INT8), None)
        if int8 is not None:
            source = calibration or (f"{len(calib_images)} images of {data_desc if not split else 'the train split'}"
                                     if calib_images else None)
            int8.result.note = f"calibrated on {source}" if source else "calibrated on noise images: timing only"
            if source is None:
                notes.append("INT8 was calibrated on noise images (no --data / --calibration): its latency is "
                             "representative, its accuracy is not.")
        if compile is False and BackendName.TORCH_COMPILE not in names:
            notes.append("torch.compile not measured (add --compile).")
        note = _bf16_note(machine.cpu_flags, results)
        if note:
            notes.append(note)
        result = CompareResult(
            checkpoint=str(checkpoint), arch=info.arch, arch_kwargs=dict(info.arch_kwargs),
            input_shape=list(x.shape), task=info.task, rounds=rounds, iters_per_round=iters, warmup=warmup,
            baseline=base.name.value, backends=results, machine=machine, load_average_end=load_average(),
            cpu_share=cpu_share,
            data=data_desc, accuracy_metric=("dice" if info.task == "binary" else "miou") if dataset is not None else None,
            accuracy_images=len(dataset) if dataset is not None else 0, command=command,
            output_dir=str(output_dir), notes=notes,
        )
        write_compare_reports(result, tmp)
    return result



def _bf16_note(cpu_flags: list[str], results: list) -> str | None:
    """Explain the 'compute' column on bf16 CPUs, with the measured f32 / bf16-default ratio."""
    if not any(f in cpu_flags for f in ("avx512_bf16", "amx_bf16")):
        return None
    note = ("This CPU has bf16: OpenVINO computes FP32/FP16 IRs in bf16 by default (see 'compute'); "
            "'OpenVINO FP32 IR, f32 execution' forces f32.")
    by_name = {r.name: r.latency.median_ms for r in results if r.ok and r.latency.median_ms}
    default, f32 = by_name.get(BackendName.OPENVINO_FP32.value), by_name.get(BackendName.OPENVINO_FP32_F32.value)
    if default and f32:
        faster = "f32" if f32 < default else "the bf16 default"
        ratio = max(f32, default) / min(f32, default)
        note += f" Measured here: {faster} is {ratio:.2f}x faster."
        note += (" attnseg's runtime measures this once per model and CPU and uses the faster "
                 "(inference_precision='auto').")
    return note
