"""FastTrack's ``${{ secrets.NAME }}`` references in environment values.

A reference stays in the request as written (in the DAG file, the serialized DAG and the rendered template
view); the operator replaces it with the Airflow Variable ``NAME`` only when it builds the session's
``POST /session`` body. No Airflow import here: the validator and the operator share these rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["SECRET_REF", "bad_references", "for_jinja", "resolve", "secret_names"]

#: ``${{ secrets.NAME }}``, spaces optional; NAME as an environment variable name
SECRET_REF = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: anything written as ``${{ ... }}``
_DOLLAR_BRACES = re.compile(r"\$\{\{.*?\}\}", re.DOTALL)


def secret_names(text: str) -> list[str]:
    """The secrets ``text`` references, in order of first use."""
    return list(dict.fromkeys(SECRET_REF.findall(text)))


def bad_references(text: str) -> list[str]:
    """``${{ ... }}`` parts of ``text`` that are not ``${{ secrets.NAME }}``."""
    return [part for part in _DOLLAR_BRACES.findall(text) if not SECRET_REF.fullmatch(part)]


def for_jinja(text: str) -> str:
    """``text`` with its references wrapped in ``{% raw %}``, so that Jinja renders them back as written."""
    return SECRET_REF.sub(lambda m: "{% raw %}" + m.group(0) + "{% endraw %}", text)


def resolve(text: str, lookup: Callable[[str], str]) -> str:
    """``text`` with every reference replaced by ``lookup(NAME)``."""
    return SECRET_REF.sub(lambda m: lookup(m.group(1)), text)
