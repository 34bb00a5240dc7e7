"""The server's shared objects, reachable from every request handler."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from airflow_provider_fasttrack.lite.config import KeypairConfig, LiteConfig
from airflow_provider_fasttrack.lite.events import EventHub
from airflow_provider_fasttrack.lite.faults import FaultInjector
from airflow_provider_fasttrack.lite.registry import SessionRegistry
from airflow_provider_fasttrack.lite.request_stats import RequestStats
from airflow_provider_fasttrack.lite.services import ServiceManager
from airflow_provider_fasttrack.lite.store import Store
from airflow_provider_fasttrack.lite.vfolders import VFolders

__all__ = ["LiteContext", "caller", "context"]


@dataclass
class LiteContext:
    """Configuration, state and services of one server."""

    config: LiteConfig
    data_dir: Path
    store: Store
    hub: EventHub
    vfolders: VFolders
    registry: SessionRegistry
    services: ServiceManager
    faults: FaultInjector
    sandbox_note: str
    #: request counts (``request_stats: true`` in the config), else ``None``
    request_stats: RequestStats | None = None


def context(request: Request) -> LiteContext:
    """The server context of a request."""
    ctx: LiteContext = request.app.state.lite
    return ctx


def caller(request: Request) -> KeypairConfig:
    """The verified keypair of a signed request."""
    keypair: KeypairConfig = request.state.keypair
    return keypair
