"""A run's usage from its sessions: totals, wall time, the critical path, the table."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fasttrack.usage import (
    MetricStat,
    SessionUsage,
    build_run_usage,
    session_usage_from_xcom,
)
from airflow_provider_fasttrack.usage_text import format_seconds, totals_line, usage_table

T0 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


def session(
    task: str, start: float, end: float | None, *, map_index: int = -1, gpu: float = 0.0, queued: float = 1.0
) -> SessionUsage:
    return SessionUsage(
        task_id=task,
        map_index=map_index,
        session_id=f"{task}-{map_index}-{start}",
        session_name=f"ft-{task}",
        status="TERMINATED",
        created_at=T0 + dt.timedelta(seconds=start),
        ended_at=None if end is None else T0 + dt.timedelta(seconds=end),
        queued_seconds=queued,
        running_seconds=None if end is None else end - start - queued,
        occupied_slots={"cpu": 2, "mem": 4 * 2**30, "cuda.shares": gpu},
        gpu_hours=gpu,
        cpu_core_hours=0.5,
        stats={"mem": MetricStat(unit="bytes", peak=3 * 2**30)},
    )


#: prepare -> (gate, no session) -> train[0..1] -> report; prepare -> evaluate -> report
UPSTREAMS = {
    "prepare": set(),
    "gate": {"prepare"},
    "train": {"gate"},
    "evaluate": {"prepare"},
    "report": {"train", "evaluate"},
}


def test_totals_wall_time_and_the_critical_path_through_a_task_without_session() -> None:
    sessions = [
        session("prepare", 0, 60),
        session("train", 70, 300, map_index=0, gpu=0.5),
        session("train", 75, 400, map_index=1, gpu=0.25),  # the mapped task spans 70 -> 400
        session("evaluate", 70, 350),
        session("report", 410, 420),
    ]
    run = build_run_usage(
        "d", "r", [*sessions, sessions[1]], UPSTREAMS
    )  # a session reported twice counts once
    assert len(run.sessions) == 5
    assert run.gpu_hours == pytest.approx(0.75)
    assert run.cpu_core_hours == pytest.approx(2.5)
    assert run.queued_seconds == pytest.approx(5.0)
    assert run.wall_seconds == 420
    assert run.critical_path == ["prepare", "train", "report"]
    assert run.critical_path_seconds == 60 + 330 + 10


def test_a_longer_parallel_branch_is_the_critical_path() -> None:
    sessions = [session("prepare", 0, 10), session("train", 20, 30), session("evaluate", 20, 200)]
    run = build_run_usage("d", "r", sessions, UPSTREAMS)
    assert (run.critical_path, run.critical_path_seconds) == (["prepare", "evaluate"], 190)


def test_sessions_without_an_end_count_in_totals_but_not_in_time() -> None:
    run = build_run_usage("d", "r", [session("prepare", 0, None, gpu=0.1)], UPSTREAMS)
    assert (run.wall_seconds, run.critical_path, run.critical_path_seconds) == (None, [], None)
    assert run.gpu_hours == pytest.approx(0.1)
    assert "wall -" in totals_line(run)


def test_no_sessions() -> None:
    run = build_run_usage("d", "r", [], {})
    assert (run.gpu_hours, run.wall_seconds, run.critical_path) == (0, None, [])
    assert usage_table(run)[-1].split() == ["total", "0.0s", "0.000", "0.000"]


@given(
    st.dictionaries(
        st.sampled_from(sorted(UPSTREAMS)),
        st.tuples(st.floats(0, 100), st.floats(0, 1000)),  # (gap after the upstream tasks, length)
    )
)
def test_the_critical_path_is_a_dependent_chain_no_longer_than_the_wall_time(times) -> None:  # type: ignore[no-untyped-def]
    ends: dict[str, float] = {}
    sessions = []
    for task in ("prepare", "gate", "evaluate", "train", "report"):  # each starts once its upstreams ended
        start = max((ends[a] for a in _ancestors(task) if a in ends), default=0.0)
        if task in times:
            gap, length = times[task]
            sessions.append(session(task, start + gap, start + gap + length))
            ends[task] = start + gap + length
    run = build_run_usage("d", "r", sessions, UPSTREAMS)
    if not sessions:
        return
    assert run.critical_path_seconds is not None and run.wall_seconds is not None
    for before, after in zip(run.critical_path, run.critical_path[1:], strict=False):
        assert before in _ancestors(after)
    # datetimes keep microseconds
    assert max(times[t][1] for t in times) - 1e-5 <= run.critical_path_seconds <= run.wall_seconds + 1e-5


def _ancestors(task: str) -> set[str]:
    found: set[str] = set()
    for parent in UPSTREAMS[task]:
        found |= {parent, *_ancestors(parent)}
    return found


def test_the_table_has_a_row_per_session_and_a_totals_row() -> None:
    run = build_run_usage(
        "d", "r", [session("prepare", 0, 60), session("train", 70, 300, map_index=1, gpu=0.5)], UPSTREAMS
    )
    header, prepare, train, total = usage_table(run)
    assert header.split() == [
        "task",
        "queued",
        "preparing",
        "running",
        "slots",
        "GPU-h",
        "CPU-core-h",
        "peak",
        "mem",
    ]
    assert prepare.split() == [
        "prepare",
        "1.0s",
        "-",
        "59s",
        "cpu=2",
        "mem=4.0GiB",
        "cuda.shares=0",
        "0.000",
        "0.500",
        "3.0",
        "GiB",
    ]
    assert train.split()[0] == "train[1]"
    assert total.split() == ["total", "2.0s", "0.500", "1.000"]
    assert len({len(line) for line in (header, prepare, train)}) == 1  # columns line up
    assert totals_line(run) == (
        "2 sessions, 0.500 GPU-h, 1.000 CPU-core-h, queued 2.0s, wall 5m00s, critical path prepare -> train (4m50s)"
    )


def test_a_table_cut_short_says_how_many_rows_it_left_out() -> None:
    run = build_run_usage("d", "r", [session(f"t{i}", i, i + 1) for i in range(5)], {})
    lines = usage_table(run, max_rows=2)
    assert lines[3] == "... 3 more sessions not shown"
    assert lines[-1].split()[-1] == "2.500"  # totals cover every session


def test_durations_read_at_a_glance() -> None:
    assert [format_seconds(s) for s in (None, 4.25, 42, 185, 7620)] == ["-", "4.2s", "42s", "3m05s", "2h07m"]


def test_an_xcom_that_is_not_a_usage_is_named_in_the_error() -> None:
    good = session("prepare", 0, 60)
    assert session_usage_from_xcom(good.model_dump(mode="json"), task_id="prepare") == good
    assert session_usage_from_xcom(good.model_dump_json(), task_id="prepare") == good
    with pytest.raises(
        ValueError, match=r"^task prepare: the backendai_usage XCom is not a session's usage \(created_at"
    ):
        session_usage_from_xcom(
            {**good.model_dump(mode="json"), "created_at": "yesterday"}, task_id="prepare"
        )
    with pytest.raises(ValueError, match="task x: .* not a session's usage"):
        session_usage_from_xcom("{not json", task_id="x")
