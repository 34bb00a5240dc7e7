"""The context and Jinja environment in which a pipeline task renders its templates under a restriction.

When ``[fasttrack] pipeline_connections`` or ``pipeline_variables`` restricts what pipeline templates may read
(see :mod:`airflow_provider_fasttrack.pipeline.references`), a pipeline task (and its Slack messages) renders
in a context made for it instead of Airflow's own, in a sandbox:

- ``conn`` and ``var`` resolve only the allowed names; any other name fails the task before its session or
  service is created (:class:`TemplateReferenceError`), naming the task and the name, never a value. A
  connection is shown as its fields (host, login, password, extra, ...), not as Airflow's object, which
  reaches hooks and with them every connection.
- ``ti`` / ``task_instance``, ``dag_run``, ``dag``, ``task`` and ``macros`` are views that show only
  :data:`~airflow_provider_fasttrack.pipeline.references.VIEWS`; ``ti.xcom_pull`` reads this DAG run only.
- Airflow's other context values are present only when they are plain values (dates, strings); ``params`` as
  a plain mapping.
- The sandbox refuses attributes starting with ``_``, any module, and loading files (``include``, ``import``).

Everything a template can reach starts from this context and the environment's globals, so a name that is
not here cannot be read, however the template is written (``|attr``, ``[...]``, computed names).
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

import jinja2

from airflow_provider_fasttrack.exceptions import TemplateReferenceError
from airflow_provider_fasttrack.pipeline.references import (
    CONNECTION_FIELDS,
    PLAIN_CONTEXT,
    VIEWS,
    ReferencePolicy,
)

__all__ = ["restricted_context", "restricted_environment", "restricted_rendering"]

_REQUIRED = object()
_PLAIN = (str, int, float, bool, dt.date, dt.time, dt.timedelta, type(None))


class _View:
    """Shows the given values as attributes (and items); nothing else of what they came from."""

    __slots__ = ("_label", "_values")

    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_label", label)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __repr__(self) -> str:
        return f"<{self._label}>"


class _Reader:
    """``conn`` or ``var.value`` / ``var.json``: reads a name only when the policy allows it."""

    __slots__ = ("_policy", "_read", "_task", "_what")

    def __init__(
        self, what: str, read: Callable[[str, Any], Any], policy: ReferencePolicy, task: str
    ) -> None:
        object.__setattr__(self, "_what", what)
        object.__setattr__(self, "_read", read)  # (name, default) -> value; without a default: raises
        object.__setattr__(self, "_policy", policy)
        object.__setattr__(self, "_task", task)

    def _allowed(self, name: Any) -> str:
        if not isinstance(name, str) or not self._policy.allows(self._what, name):
            refusal = self._policy.refusal(self._what, str(name))
            raise TemplateReferenceError(f"{self._task}: the template {refusal}")
        return name

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._read(self._allowed(name), _REQUIRED)

    def __getitem__(self, name: Any) -> Any:
        return self._read(self._allowed(name), _REQUIRED)

    def get(self, name: Any, default: Any = None) -> Any:
        return self._read(self._allowed(name), default)

    def __repr__(self) -> str:
        return f"<{self._what}s allowed in pipeline templates>"


def _connection_view(connection: Any) -> _View:
    values = {name: getattr(connection, name, None) for name in CONNECTION_FIELDS if name != "extra_dejson"}
    try:
        values["extra_dejson"] = copy.deepcopy(connection.extra_dejson)
    except Exception:
        values["extra_dejson"] = {}
    return _View(f"connection {values['conn_id']!r}", values)


def _ti_view(ti: Any) -> _View:
    def xcom_pull(
        task_ids: Any = None, key: str = "return_value", map_indexes: Any = None, default: Any = None
    ) -> Any:
        """XCom of this DAG run's tasks (no other DAG or run)."""
        more = {} if map_indexes is None else {"map_indexes": map_indexes}
        return ti.xcom_pull(task_ids=task_ids, key=key, default=default, **more)

    values = {name: getattr(ti, name, None) for name in VIEWS["ti"] - {"xcom_pull"}}
    return _View("task instance", {**values, "xcom_pull": xcom_pull})


def _attributes(source: Any, names: frozenset[str]) -> dict[str, Any]:
    return {name: getattr(source, name) for name in names if hasattr(source, name)}


def restricted_context(context: Mapping[str, Any], policy: ReferencePolicy, task: str) -> dict[str, Any]:
    """The context of a pipeline template under ``policy``; ``task`` names whose template it is in refusals."""
    from airflow.sdk.execution_time import macros

    out: dict[str, Any] = {
        key: context[key] for key in PLAIN_CONTEXT if key in context and isinstance(context[key], _PLAIN)
    }
    params = context.get("params")
    out["params"] = {key: params[key] for key in params} if params is not None else {}
    accessors = context.get("conn")
    variables = context.get("var") or {}
    if accessors is not None:

        def connection(name: str, default: Any) -> Any:
            found = getattr(accessors, name) if default is _REQUIRED else accessors.get(name)
            return default if found is None else _connection_view(found)

        out["conn"] = _Reader("connection", connection, policy, task)
    readers = {}
    for kind in ("value", "json"):
        if kind in variables:

            def variable(name: str, default: Any, accessor: Any = variables[kind]) -> Any:
                return getattr(accessor, name) if default is _REQUIRED else accessor.get(name, default)

            readers[kind] = _Reader("variable", variable, policy, task)
    out["var"] = _View("variables", readers)
    if (ti := context.get("ti")) is not None:
        out["ti"] = out["task_instance"] = _ti_view(ti)
    if (dag_run := context.get("dag_run")) is not None:
        values = _attributes(dag_run, VIEWS["dag_run"] - {"conf"})
        out["dag_run"] = _View("DAG run", {**values, "conf": copy.deepcopy(dag_run.conf or {})})
    if (dag := context.get("dag")) is not None:
        out["dag"] = _View("DAG", _attributes(dag, VIEWS["dag"]))
    if (task_object := context.get("task")) is not None:
        out["task"] = _View("task", _attributes(task_object, VIEWS["task"]))
    out["macros"] = _View("macros", _attributes(macros, VIEWS["macros"]))
    return out


def restricted_environment(dag: Any) -> jinja2.Environment:
    """Airflow's sandboxed environment, stricter: no ``_`` attributes, no modules, no files to load; the
    DAG's template functions."""
    from airflow.sdk.definitions._internal.templater import SandboxedEnvironment

    class PipelineSandbox(SandboxedEnvironment):
        def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
            if attr.startswith("_") or isinstance(obj, ModuleType) or isinstance(value, ModuleType):
                return False
            return bool(super().is_safe_attribute(obj, attr, value))

    env = PipelineSandbox(undefined=jinja2.StrictUndefined, extensions=["jinja2.ext.do"], cache_size=0)
    if dag is not None:
        env.globals.update(getattr(dag, "user_defined_macros", None) or {})
        env.filters.update(getattr(dag, "user_defined_filters", None) or {})
    return env


def restricted_rendering(
    task: str, context: Mapping[str, Any], jinja_env: jinja2.Environment | None, dag: Any
) -> tuple[Any, jinja2.Environment | None]:
    """``(context, jinja_env)`` to render a pipeline template with: restricted ones when the deployment
    restricts connections or variables, else those given."""
    policy = ReferencePolicy.from_airflow_config()
    if not policy.restricts:
        return context, jinja_env
    return restricted_context(context, policy, task), restricted_environment(dag)
