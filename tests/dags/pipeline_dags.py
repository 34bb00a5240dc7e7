"""Airflow DAG file for the tests: the shipped pipelines (dags/pipelines) and the test pipelines next to this file."""

from __future__ import annotations

from pathlib import Path

import airflow_provider_fasttrack
from airflow_provider_fasttrack.pipeline.loader import publish

HERE = Path(__file__).resolve().parent
# the project's checkout, not this file's folder: a deployment reads this file from its DAG bundle's copy
SHIPPED = Path(airflow_provider_fasttrack.__file__).resolve().parent.parent / "dags" / "pipelines"
publish(globals(), SHIPPED)
publish(globals(), HERE / "pipelines")
