"""Session names and job ids: deterministic, unique per task instance, and valid Backend.AI names."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_fasttrack.lite.session_spec import SESSION_NAME_RE
from airflow_provider_fasttrack.naming import pipeline_job_id, session_name

BACKEND_AI_NAME = re.compile(r"^[a-z0-9-]{4,64}$")
RUN = "manual__2026-03-01T00:00:00+00:00"


@given(
    dag_id=st.text(min_size=1, max_size=80),
    run_id=st.text(min_size=1, max_size=80),
    task_id=st.text(max_size=300),
    map_index=st.integers(min_value=-1, max_value=10**6),
)
@settings(max_examples=300, deadline=None)
def test_any_task_instance_gets_a_valid_stable_name(
    dag_id: str, run_id: str, task_id: str, map_index: int
) -> None:
    name = session_name(dag_id, run_id, task_id, map_index)
    assert BACKEND_AI_NAME.match(name), name
    assert SESSION_NAME_RE.match(name), name  # and backendai-lite accepts it
    assert name == session_name(dag_id, run_id, task_id, map_index)


def test_the_name_reads_as_the_task() -> None:
    name = session_name("speech", RUN, "Adapt_One.Node")
    assert re.fullmatch(r"ft-adapt-one-node-[0-9a-f]{16}", name), name


@pytest.mark.parametrize(
    "task_id",
    ["", "---", "...", "_", "Ü", "日本語", " ", "\n"],
)
def test_task_ids_without_a_safe_character_still_name_a_session(task_id: str) -> None:
    name = session_name("d", RUN, task_id)
    assert re.fullmatch(r"ft-task-[0-9a-f]{16}", name), name


def test_odd_task_ids_that_read_alike_get_different_names() -> None:
    names = {session_name("d", RUN, t) for t in ["a.b", "a_b", "a-b", "A B", "a--b", "---", "日本語"]}
    assert len(names) == 7


def test_long_task_ids_are_cut_to_64_characters_and_stay_distinct() -> None:
    stem = "step-" * 40
    first, second = session_name("d", RUN, stem + "one"), session_name("d", RUN, stem + "two")
    assert len(first) == len(second) == 64
    assert first != second
    assert first.startswith("ft-step-step-") and "--" not in first
    # the cut lands on a dash, which is dropped: no "--" before the digest
    cut_at_a_dash = session_name("d", RUN, "x" * 43 + "-" + "y" * 30)
    assert re.fullmatch(r"ft-x{43}-[0-9a-f]{16}", cut_at_a_dash), cut_at_a_dash


def test_map_index_run_and_dag_each_change_the_name() -> None:
    base = session_name("d", RUN, "score")
    assert base == session_name("d", RUN, "score", -1)  # an unmapped task's map index is -1
    mapped = {session_name("d", RUN, "score", i) for i in range(-1, 50)}
    assert len(mapped) == 51
    assert session_name("d", RUN + "x", "score") != base
    assert session_name("e", RUN, "score") != base


def test_fields_do_not_run_into_each_other() -> None:
    assert session_name("a-b", "c", "t") != session_name("a", "b-c", "t")
    assert pipeline_job_id("a-b", "c") != pipeline_job_id("a", "b-c")


def test_job_id_is_a_stable_uuid_per_dag_run() -> None:
    job = pipeline_job_id("speech", RUN)
    assert uuid.UUID(job).version == 5
    assert job == pipeline_job_id("speech", RUN)
    assert job != pipeline_job_id("speech", RUN + "x")
    assert job != pipeline_job_id("speech-2", RUN)


def test_non_ascii_letters_are_dropped_from_the_readable_part() -> None:
    name = session_name("d", RUN, "Überprüfung")
    assert re.fullmatch(r"ft-berpr-fung-[0-9a-f]{16}", name), name
