"""Airflow DAG file: one DAG per FastTrack pipeline YAML.

Reads ``$FASTTRACK_PIPELINES_DIR`` (default: the ``pipelines/`` folder next to this file). A broken pipeline
file shows in Airflow's import errors, with its name, line and field; the other pipelines still load.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_fasttrack.pipeline.loader import PIPELINES_DIR_ENV, publish

publish(globals(), os.environ.get(PIPELINES_DIR_ENV) or Path(__file__).resolve().parent / "pipelines")
