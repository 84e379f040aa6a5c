"""``SegmentationModel``: a ``kserve.Model`` that answers v2 infer requests with a ``Segmenter``.

Nothing here runs a network: it turns an ``InferRequest`` into images, hands each image to the
Segmenter on a thread pool (decoding, pre- and post-processing and the device all run off the
event loop; the Segmenter spreads concurrent calls over its pool of infer requests) and turns the
``SegmentationResult`` objects into v2 outputs. The wire format is ``attnseg.runtime.v2``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import RequestedOutput

from attnseg import imaging
from attnseg.errors import AttnsegError
from attnseg.runtime import SegmentationResult, Segmenter, overlay, v2

log = logging.getLogger("attnseg.serve")


@dataclass(frozen=True)
class SegmenterSettings:
    """How each served model is compiled (the Segmenter's own options)."""

    device: str = "CPU"
    hint: str = "throughput"
    num_streams: int | None = None
    cache_dir: str | None = None
    inference_precision: str | None = "auto"


class SegmentationModel(Model):
    """One exported IR served under ``name``; ``load()`` compiles it, then it is ready."""

    def __init__(self, name: str, model_path: str | Path, settings: SegmenterSettings | None = None,
                 threads: int | None = None) -> None:
        super().__init__(name)
        self.model_path = Path(model_path)
        self.settings = settings or SegmenterSettings()
        self._threads = threads
        self._segmenter: Segmenter | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> bool:
        s = self.settings
        self._segmenter = Segmenter(self.model_path, device=s.device, hint=s.hint, num_streams=s.num_streams,
                                    cache_dir=s.cache_dir, inference_precision=s.inference_precision)
        # Enough threads to keep every infer request busy while others decode or post-process.
        threads = self._threads or 2 * self._segmenter.num_requests + 2
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"seg-{self.name}")
        self.ready = True
        log.info("model ready", extra={"model": self.name, "path": str(self.model_path),
                                       "device": self._segmenter.device, "hint": self._segmenter.hint.value,
                                       "infer_requests": self._segmenter.num_requests, "threads": threads,
                                       "inference_precision": self._segmenter.inference_precision})
        return self.ready

    def stop(self) -> None:
        """Not ready any more; work already accepted still finishes (the pool is not cancelled)."""
        self.ready = False
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=False)

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            raise RuntimeError(f"model {self.name} is not loaded")
        return self._segmenter

    # ------------------------------------------------------------------ metadata
    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": "image", "datatype": "UINT8", "shape": [-1, -1, -1, 3]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        seg = self.segmenter
        k = len(seg.classes)
        types = [{"name": v2.MASK, "datatype": "UINT8" if k <= 256 else "UINT16", "shape": [-1, -1, -1]},
                 {"name": v2.PROBABILITIES, "datatype": "FP32", "shape": [-1, k, -1, -1]},
                 {"name": v2.OVERLAY, "datatype": "BYTES", "shape": [-1]}]
        types += [{"name": f"{v2.ATTENTION}_{a}", "datatype": "FP32", "shape": [-1, -1, -1]}
                  for a in seg.attention_names]
        return types

    # ------------------------------------------------------------------ inference
    async def predict(self, payload: InferRequest, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput("Send a v2 infer request (POST /v2/models/<name>/infer or gRPC ModelInfer).")
        seg = self.segmenter
        images = request_images(payload)
        wanted = requested_outputs(payload, seg.attention_names)
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        results = await asyncio.gather(*(
            loop.run_in_executor(self._executor, self._segment, img, wanted) for img in images))
        response = build_response(self.name, payload, [r for r, _ in results], [o for _, o in results],
                                  wanted, seg)
        log.debug("infer", extra={"model": self.name, "images": len(images),
                                  "ms": round((time.perf_counter() - t0) * 1e3, 3)})
        return response

    def _segment(self, image: np.ndarray | bytes, wanted: list[str]) -> tuple[SegmentationResult, bytes | None]:
        """Runs on the pool: decode (if bytes), segment, draw the overlay if asked."""
        bgr = decode_image(image) if isinstance(image, bytes) else image
        want_probs = v2.PROBABILITIES in wanted
        try:
            result = self.segmenter.predict(bgr, return_probabilities=want_probs)
        except AttnsegError as exc:  # e.g. an image array of an unsupported kind
            raise InvalidInput(str(exc)) from None
        png = None
        if v2.OVERLAY in wanted:
            # Drawn as seg-infer draws its overlays.
            picture = overlay.overlay(imaging.to_bgr8(bgr), result.mask, len(self.segmenter.classes))
            ok, buf = cv2.imencode(".png", picture)
            if not ok:
                raise RuntimeError("PNG encoding of the overlay failed")
            png = buf.tobytes()
        return result, png


def decode_image(data: bytes) -> np.ndarray:
    """Encoded image file -> HxWx3 uint8 BGR by ``attnseg.imaging.decode_image`` (the decoder
    ``read_image`` uses), its errors as kserve's ``InvalidInput`` (a 400, not a 500)."""
    try:
        return imaging.decode_image(data, source="posted image")
    except AttnsegError as exc:
        raise InvalidInput(str(exc)) from None


def request_images(payload: InferRequest) -> list[np.ndarray | bytes]:
    """The images of a request: BGR arrays (UINT8 [N,H,W,C]) or encoded files (BYTES [N])."""
    if len(payload.inputs) != 1:
        raise InvalidInput(f"Send exactly one input (the images), got {len(payload.inputs)}.")
    inp = payload.inputs[0]
    dtype = inp.datatype
    shape = [int(s) for s in inp.shape]
    if dtype == "BYTES":
        try:
            items = list(inp.as_numpy().reshape(-1))
        except (ValueError, TypeError, OverflowError) as exc:  # struct.error is a ValueError... mostly
            raise InvalidInput(f"Input {inp.name!r}: BYTES data does not match shape {shape}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - struct.error from a truncated length prefix
            raise InvalidInput(f"Input {inp.name!r}: malformed BYTES data ({exc}).") from None
        if not items:
            raise InvalidInput(f"Input {inp.name!r} holds no image.")
        return [bytes(b) if not isinstance(b, str) else b.encode("latin-1") for b in items]
    if dtype != "UINT8":
        raise InvalidInput(f"Input {inp.name!r} is {dtype}; send UINT8 [N,H,W,3] BGR pixels "
                           "or BYTES [N] encoded image files.")
    if len(shape) != 4 or shape[3] not in (1, 3) or min(shape) < 1:
        raise InvalidInput(f"Input {inp.name!r} has shape {shape}; UINT8 images must be [N,H,W,3] "
                           "(BGR) or [N,H,W,1].")
    try:
        batch = inp.as_numpy()
    except ValueError as exc:
        raise InvalidInput(f"Input {inp.name!r}: data does not match shape {shape}: {exc}") from None
    return [batch[i] for i in range(batch.shape[0])]


def requested_outputs(payload: InferRequest, attention_names: list[str]) -> list[str]:
    """Output names the request asks for (standard ``outputs`` list), ``attention`` expanded."""
    asked = [o.name for o in (payload.request_outputs or [])] or [v2.MASK]
    gates = [f"{v2.ATTENTION}_{a}" for a in attention_names]
    wanted: list[str] = []
    for name in asked:
        if name == v2.ATTENTION:
            if not gates:
                raise InvalidInput("This model has no attention outputs (export it with attention maps).")
            wanted += gates
        elif name in (v2.MASK, v2.PROBABILITIES, v2.OVERLAY) or name in gates:
            wanted.append(name)
        else:
            choices = ", ".join([v2.MASK, v2.PROBABILITIES, v2.OVERLAY] + ([v2.ATTENTION] + gates if gates else []))
            raise InvalidInput(f"Unknown output {name!r}; this model has: {choices}.")
    return list(dict.fromkeys(wanted))


def build_response(model_name: str, payload: InferRequest, results: list[SegmentationResult],
                   pngs: list[bytes | None], wanted: list[str], seg: Segmenter) -> InferResponse:
    """Stack per-image results into v2 outputs (or one output per image when sizes differ)."""
    ragged = len({r.size for r in results}) > 1

    def tensors(name: str, rs: list[SegmentationResult], ps: list[bytes | None]) -> np.ndarray:
        if name == v2.MASK:
            return np.stack([r.mask for r in rs])
        if name == v2.PROBABILITIES:
            if any(r.probabilities is None for r in rs):
                raise InvalidInput("This model does not output scores, so it has no probabilities output.")
            return np.stack([r.probabilities for r in rs]).astype(np.float32, copy=False)
        if name == v2.OVERLAY:
            return np.array(ps, dtype=object)
        gate = name[len(v2.ATTENTION) + 1:]
        return np.stack([r.attention[gate] for r in rs]).astype(np.float32, copy=False)

    binary = _binary_choice(payload)
    groups = [(results, pngs, None)] if not ragged else [([r], [p], i) for i, (r, p) in enumerate(zip(results, pngs))]
    outputs: list[InferOutput] = []
    requested: list[RequestedOutput] = []
    for name in wanted:
        for rs, ps, index in groups:
            array = tensors(name, rs, ps)
            out_name = name if index is None else v2.ragged_name(name, index)
            out = InferOutput(name=out_name, shape=list(array.shape), datatype=v2.datatype_of(array))
            if payload.from_grpc:
                # Raw bytes now: kserve 0.21's to_grpc() cannot take numpy arrays (truth-value check).
                out.set_data_from_numpy(array, binary_data=True)
            else:
                out.data = array
            outputs.append(out)
            # BYTES (PNG files) cannot travel inside JSON: always binary.
            use_binary = binary(name) or name == v2.OVERLAY
            requested.append(RequestedOutput(out_name, {"binary_data": use_binary}))
    params = v2.response_parameters(seg.classes, _background(seg), seg.attention_names, ragged)
    return InferResponse(response_id=payload.id or "", model_name=model_name, infer_outputs=outputs,
                         parameters=params, use_binary_outputs=payload.use_binary_outputs,
                         requested_outputs=None if payload.from_grpc else requested)


def _binary_choice(payload: InferRequest):
    """Per output: the request output's ``binary_data`` if given, else ``binary_data_output``."""
    default = bool(payload.use_binary_outputs)
    per_output = {}
    for o in payload.request_outputs or []:
        if o.parameters and "binary_data" in o.parameters:
            per_output[o.name] = bool(o.parameters["binary_data"])

    def choose(name: str) -> bool:
        if name.startswith(v2.ATTENTION + "_") and name not in per_output:
            return per_output.get(v2.ATTENTION, default)
        return per_output.get(name, default)
    return choose


def _background(seg: Segmenter) -> int | None:
    lowered = [c.lower() for c in seg.classes]
    for name in ("background", "_background_", "bg"):
        if name in lowered:
            return lowered.index(name)
    return 0 if seg.metadata.task == "binary" else None
