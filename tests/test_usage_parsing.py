"""Usage from a ``compute_session`` answer: times from the status history, slots, resource-hours, statistics."""

from __future__ import annotations

import json

import pytest

from airflow_provider_fasttrack.usage import SessionUsage, session_usage

#: a terminated session as the manager 26.9.6 answers it: JSON fields as strings, allocations already released
MANAGER_NODE = {
    "id": "5a2c3a0e-0000-4000-8000-000000000001",
    "name": "ft-train-1",
    "status": "TERMINATED",
    "result": "SUCCESS",
    "created_at": "2026-12-07T09:00:00+00:00",
    "terminated_at": "2026-12-07T10:01:10+00:00",
    "status_history": json.dumps(
        {
            "PENDING": "2026-12-07T08:59:59.900000+00:00",
            "SCHEDULED": "2026-12-07T09:00:30+00:00",
            "PREPARING": "2026-12-07T09:00:31+00:00",
            "RUNNING": "2026-12-07T09:01:00+00:00",
            "TERMINATING": "2026-12-07T10:01:00+00:00",
            "TERMINATED": "2026-12-07T10:01:10+00:00",
        }
    ),
    "occupying_slots": "{}",
    "requested_slots": json.dumps({"cpu": "8", "mem": "17179869184", "cuda.shares": "2", "cuda.device": "0"}),
    "containers": [
        {
            "occupied_slots": "{}",
            "last_stat": json.dumps(
                {
                    "cpu_util": {"unit_hint": "millicores", "stats.max": "3000", "stats.avg": "1000"},
                    "mem": {"unit_hint": "bytes", "stats.max": "1000", "stats.avg": "500"},
                }
            ),
        },
        {
            "occupied_slots": "{}",
            "last_stat": json.dumps(
                {
                    "cpu_util": {"unit_hint": "millicores", "stats.max": "5000", "stats.avg": "2000"},
                    "mem": {"unit_hint": "bytes", "stats.max": "4000", "stats.avg": "1500"},
                    "cuda_util": {"unit_hint": "percent", "stats.max": "97.5", "stats.avg": "not a number"},
                }
            ),
        },
    ],
}


def test_times_slots_hours_and_stats_of_a_terminated_session() -> None:
    usage = session_usage(MANAGER_NODE, task_id="train", map_index=2)
    assert usage.task_id == "train" and usage.map_index == 2
    assert usage.session_id == MANAGER_NODE["id"] and usage.session_name == "ft-train-1"
    assert (usage.status, usage.result) == ("TERMINATED", "SUCCESS")
    assert usage.queued_seconds == 30.0  # created -> SCHEDULED
    assert usage.preparing_seconds == 30.0  # SCHEDULED -> RUNNING
    assert usage.running_seconds == 3600.0  # RUNNING -> TERMINATING
    assert usage.ended_at is not None and usage.ended_at.isoformat() == "2026-12-07T10:01:10+00:00"
    # released allocations: the requested slots stand in; a zero slot is left out
    assert usage.occupied_slots == {"cpu": 8.0, "mem": 17179869184.0, "cuda.shares": 2.0}
    assert usage.gpu_hours == pytest.approx(2.0)
    assert usage.cpu_core_hours == pytest.approx(8.0)
    # peak: the largest kernel's peak; mean: the mean of the kernels' lifetime means
    assert usage.stats["cpu_util"].model_dump() == {"unit": "millicores", "peak": 5000.0, "mean": 1500.0}
    assert usage.stats["mem"].model_dump() == {"unit": "bytes", "peak": 4000.0, "mean": 1000.0}
    assert usage.stats["cuda_util"].model_dump() == {"unit": "percent", "peak": 97.5, "mean": None}
    assert SessionUsage.model_validate_json(usage.model_dump_json()) == usage


def test_kernels_occupied_slots_are_summed_before_the_session_figures() -> None:
    node = {
        **MANAGER_NODE,
        "occupying_slots": {"cpu": "99"},
        "containers": [
            {"occupied_slots": {"cpu": "2", "cuda.device": "1"}, "last_stat": None},
            {"occupied_slots": json.dumps({"cpu": "2", "cuda.device": "1"}), "last_stat": None},
        ],
    }
    usage = session_usage(node, task_id="t")
    assert usage.occupied_slots == {"cpu": 4.0, "cuda.device": 2.0}
    assert usage.gpu_hours == pytest.approx(2.0) and usage.cpu_core_hours == pytest.approx(4.0)
    assert usage.stats == {}


def test_a_session_cancelled_while_pending_was_only_queued() -> None:
    node = {
        "id": "5a2c3a0e-0000-4000-8000-000000000002",
        "name": "ft-x",
        "status": "CANCELLED",
        "result": "UNDEFINED",
        "created_at": "2026-12-07T09:00:00Z",
        "terminated_at": None,
        "status_history": {"PENDING": "2026-12-07T09:00:00Z", "CANCELLED": "2026-12-07T09:00:05Z"},
        "occupying_slots": None,
        "requested_slots": {"cpu": "1"},
        "containers": None,
    }
    usage = session_usage(node, task_id="x")
    assert usage.queued_seconds == 5.0
    assert usage.preparing_seconds is None and usage.running_seconds is None
    assert usage.gpu_hours == 0.0 and usage.cpu_core_hours == 0.0


def test_an_answer_without_the_session_times_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="created_at"):
        session_usage({**MANAGER_NODE, "created_at": None}, task_id="t")
    with pytest.raises(ValueError, match="status_history"):
        session_usage({**MANAGER_NODE, "status_history": "[1, 2]"}, task_id="t")


def test_the_task_log_line() -> None:
    from airflow_provider_fasttrack.usage import format_usage

    line = format_usage(session_usage(MANAGER_NODE, task_id="train"))
    assert line == (
        f"Backend.AI usage of session ft-train-1 ({MANAGER_NODE['id']}): queued 30.0 s, preparing 30.0 s, "
        "running 1:00:00; slots cpu=8, cuda.shares=2, mem=16g; 2.0000 GPU-hours, 8.0000 CPU-core-hours; "
        "peak memory 0.0 MiB"
    )
