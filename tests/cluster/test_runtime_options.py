"""ClusterOptions holds one RuntimeOptions; every worker's Segmenter is made from it."""

from __future__ import annotations

import pytest

from attnseg.errors import InputFileError
from attnseg.runtime.options import TTA, Hint, RuntimeOptions


def test_workers_get_the_runtime_options_under_the_latency_hint(binary_ir, tmp_path):
    from attnseg.cluster import ClusterOptions
    from attnseg.cluster.worker import SegmentWorker, worker_kwargs

    options = ClusterOptions(runtime=RuntimeOptions(resize_policy="letterbox", tta="flip", inference_precision="f32"))
    kwargs = worker_kwargs(str(binary_ir), options)
    assert kwargs["runtime"] == RuntimeOptions(hint="latency", resize_policy="letterbox", tta="flip",
                                               inference_precision="f32")
    worker = SegmentWorker(**kwargs, output_uri=str(tmp_path / "out"), signature="{}", run_id="t")
    seg = worker.seg
    assert (seg.hint, seg.tta, seg.resize_policy.value, seg.inference_precision) == (
        Hint.LATENCY, TTA.FLIP, "letterbox", "f32")


@pytest.mark.parametrize("field, value", [("hint", "throughput"), ("num_streams", 2), ("cache_dir", "c")])
def test_settings_a_worker_decides_itself_are_refused(field, value):
    from attnseg.cluster import ClusterOptions

    with pytest.raises(InputFileError, match=f"{field} do"):
        ClusterOptions(runtime=RuntimeOptions(**{field: value}))
