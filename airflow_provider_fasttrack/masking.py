"""The secrets a task sent into its session or service, carried to the triggerer so that it hides them too.

A task's worker registers every secret it reads with Airflow's secrets masker: connection passwords and
sensitive extras read by ``{{ conn... }}``, variables with secret-looking names read by ``{{ var... }}``, and
``${{ secrets.NAME }}`` values. The triggerer, a different process, knows none of them, yet it writes the
session's output to the task log while the task is deferred, and a failed replica's last log lines into its
event. So the operator gives the trigger the masked values that occur in what it sent (:func:`masked_in`); they
travel in the trigger's kwargs, which Airflow stores encrypted with its Fernet key, as it stores connection
passwords, and leaves out of its REST API; the trigger registers them with the triggerer's masker and redacts
what it logs and what it fires.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["masked_in", "redacted", "register"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _strings(item)


def masked_in(value: Any, also: Iterable[str] = ()) -> list[str]:
    """The texts this process's secrets masker hides that occur in the strings of ``value``, and ``also``."""
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    found = {text for text in also if text}
    replacer = _secrets_masker().replacer
    if replacer is not None:
        found.update(match.group(0) for text in _strings(value) for match in replacer.finditer(text))
    return sorted(found)


async def register(values: Iterable[str]) -> None:
    """Register ``values`` with the secrets masker of this process (and of the triggerer's supervisor)."""
    from airflow.sdk.log import amask_secret

    for value in values:
        await amask_secret(value)


def redacted(value: Any) -> Any:
    """``value`` with every registered secret replaced by ``***``."""
    from airflow.sdk._shared.secrets_masker import redact

    return redact(value)
