"""``RemoteSegmenter``: ``Segmenter``'s ``predict`` / ``stream`` over the Open Inference Protocol.

    from attnseg.runtime import RemoteSegmenter
    seg = RemoteSegmenter("http://127.0.0.1:8080", "kvasir")   # was: Segmenter("model.xml")
    result = seg.predict("polyp.jpg")                           # the same SegmentationResult

It speaks KServe v2 REST with the binary tensor extension, using the standard library only
(``http.client``; one keep-alive connection per thread), to a ``seg-serve`` server: image files
travel as their encoded bytes (BYTES), arrays as UINT8 BGR pixels, and the server prepares and
decodes them exactly as ``Segmenter`` does. Endpoints used: ``GET /v2/models/{name}/ready``,
``GET /v2/models/{name}`` and ``POST /v2/models/{name}/infer``; the wire format is in
``attnseg.runtime.v2``.

Servers that run the raw IR (OpenVINO Model Server on a ``seg-export --ovms-repo`` folder) know
nothing of masks: give ``metadata=`` (the exported ``model.json`` or ``.xml``) and the client
builds the Segmenter's own ``ModelCodec`` from it and the server's port shapes, sending the
model-sized input tensor and reading the IR's ``logits`` / ``attention_*`` outputs. Against
seg-serve the answers are already masks; a codec built from the response (classes, background,
binary) gives them the same statistics, mask files and overlays.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from attnseg.errors import AttnsegError, InputFileError
from attnseg.imaging import to_bgr8
from attnseg.runtime import v2
from attnseg.runtime.codec import ModelCodec
from attnseg.runtime.ports import Port
from attnseg.runtime.prefetch import prefetch
from attnseg.runtime.preprocess import ImageLike
from attnseg.runtime.result import SegmentationResult, StageTimings


class RemoteError(AttnsegError):
    """The server refused a request or could not be reached; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class RemoteSegmenter:
    """A model served by ``seg-serve`` (KServe v2), used like a local ``Segmenter``.

    Thread-safe: each thread gets its own connection. ``stream`` keeps ``max_in_flight``
    requests open at once and yields results in input order.
    """

    def __init__(self, url: str, model_name: str, timeout: float = 120.0, max_in_flight: int = 4,
                 attention: bool = True, metadata: str | Path | None = None, token: str | None = None) -> None:
        """``attention=False`` skips the attention maps (full-size float maps are most of a response).
        ``metadata``: the model's ``model.json`` or ``.xml``, for servers of the raw IR (OVMS).
        ``token``: the server's bearer token (default: ``$SEG_SERVE_TOKEN``, if set)."""
        parsed = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise InputFileError(f"Server URL {url!r} must look like http://HOST:PORT.")
        self._scheme = parsed.scheme
        self._host = parsed.hostname
        self._port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self._prefix = parsed.path.rstrip("/")
        self._model = model_name
        self._timeout = float(timeout)
        self._max_in_flight = max(1, int(max_in_flight))
        self._local = threading.local()
        self._meta: dict[str, Any] | None = None
        self._attention = bool(attention)
        self._raw_meta = None if metadata is None else _read_metadata(Path(metadata))
        self._raw: _RawModel | None = None
        token = os.environ.get(TOKEN_ENV) if token is None else token
        self._auth = {"Authorization": f"Bearer {token.strip()}"} if token and token.strip() else {}

    # ------------------------------------------------------------------ description
    @property
    def url(self) -> str:
        return f"{self._scheme}://{self._host}:{self._port}{self._prefix}"

    @property
    def model_name(self) -> str:
        return self._model

    def ready(self) -> bool:
        """The server and the model answer ready (False when unreachable)."""
        try:
            status, _, _ = self._request("GET", f"/v2/models/{self._q()}/ready")
        except RemoteError:
            return False
        return status == 200

    def metadata(self) -> dict[str, Any]:
        """The model's v2 metadata (name, inputs, outputs); fetched once."""
        if self._meta is None:
            status, body, _ = self._request("GET", f"/v2/models/{self._q()}")
            if status != 200:
                raise RemoteError(f"{self.url}: model {self._model!r}: {_error_text(body)}", status)
            self._meta = json.loads(body)
        return self._meta

    @property
    def attention_names(self) -> list[str]:
        if self._raw_meta is not None:
            return [n.removeprefix(_ATT_PREFIX) for n in self._raw_model().attention_outputs]
        prefix = v2.ATTENTION + "_"
        return [o["name"][len(prefix):] for o in self.metadata().get("outputs", [])
                if o["name"].startswith(prefix)]

    def __repr__(self) -> str:
        return f"RemoteSegmenter({self.url!r}, {self._model!r})"

    # ------------------------------------------------------------------ inference
    def predict(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        """Segment one image (path or array) on the server."""
        result, _ = self._infer(image, return_probabilities, overlay=False)
        return result

    def overlay_png(self, image: ImageLike) -> bytes:
        """The server's picture of the mask over ``image`` (as seg-infer draws it), a PNG file's bytes."""
        _, png = self._infer(image, False, overlay=True)
        assert png is not None
        return png

    def _infer(self, image: ImageLike, return_probabilities: bool,
               overlay: bool) -> tuple[SegmentationResult, bytes | None]:
        source = None
        if isinstance(image, tuple) and len(image) == 2 and not isinstance(image[0], np.ndarray):
            source, image = str(image[0]), image[1]
        if self._raw_meta is not None:
            if overlay:
                raise InputFileError("overlay_png needs a seg-serve server (a raw IR server draws nothing).")
            return self._infer_raw(image, source, return_probabilities), None
        served = [o["name"] for o in self.metadata().get("outputs", [])]
        if v2.MASK not in served:
            raise RemoteError(f"{self.url}: model {self._model!r} has no {v2.MASK!r} output (it has: "
                              f"{', '.join(served) or 'none'}): a server of the raw IR such as OVMS. Pass "
                              "metadata='.../model.json' so the client prepares and decodes like Segmenter.")
        t0 = time.perf_counter()
        name, dtype, shape, raw, path_source = _encode_image(image)
        outputs = [v2.MASK]
        if return_probabilities:
            outputs.append(v2.PROBABILITIES)
        if self._attention and self.attention_names:
            outputs.append(v2.ATTENTION)
        if overlay:
            outputs.append(v2.OVERLAY)
        body, json_len = v2.encode_request([(name, dtype, shape, raw)], outputs)
        t1 = time.perf_counter()
        data, headers = self._post_infer(body, json_len, source or path_source or "image")
        t2 = time.perf_counter()
        result, png = self._result(data, headers, source or path_source)
        t3 = time.perf_counter()
        result.timings = StageTimings(preprocess=(t1 - t0) * 1e3, infer=(t2 - t1) * 1e3,
                                      postprocess=(t3 - t2) * 1e3, total=(t3 - t0) * 1e3)
        return result, png

    def _post_infer(self, body: bytes, json_len: int, what: str) -> tuple[bytes, dict]:
        """One v2 binary infer request; a non-200 answer becomes a RemoteError naming ``what``."""
        status, data, headers = self._request(
            "POST", f"/v2/models/{self._q()}/infer", body,
            {"Content-Type": "application/octet-stream", v2.BINARY_HEADER: str(json_len)})
        if status != 200:
            raise RemoteError(f"{self.url}: {what}: HTTP {status}: {_error_text(data)}", status)
        return data, headers

    def __call__(self, image: ImageLike, return_probabilities: bool = False) -> SegmentationResult:
        return self.predict(image, return_probabilities)

    def stream(self, images: Iterable[Any], max_in_flight: int | None = None,
               return_probabilities: bool = False) -> Iterator[SegmentationResult]:
        """Like ``Segmenter.stream``: images or ``(name, image)`` pairs in, results in input order,
        up to ``max_in_flight`` requests open at once; an item's error is raised when reached."""
        jobs = self._max_in_flight if max_in_flight is None else int(max_in_flight)
        if jobs < 1:
            raise InputFileError(f"max_in_flight must be >= 1, got {max_in_flight}.")
        for future in prefetch(images, lambda item: self.predict(item, return_probabilities), workers=jobs,
                               depth=jobs):
            yield future.result()

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # ------------------------------------------------------------------ raw IR servers (OVMS)
    def _raw_model(self) -> _RawModel:
        if self._raw is None:
            self._raw = _RawModel.from_v2(self.metadata(), self._raw_meta, self.url)
        return self._raw

    def _infer_raw(self, image: ImageLike, source: str | None, want_probs: bool) -> SegmentationResult:
        """Segmenter's predict() with the device call replaced by one v2 request of the IR's tensors."""
        raw = self._raw_model()
        t0 = time.perf_counter()
        prep = raw.codec.prepare(image, source)
        tensor = np.ascontiguousarray(prep.tensor)
        names = [raw.main_output, *(raw.attention_outputs if self._attention else [])]
        body, json_len = v2.encode_request([(raw.input_name, v2.datatype_of(tensor), list(tensor.shape),
                                             tensor.tobytes())], names)
        t1 = time.perf_counter()
        data, headers = self._post_infer(body, json_len, prep.source or "image")
        t2 = time.perf_counter()
        json_len_out = headers.get(v2.BINARY_HEADER.lower())
        _, outs = v2.decode_response(data, None if json_len_out is None else int(json_len_out))
        result = raw.codec.decode(prep, [np.asarray(outs[n]) for n in names if n in outs], want_probs)
        t3 = time.perf_counter()
        result.timings = StageTimings(preprocess=(t1 - t0) * 1e3, infer=(t2 - t1) * 1e3,
                                      postprocess=(t3 - t2) * 1e3, total=(t3 - t0) * 1e3)
        return result

    # ------------------------------------------------------------------ internals
    def _q(self) -> str:
        return urllib.parse.quote(self._model, safe="")

    def _result(self, data: bytes, headers: dict[str, str],
                source: str | None) -> tuple[SegmentationResult, bytes | None]:
        json_len = headers.get(v2.BINARY_HEADER.lower())
        header, outs = v2.decode_response(data, None if json_len is None else int(json_len))
        params = {k: json.dumps(v) if isinstance(v, list) else v  # seg-serve sends real JSON lists
                  for k, v in (header.get("parameters") or {}).items()}
        classes, background, gates, _ = v2.parse_response_parameters(params)
        if v2.MASK not in outs:
            raise RemoteError(f"{self.url}: the response has no {v2.MASK!r} output; is this a seg-serve server?")
        mask = np.array(outs[v2.MASK][0], copy=True)
        probs = outs.get(v2.PROBABILITIES)
        attention = {g: np.array(outs[f"{v2.ATTENTION}_{g}"][0], copy=True)
                     for g in gates if f"{v2.ATTENTION}_{g}" in outs}
        codec = ModelCodec.for_served_masks(classes, background, v2.parse_binary(params, classes, background), gates)
        png = outs[v2.OVERLAY][0] if v2.OVERLAY in outs else None
        probs = None if probs is None else np.array(probs[0], copy=True)
        return codec.result(mask, probs, attention, source), png

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
        """One HTTP exchange on this thread's keep-alive connection (reconnects once if it went stale)."""
        for attempt in (0, 1):
            conn = self._connection()
            try:
                if conn.sock is None:
                    conn.connect()
                    # http.client writes the headers and the body separately: without TCP_NODELAY, Nagle
                    # holds the body until the server acknowledges the headers (urllib3 and curl disable it too).
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request(method, self._prefix + path, body=body, headers={**self._auth, **(headers or {})})
                resp = conn.getresponse()
                data = resp.read()
                hdrs = {k.lower(): v for k, v in resp.getheaders()}
                if hdrs.get("connection", "").lower() == "close":
                    self.close()
                return resp.status, data, hdrs
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                self.close()
                if attempt:
                    raise RemoteError(f"{self.url}: the connection was closed ({exc}).") from None
            except OSError as exc:
                self.close()
                raise RemoteError(f"Cannot reach {self.url}: {exc}.") from None
        raise AssertionError("unreachable")


_ATT_PREFIX = "attention_"
#: The environment variable ``RemoteSegmenter`` (and ``seg-serve``) read the bearer token from.
TOKEN_ENV = "SEG_SERVE_TOKEN"


class _RawModel:
    """Where the raw IR's tensors are and the codec that prepares / decodes them (model.json + v2 metadata)."""

    def __init__(self, input_name: str, main_output: str, attention_outputs: list[str], codec: ModelCodec) -> None:
        self.input_name, self.main_output = input_name, main_output
        self.attention_outputs = attention_outputs
        self.codec = codec

    @classmethod
    def from_v2(cls, served: dict[str, Any], meta: Any, url: str) -> _RawModel:
        inputs = served.get("inputs") or []
        outputs = {o["name"]: o for o in served.get("outputs") or []}
        inp = next((i for i in inputs if i["name"] == "image"), inputs[0] if len(inputs) == 1 else None)
        if inp is None:
            raise RemoteError(f"{url}: model {served.get('name')!r} has {len(inputs)} inputs and none is 'image'.")
        main = meta.output if meta.output in outputs else next(
            (n for n in outputs if not n.startswith(_ATT_PREFIX)), None)
        if main is None:
            raise RemoteError(f"{url}: model {served.get('name')!r} has no segmentation output "
                              f"(outputs: {', '.join(outputs) or 'none'}).")
        gates = [n for n in meta.attention_outputs if n in outputs]
        codec = ModelCodec.from_metadata(meta, _port(inp), _port(outputs[main]),
                                         [g.removeprefix(_ATT_PREFIX) for g in gates], str(served.get("name", "model")))
        return cls(inp["name"], main, gates, codec)


def _port(tensor: dict[str, Any]) -> Port:
    """An IR input/output as the server's v2 metadata describes it."""
    return Port.from_dims(tensor["shape"], v2.DTYPES[tensor["datatype"]])


def _read_metadata(path: Path) -> Any:
    """An exported model's description: ``model.json``, or the ``.xml`` (rt_info, else its JSON twin)."""
    from attnseg.metadata import ModelMetadata

    if path.suffix.lower() == ".json":
        if not path.is_file():
            raise InputFileError(f"Model metadata {path} does not exist.")
        return ModelMetadata.read_json(path)
    from attnseg.runtime.adapter import OpenVINOAdapter

    return OpenVINOAdapter(path, compile=False).metadata


def _encode_image(image: ImageLike) -> tuple[str, str, list[int], bytes, str | None]:
    """(input name, datatype, shape, raw bytes, source): files as their bytes, arrays as BGR pixels."""
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise InputFileError(f"Image {path} does not exist." if not path.exists()
                                 else f"{path} is a folder, not an image.")
        data = path.read_bytes()
        if not data:
            raise InputFileError(f"Image {path} is empty (0 bytes).")
        return "image", "BYTES", [1], v2.pack_bytes([data]), str(image)
    if isinstance(image, np.ndarray):
        bgr = np.ascontiguousarray(to_bgr8(image, source="image array"))
        return "image", "UINT8", [1, *bgr.shape], bgr.tobytes(), None
    raise InputFileError(f"Expected an image path or a numpy array, got {type(image).__name__}.")


def _error_text(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", body[:300].decode("utf-8", "replace")))
    except (ValueError, AttributeError):
        return body[:300].decode("utf-8", "replace")
