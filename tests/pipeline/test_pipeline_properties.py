"""Random mutations of valid pipelines: the loader and the DAG build either succeed or raise
``PipelineSpecError`` with one-line, located messages; nothing else ever escapes."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_fasttrack.exceptions import PipelineSpecError
from airflow_provider_fasttrack.pipeline.factory import build_pipeline
from airflow_provider_fasttrack.pipeline.validate import load_pipeline_text

HERE = Path(__file__).resolve().parent
VALID = [
    (HERE.parents[1] / "dags" / "pipelines" / "demo-wordcount.yaml").read_text(),
    (HERE / "broken" / "mem_gb.yaml").read_text().replace("16gb", "16g"),
]
LINE = re.compile(r"^mutant\.yaml:\d+:\d+:? \S")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "16gb", "0.5", "-1", "@daily", "a:b:c", "{{ x", "multi-node", "serving", "x" * 300]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(data: Any, path: tuple, action: str, value: Any) -> Any:
    if not path:
        return value
    data = copy.deepcopy(data)
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[f"extra_{len(parent)}"] = value
    elif action == "add" and isinstance(parent, list):
        parent.append(value)
    else:
        parent[last] = value
    return data


def _check(text: str) -> None:
    try:
        loaded = load_pipeline_text(text, "mutant.yaml")
        build_pipeline(loaded)
    except PipelineSpecError as exc:
        assert exc.issues
        for line in str(exc).split("\n"):
            assert LINE.match(line), line


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    base=st.sampled_from(VALID),
    action=st.sampled_from(["replace", "delete", "add"]),
    value=values,
)
def test_structural_mutations_never_escape(data: st.DataObject, base: str, action: str, value: Any) -> None:
    tree = yaml.safe_load(base)
    path = data.draw(st.sampled_from(_paths(tree)))
    _check(yaml.safe_dump(_mutate(tree, path, action, value), sort_keys=False))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(VALID), position=st.floats(0, 1), cut=st.integers(0, 40), insert=st.text(max_size=8)
)
def test_text_mutations_never_escape(base: str, position: float, cut: int, insert: str) -> None:
    at = int(position * len(base))
    _check(base[:at] + insert + base[at + cut :])


@settings(max_examples=150, deadline=None)
@given(
    base=st.sampled_from(VALID), position=st.floats(0, 1), cut=st.integers(0, 40), insert=st.text(max_size=8)
)
def test_position_keeping_reader_builds_what_pyyaml_builds(
    base: str, position: float, cut: int, insert: str
) -> None:
    from training.yamldoc import YamlDocumentError, parse_yaml

    at = int(position * len(base))
    text = base[:at] + insert + base[at + cut :]
    try:
        expected = yaml.load(
            text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        )  # same parser, PyYAML's constructor
    except yaml.YAMLError:
        with pytest.raises(YamlDocumentError):
            parse_yaml(text, "mutant.yaml")
        return
    assert repr(parse_yaml(text, "mutant.yaml").data) == repr(expected)


@settings(max_examples=100, deadline=None)
@given(
    data=st.data(),
    base=st.sampled_from(VALID),
    action=st.sampled_from(["replace", "delete", "add"]),
    value=values,
)
def test_export_of_any_loadable_mutant_is_stable(
    data: st.DataObject, base: str, action: str, value: Any
) -> None:
    from airflow_provider_fasttrack.pipeline.export import export_yaml

    tree = yaml.safe_load(base)
    path = data.draw(st.sampled_from(_paths(tree)))
    try:
        loaded = load_pipeline_text(yaml.safe_dump(_mutate(tree, path, action, value)), "mutant.yaml")
    except PipelineSpecError:
        return
    first = export_yaml(loaded.spec)
    again = load_pipeline_text(first, "exported.yaml")
    assert export_yaml(again.spec) == first
    assert again.spec == loaded.spec


@pytest.mark.parametrize("odd", ["\x85", "a\u2028b", "carriage\rreturn"])
def test_export_keeps_unusual_line_breaks(odd: str) -> None:
    """Keys and values with YAML's other line breaks survive export -> load (found by the property test)."""
    from airflow_provider_fasttrack.pipeline.export import export_yaml

    tree = yaml.safe_load(VALID[0])
    tree[odd] = odd  # an unknown top-level field: kept, and warned about
    loaded = load_pipeline_text(yaml.safe_dump(tree), "odd.yaml")
    first = export_yaml(loaded.spec)
    again = load_pipeline_text(first, "exported.yaml")
    assert export_yaml(again.spec) == first
    assert again.spec == loaded.spec
