"""Deployments of Airflow with this provider: the shared settings (``airflow.env``) and a local one without Docker."""
