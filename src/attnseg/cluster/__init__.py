"""Batch segmentation past one machine, on Ray Data: one ``Segmenter`` per worker.

    from attnseg.cluster import ClusterOptions, segment_dataset
    summary = segment_dataset("model.xml", "images/", "out/", ClusterOptions(address="local"))

``out/`` gets exactly what local ``seg-infer`` writes, plus ``manifest.jsonl``; a re-run resumes
(by content: an image whose bytes changed is segmented again). Inputs and outputs may be
``s3://``, ``gs://`` or ``abfs://`` URIs (pyarrow filesystems, configured by the standard
environment); workers read and write them, the driver only plans and counts.
The only package that imports ``ray`` (inside functions: importing it costs nothing until a run).
"""

from attnseg.cluster.inputs import InputPlan, plan_inputs
from attnseg.cluster.job import check_address, segment_dataset, start_local_ray
from attnseg.cluster.manifest import MANIFEST_NAME, read_records
from attnseg.cluster.options import ClusterError, ClusterOptions, ClusterSummary, ImagesFailedError
from attnseg.cluster.storage import Location, Store

__all__ = ["MANIFEST_NAME", "ClusterError", "ClusterOptions", "ClusterSummary", "ImagesFailedError", "InputPlan",
           "Location", "Store", "check_address", "plan_inputs", "read_records", "segment_dataset",
           "start_local_ray"]
