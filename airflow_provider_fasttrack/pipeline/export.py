"""A checked pipeline back to FastTrack YAML (plus its ``airflow:`` block when it has one).

FastTrack's fields come out in FastTrack's order with canonical values (``cpu: 4``, ``mem: 16g``,
``cuda.shares: '1.5'``); unknown fields are kept. Exporting an export gives the same text.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from airflow_provider_fasttrack.pipeline.spec import Ownership, PipelineSpec, TaskRetry, TaskSpec

__all__ = ["export_dict", "export_yaml"]


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings (commands) as literal blocks."""


#: Line breaks YAML folds in plain and single-quoted scalars: only double quotes keep them as written.
_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if any(brk in value for brk in _OTHER_BREAKS):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    if "\n" in value and all(line == line.rstrip() for line in value.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


#: fields that only some FastTrack releases write: exported when the file has them
_WHEN_WRITTEN = {
    PipelineSpec: ("params",),
    Ownership: ("domain_name", "domain"),
    TaskSpec: ("continue_on_failure", "retry", "service"),
    TaskRetry: ("delay",),
}


def _drop_unwritten(model: BaseModel, data: dict[str, Any]) -> None:
    for name in _WHEN_WRITTEN.get(type(model), ()):
        if name not in model.model_fields_set:
            data.pop(name, None)


def export_dict(spec: PipelineSpec) -> dict[str, Any]:
    """The FastTrack document of ``spec`` as plain data."""
    data = spec.model_dump(by_alias=True, mode="python", exclude={"airflow"})
    _drop_unwritten(spec, data)
    _drop_unwritten(spec.ownership, data["ownership"])
    for task, task_data in zip(spec.tasks, data["tasks"], strict=True):
        _drop_unwritten(task, task_data)
        if task.retry is not None and "retry" in task_data:
            _drop_unwritten(task.retry, task_data["retry"])
        if task_data.get("service") is None:
            task_data.pop("service", None)
    airflow = spec.airflow.model_dump(by_alias=True, exclude_defaults=True)
    if airflow:
        data["airflow"] = airflow
    return data


def export_yaml(spec: PipelineSpec) -> str:
    """The FastTrack YAML of ``spec``."""
    return yaml.dump(export_dict(spec), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
