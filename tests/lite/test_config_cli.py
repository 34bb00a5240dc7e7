"""Configuration errors, the CLI's address check, and the scheduler's ordering (pure functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_fasttrack import slots as slotlib
from airflow_provider_fasttrack.exceptions import LiteConfigError
from airflow_provider_fasttrack.lite.cli import main
from airflow_provider_fasttrack.lite.config import LiteConfig, load_config
from airflow_provider_fasttrack.lite.scheduler import decide


def test_config_error_names_file_field_and_line(tmp_path: Path) -> None:
    path = tmp_path / "lite.yaml"
    path.write_text(
        "keypairs:\n  - access_key: AKIATEST\n    secret_key: s3cr3t-value-1234\nfaults:\n  error_rate: 2\n"
    )
    with pytest.raises(LiteConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message and "faults.error_rate" in message and f"{path}:5:" in message
    assert "s3cr3t-value-1234" not in message


def test_config_bad_yaml_and_bad_slot(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("keypairs: [\n")
    with pytest.raises(LiteConfigError, match=r"broken.yaml:\d+:\d+: YAML syntax error: "):
        load_config(broken)
    slots = tmp_path / "slots.yaml"
    slots.write_text("scaling_groups:\n  default:\n    slots: {mem: lots}\n")
    with pytest.raises(LiteConfigError, match="mem"):
        load_config(slots)
    twice = tmp_path / "twice.yaml"
    twice.write_text("faults:\n  error_rate: 0.1\n  error_rate: 0.5\n")
    with pytest.raises(
        LiteConfigError, match=r"twice.yaml:3:3 faults.error_rate: duplicate key 'error_rate'"
    ):
        load_config(twice)


def test_cli_refuses_non_loopback_without_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_cli_reports_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("unknown_knob: 1\n")
    assert main(["serve", "--port", "0", "--config", str(bad), "--data-dir", str(tmp_path / "d")]) == 2
    assert "unknown_knob" in capsys.readouterr().err


def _row(seq: int, priority: int = 10, shares: str = "5", **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": f"s{seq}",
        "seq": seq,
        "priority": priority,
        "status": "PENDING",
        "result": "UNDEFINED",
        "scaling_group": "default",
        "access_key": "AKIATEST",
        "dependencies": [],
        "requested_slots": slotlib.to_json({"cuda.shares": slotlib.parse_slot("cuda.shares", shares)}),
    }
    row.update(extra)
    return row


def test_scheduler_priority_then_fifo_without_backfill() -> None:
    config = LiteConfig.model_validate(
        {"scaling_groups": {"default": {"slots": {"cpu": 4, "cuda.shares": 10}}}}
    )
    sessions = [_row(1), _row(2, priority=50), _row(3), _row(4, shares="0.5")]
    started = [row["id"] for row in decide(config, sessions).start]
    assert started == ["s2", "s1"]  # the priority-50 one first, then FIFO; s3 blocks s4 (no backfill)
    waiting = decide(config, [_row(1, status="RUNNING"), _row(2, shares="6")]).waiting
    assert waiting["s2"][0]["name"] == "no_available_instances"
