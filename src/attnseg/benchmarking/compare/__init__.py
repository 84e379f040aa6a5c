"""``seg-benchmark compare``: one checkpoint, every backend, one table.

PyTorch eager fp32, PyTorch bf16 autocast + channels_last, optionally torch.compile,
ONNX Runtime CPU, OpenVINO FP32 / FP16 / INT8, timed in alternating rounds on the same
input, with Dice or mIoU per backend when a data set is given. Every heavy dependency is
imported inside the backend that needs it.
"""

from attnseg.benchmarking.compare.backends import BACKEND_LABELS, DEFAULT_BACKENDS, BackendName
from attnseg.benchmarking.compare.result import BackendResult, CompareResult
from attnseg.benchmarking.compare.runner import compare_backends
from attnseg.benchmarking.compare.writers import format_table, write_compare_reports

__all__ = [
    "BACKEND_LABELS", "DEFAULT_BACKENDS", "BackendName", "BackendResult", "CompareResult", "compare_backends",
    "format_table", "write_compare_reports",
]
