"""``SegmentationModel``: a ``kserve.Model`` that answers v2 infer requests with a ``Segmenter``.

Nothing here runs a network: it checks a ``WireRequest`` against the budgets (``serve.request``),
waits for its pixels in the server-wide in-flight budget, hands each image to the Segmenter on a
thread pool and encodes the response there too. Checking, decoding, pre- and post-processing,
the device wait and the response serialisation all run off the event loop, so health checks
answer while a large request is served. The wire format is ``attnseg.runtime.v2``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import orjson
from kserve import Model
from kserve.errors import ModelNotReady
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from attnseg import imaging
from attnseg.errors import AttnsegError
from attnseg.runtime import SegmentationResult, Segmenter, v2
from attnseg.runtime.options import Hint, RuntimeOptions
from attnseg.serve.errors import RequestError, from_attnseg
from attnseg.serve.request import Limits, Plan, WireRequest, plan

log = logging.getLogger("attnseg.serve")


class SegmentationModel(Model):
    """One exported IR served under ``name``; ``load()`` compiles it, then it is ready."""

    def __init__(self, name: str, model_path: str | Path, runtime: RuntimeOptions | None = None,
                 threads: int | None = None, limits: Limits | None = None, budget: MemoryBudget | None = None,
                 version: str = "1") -> None:
        super().__init__(name)
        self.model_path = Path(model_path)
        self.runtime = runtime or RuntimeOptions(hint=Hint.THROUGHPUT)
        self.limits = limits or Limits()
        self.budget = budget
        self.version = str(version)
        self._threads = threads
        self._segmenter: Segmenter | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> bool:
        self._segmenter = Segmenter(self.model_path, options=self.runtime)
        # Enough threads to keep every infer request busy while others decode or post-process.
        threads = self._threads or 2 * self._segmenter.num_requests + 2
        if self._executor is None:
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

    def unload(self) -> None:
        """Model control's unload: not ready, the compiled model released (``load()`` compiles it again)."""
        self.ready = False
        self._segmenter = None

    def validate(self, payload: Any) -> Any:
        return payload  # checked by serve.request.plan, on the pool

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            raise RuntimeError(f"model {self.name} is not loaded")
        return self._segmenter

    # ------------------------------------------------------------------ metadata
    def get_input_types(self) -> list[dict[str, Any]]:
        """Both input kinds; a request sends exactly one of them (under any name)."""
        return [{"name": "image", "datatype": "UINT8", "shape": [-1, -1, -1, 3]},
                {"name": "image_bytes", "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        seg = self.segmenter
        k = len(seg.classes)
        types = [{"name": v2.MASK, "datatype": "UINT8" if k <= 256 else "UINT16", "shape": [-1, -1, -1]},
                 {"name": v2.PROBABILITIES, "datatype": "FP32", "shape": [-1, k, -1, -1]},
                 {"name": v2.OVERLAY, "datatype": "BYTES", "shape": [-1]}]
        types += [{"name": f"{v2.ATTENTION}_{a}", "datatype": "FP32", "shape": [-1, -1, -1]}
                  for a in seg.attention_names]
        return types

    def metadata(self) -> dict[str, Any]:
        """v2 model metadata, versions and both inputs included (REST and gRPC say the same)."""
        return {"name": self.name, "versions": [self.version], "platform": "openvino_attnseg",
                "inputs": self.get_input_types(), "outputs": self.get_output_types(),
                "parameters": {"inputs": "send exactly one input: UINT8 [N,H,W,3] BGR pixels or BYTES [N] encoded "
                                         "JPEG/PNG files"}}

    # ------------------------------------------------------------------ inference
    async def predict(self, payload: WireRequest, headers: dict[str, str] | None = None,
                      response_headers: dict[str, str] | None = None) -> RestAnswer | pb.ModelInferResponse:
        if not isinstance(payload, WireRequest):
            raise RequestError("Send a v2 infer request (POST /v2/models/<name>/infer or gRPC ModelInfer).")
        seg = self._segmenter
        if seg is None or not self.ready:
            raise ModelNotReady(self.name)
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        # Checking a binary request reads a few header bytes per image: done here. JSON pixel data is
        # converted to numpy, so a large one is checked on the pool.
        todo = (self._plan(payload, seg) if payload.light
                else await loop.run_in_executor(self._executor, self._plan, payload, seg))
        encode = encode_grpc if payload.grpc else encode_rest
        budget = self.budget or _NO_BUDGET
        async with budget.hold(todo.memory):
            if len(todo.images) == 1:  # the common case: one hand-off segments and encodes
                response = await loop.run_in_executor(self._executor, self._segment_and_encode, seg, payload,
                                                      todo, encode)
            else:
                results = await asyncio.gather(*(
                    loop.run_in_executor(self._executor, self._segment, seg, img, todo.wanted, i)
                    for i, img in enumerate(todo.images)))
                todo.images = []  # the posted bytes are not needed any more
                response = await loop.run_in_executor(self._executor, encode, self, seg, payload, todo, results)
        log.debug("infer", extra={"model": self.name, "images": len(todo.sizes),
                                  "ms": round((time.perf_counter() - t0) * 1e3, 3)})
        return response

    def _segment_and_encode(self, seg: Segmenter, payload: WireRequest, todo: Plan, encode: Any) -> Any:
        result = self._segment(seg, todo.images[0], todo.wanted, 0)
        todo.images = []
        return encode(self, seg, payload, todo, [result])

    def _plan(self, payload: WireRequest, seg: Segmenter) -> Plan:
        return plan(payload, self.limits, len(seg.classes), seg.attention_names)

    def _segment(self, seg: Segmenter, image: np.ndarray | bytes, wanted: list[str],
                 index: int) -> tuple[SegmentationResult, bytes | None]:
        """Runs on the pool: decode (if bytes), segment, draw the overlay if asked."""
        try:
            bgr = (imaging.decode_image(image, source=f"{index} of the request", max_pixels=self.limits.max_image_pixels)
                   if isinstance(image, bytes) else imaging.to_bgr8(image, source=f"image {index}"))
            result = seg.predict(bgr, return_probabilities=v2.PROBABILITIES in wanted)
        except AttnsegError as exc:  # undecodable bytes, an image array of an unsupported kind
            raise from_attnseg(exc) from None
        png = None
        if v2.OVERLAY in wanted:
            picture = seg.codec.overlay(bgr, result.mask)  # drawn as seg-infer draws its overlays
            ok, buf = cv2.imencode(".png", picture)
            if not ok:
                raise RuntimeError("PNG encoding of the overlay failed")
            png = buf.tobytes()
        if v2.PROBABILITIES in wanted and result.probabilities is None:
            raise RequestError("This model does not output scores, so it has no probabilities output.")
        return result, png


class MemoryBudget:
    """Server-wide cap on the memory requests being served hold at once (decoded images and
    outputs, estimated by ``request.plan`` before anything is decoded): a request waits (never
    fails) until its estimate fits, so the process stays under a known bound."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, int(capacity))
        self.used = 0
        self._cond: asyncio.Condition | None = None

    def hold(self, nbytes: int) -> _Hold:
        return _Hold(self, min(int(nbytes), self.capacity))


class _Hold:
    def __init__(self, budget: MemoryBudget, pixels: int) -> None:
        self.budget, self.pixels = budget, pixels

    async def __aenter__(self) -> None:
        b = self.budget
        if b._cond is None:
            b._cond = asyncio.Condition()
        async with b._cond:
            await b._cond.wait_for(lambda: b.used + self.pixels <= b.capacity)
            b.used += self.pixels

    async def __aexit__(self, *exc: object) -> None:
        b = self.budget
        assert b._cond is not None
        async with b._cond:
            b.used -= self.pixels
            b._cond.notify_all()


_NO_BUDGET = MemoryBudget(1 << 62)


@dataclass
class RestAnswer:
    """An encoded REST response: the body and the JSON part's length (None: all JSON)."""

    body: bytes
    json_length: int | None


def _tensors(name: str, results: list[SegmentationResult], pngs: list[bytes | None]) -> np.ndarray | list[bytes]:
    if name == v2.MASK:
        return np.stack([r.mask for r in results])
    if name == v2.PROBABILITIES:
        return np.stack([r.probabilities for r in results]).astype(np.float32, copy=False)
    if name == v2.OVERLAY:
        return [p or b"" for p in pngs]
    gate = name[len(v2.ATTENTION) + 1:]
    return np.stack([r.attention[gate] for r in results]).astype(np.float32, copy=False)


def _groups(results: list[tuple[SegmentationResult, bytes | None]]):
    """One group for a batch of equal sizes, else one per image (``mask_0``, ``mask_1``...)."""
    rs = [r for r, _ in results]
    ps = [p for _, p in results]
    if len({r.size for r in rs}) <= 1:
        return False, [(rs, ps, None)]
    return True, [([r], [p], i) for i, (r, p) in enumerate(zip(rs, ps))]


def response_parameters(seg: Segmenter, ragged: bool) -> dict[str, Any]:
    """Response parameters as real JSON values (REST); gRPC carries the lists as JSON strings."""
    codec = seg.codec
    background = codec.background
    return {"classes": list(seg.classes), "background": -1 if background is None else int(background),
            "attention_names": list(seg.attention_names), "ragged": bool(ragged), "binary": bool(codec.binary)}


def encode_rest(model: SegmentationModel, seg: Segmenter, req: WireRequest, todo: Plan,
                results: list[tuple[SegmentationResult, bytes | None]]) -> RestAnswer:
    """The v2 REST response: JSON header + binary parts (binary extension) or JSON only. On the pool."""
    ragged, groups = _groups(results)
    outputs: list[dict[str, Any]] = []
    parts: list[bytes] = []
    for name in todo.wanted:
        for rs, ps, index in groups:
            array = _tensors(name, rs, ps)
            out_name = name if index is None else v2.ragged_name(name, index)
            if isinstance(array, list):
                raw = v2.pack_bytes(array)
                outputs.append({"name": out_name, "datatype": "BYTES", "shape": [len(array)],
                                "parameters": {"binary_data_size": len(raw)}})
                parts.append(raw)
                continue
            entry = {"name": out_name, "datatype": v2.datatype_of(array), "shape": list(array.shape)}
            if todo.binary[name]:
                raw = array.tobytes()
                entry["parameters"] = {"binary_data_size": len(raw)}
                parts.append(raw)
            else:
                entry["data"] = array.reshape(-1)
            outputs.append(entry)
    header = {"model_name": model.name, "model_version": model.version, "id": req.request_id,
              "parameters": response_parameters(seg, ragged), "outputs": outputs}
    head = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    if not parts:
        return RestAnswer(head, None)
    return RestAnswer(b"".join([head, *parts]), len(head))


def encode_grpc(model: SegmentationModel, seg: Segmenter, req: WireRequest, todo: Plan,
                results: list[tuple[SegmentationResult, bytes | None]]) -> pb.ModelInferResponse:
    """The gRPC response: every output in ``raw_output_contents``. On the pool."""
    ragged, groups = _groups(results)
    response = pb.ModelInferResponse(model_name=model.name, model_version=model.version, id=req.request_id)
    for key, value in response_parameters(seg, ragged).items():
        param = response.parameters[key]
        if isinstance(value, bool):
            param.bool_param = value
        elif isinstance(value, int):
            param.int64_param = value
        else:
            param.string_param = json.dumps(value)
    for name in todo.wanted:
        for rs, ps, index in groups:
            array = _tensors(name, rs, ps)
            out_name = name if index is None else v2.ragged_name(name, index)
            if isinstance(array, list):
                response.outputs.add(name=out_name, datatype="BYTES", shape=[len(array)])
                response.raw_output_contents.append(v2.pack_bytes(array))
            else:
                response.outputs.add(name=out_name, datatype=v2.datatype_of(array), shape=list(array.shape))
                response.raw_output_contents.append(array.tobytes())
    return response
