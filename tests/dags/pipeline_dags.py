"""Airflow DAG file for the tests: the shipped pipelines (dags/pipelines) and the test pipelines next to this file."""

from __future__ import annotations

from pathlib import Path

from airflow_provider_fasttrack.pipeline.loader import publish

HERE = Path(__file__).resolve().parent
publish(globals(), HERE.parent.parent / "dags" / "pipelines")
publish(globals(), HERE / "pipelines")
