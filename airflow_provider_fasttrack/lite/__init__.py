"""backendai-lite: a local Backend.AI-compatible manager for development and tests.

Run it with ``backendai-lite serve`` (see :mod:`.cli`); drive it from tests with
:class:`airflow_provider_fasttrack.lite.testing.LiteServer`. ``docs/backendai-lite.md`` describes what it
reproduces of a real manager and what differs.
"""
