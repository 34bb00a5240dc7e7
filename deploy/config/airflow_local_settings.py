"""Airflow local settings of a FastTrack deployment, imported by every Airflow process as it starts.

The Compose image has this file in ``$AIRFLOW_HOME/config``, the local deployment (``deploy/local.py``) on its
``PYTHONPATH``. In the DAG processor (``airflow dag-processor``; other processes do not import the DAG
processor's code for it) it keeps the parse interval after DAG-level callbacks:

Airflow's DAG processor (3.3) runs a DAG-level callback (a Slack notification) on the DAG file of the run's bundle
version and records that as a second parse record of the file, one without a finish time. From then on it
plans the file for every loop, not every ``[dag_processor] min_file_process_interval``: a git DAG bundle's
pipeline file is parsed back to back as long as the DAG processor runs (Airflow issue 73432). Before it plans
the next parses, the DAG processor here drops the records of callbacks that are done, so the file's own record
decides again.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any


def _drop_done_callback_records(prepare: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(prepare)
    def prepare_file_queue(self: Any, *args: Any, **kwargs: Any) -> Any:
        stats = self._file_stats
        for file in [f for f in stats if f.bundle_version is not None and f not in self._processors]:
            del stats[file]
        return prepare(self, *args, **kwargs)

    prepare_file_queue.fasttrack_callback_records = True  # type: ignore[attr-defined]
    return prepare_file_queue


def _patch_dag_processor() -> None:
    from airflow.dag_processing.manager import DagFileProcessorManager

    if not getattr(DagFileProcessorManager.prepare_file_queue, "fasttrack_callback_records", False):
        DagFileProcessorManager.prepare_file_queue = _drop_done_callback_records(  # type: ignore[method-assign]
            DagFileProcessorManager.prepare_file_queue
        )


if sys.argv[1:2] == ["dag-processor"]:
    _patch_dag_processor()
