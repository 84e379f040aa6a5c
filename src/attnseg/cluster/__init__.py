"""Batch segmentation past one machine, on Ray Data: one ``Segmenter`` per worker.

    from attnseg.cluster import ClusterOptions, segment_dataset
    summary = segment_dataset("model.xml", "images/", "out/", ClusterOptions(address="local"))

``out/`` gets exactly what local ``seg-infer`` writes, plus ``manifest.jsonl``; a re-run resumes.
The only package that imports ``ray`` (inside functions: importing it costs nothing until a run).
"""

from attnseg.cluster.inputs import InputPlan, plan_inputs
from attnseg.cluster.job import segment_dataset, start_local_ray
from attnseg.cluster.manifest import MANIFEST_NAME, Manifest
from attnseg.cluster.options import ClusterError, ClusterOptions, ClusterSummary, ImagesFailedError

__all__ = ["MANIFEST_NAME", "ClusterError", "ClusterOptions", "ClusterSummary", "ImagesFailedError", "InputPlan",
           "Manifest", "plan_inputs", "segment_dataset",
           "start_local_ray"]
