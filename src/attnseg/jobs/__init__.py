"""Jobs: whole pipelines run as one command, built from the stage functions of export,
optimize and benchmarking (this package sits above them, like ``cli``; nothing below imports it).

Importing it stays cheap: the heavy libraries load when a job runs.
"""

from attnseg.jobs.main_job import (
    BackendFigures,
    MainJobResult,
    default_output_dir,
    format_table,
    run_main_job,
)

__all__ = ["BackendFigures", "MainJobResult", "default_output_dir", "format_table", "run_main_job"]
