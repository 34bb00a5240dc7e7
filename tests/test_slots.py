"""Slot values: parsing, FastTrack's canonical forms, sums, and a session's total over its kernels."""

from __future__ import annotations

from decimal import Decimal

import pytest

from airflow_provider_fasttrack import slots

GIB = 2**30


def test_session_slots_multiply_every_slot_by_the_kernels() -> None:
    kernel = {"cpu": 4, "mem": "16g", "cuda.shares": "2.5", "cuda.device": 1}
    assert slots.session_slots(kernel, 1) == {
        "cpu": Decimal(4),
        "mem": Decimal(16 * GIB),
        "cuda.shares": Decimal("2.5"),
        "cuda.device": Decimal(1),
    }
    assert slots.session_slots(kernel, 2) == {
        "cpu": Decimal(8),
        "mem": Decimal(32 * GIB),
        "cuda.shares": Decimal(5),
        "cuda.device": Decimal(2),
    }


def test_session_slots_take_parsed_values_too() -> None:
    parsed = slots.parse_slots({"mem": "512m", "cuda.shares": "0.5"})
    assert slots.session_slots(parsed, 3) == {"mem": Decimal(3 * 512 * 2**20), "cuda.shares": Decimal("1.5")}


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "2"])
def test_session_slots_need_a_whole_positive_cluster_size(size: object) -> None:
    with pytest.raises(ValueError, match="cluster_size"):
        slots.session_slots({"cpu": 1}, size)  # type: ignore[arg-type]


def test_session_slots_name_the_bad_slot() -> None:
    with pytest.raises(ValueError, match="^mem: '16gb' is not a memory size"):
        slots.session_slots({"mem": "16gb"}, 2)


@pytest.mark.parametrize(
    ("text", "size"),
    [("512m", 512 * 2**20), ("16g", 16 * GIB), ("1.5t", int(1.5 * 2**40)), (1024, 1024), ("2GiB", 2 * GIB)],
)
def test_parse_memory(text: object, size: int) -> None:
    assert slots.parse_memory(text) == size


@pytest.mark.parametrize("text", ["16gb", "-1g", "lots", True])
def test_parse_memory_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        slots.parse_memory(text)


@pytest.mark.parametrize(
    ("name", "value", "canonical"),
    [("cpu", "4", 4), ("mem", "16G", "16g"), ("cuda.shares", 1.50, "1.5"), ("cuda.device", "2", 2)],
)
def test_normalize_slot(name: str, value: object, canonical: object) -> None:
    assert slots.normalize_slot(name, value) == canonical


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("cpu", "1.5", "not a whole number of CPU cores"),
        ("cpu", 0, "at least 1 cpu"),
        ("cuda.shares", "-1", "cannot be negative"),
        ("gpu", 1, "unknown resource slot 'gpu'"),
    ],
)
def test_normalize_slot_rejects(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        slots.normalize_slot(name, value)


def test_exceeding_names_what_is_over_and_counts_missing_slots_as_zero() -> None:
    request = slots.session_slots({"cpu": 3, "cuda.shares": 6}, 2)
    group = slots.parse_slots({"cpu": 8, "cuda.shares": 10})
    assert slots.exceeding(request, group) == {"cuda.shares": (Decimal(12), Decimal(10))}
    assert slots.exceeding({"tpu.device": Decimal(1)}, group) == {"tpu.device": (Decimal(1), Decimal(0))}
    assert slots.fits(slots.session_slots({"cpu": 3, "cuda.shares": 5}, 2), group)


def test_json_round_trip_and_unlimited() -> None:
    parsed = slots.parse_slots({"cpu": "inf", "mem": "1g"}, allow_unlimited=True)
    assert slots.to_json(parsed) == {"cpu": "Infinity", "mem": str(GIB)}
    assert slots.from_json(slots.to_json(parsed)) == parsed


def test_scaling_group_capacities_add_used_and_free() -> None:
    presets = {
        "scaling_groups": {
            "current": {"occupied": {"cpu": "2"}, "available": {"cpu": "6", "mem": str(GIB)}},
            "older": {"using": {"cuda.shares": "1.5"}, "remaining": {"cuda.shares": "8.5"}},
        }
    }
    assert slots.scaling_group_capacities(presets) == {
        "current": {"cpu": Decimal(8), "mem": Decimal(GIB)},
        "older": {"cuda.shares": Decimal(10)},
    }
