"""Serve exported models over the Open Inference Protocol (KServe v2, REST and gRPC).

    seg-serve exported/model.xml --http-port 8080 --grpc-port 8081 --device CPU --hint throughput

Built on kserve's ``ModelServer`` (health, readiness, metadata, Prometheus metrics, graceful
shutdown); each model is a ``SegmentationModel`` wrapping one ``attnseg.runtime.Segmenter``, so a
posted image is prepared and decoded exactly as in-process. The wire format (input kinds, output
names, parameters) is documented in ``attnseg.runtime.v2``; the client is
``attnseg.runtime.RemoteSegmenter``. Needs the ``serve`` extra (kserve); never imports torch.
"""

from attnseg.serve import _kserve  # noqa: F401 - first: imports kserve with our argv hidden
from attnseg.serve.model import SegmentationModel
from attnseg.serve.server import ServeOptions, load_models, serve

__all__ = ["SegmentationModel", "ServeOptions", "load_models", "serve"]
