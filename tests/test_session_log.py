"""The session-log cursor: whole fetches of a growing log, each line written once."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_fasttrack.session_log import configured_log_interval, unseen_lines


def test_a_line_without_its_newline_waits_until_the_final_fetch() -> None:
    assert unseen_lines("", 0) == ([], 0)
    assert unseen_lines("a\nb", 0) == (["a"], 1)
    assert unseen_lines("a\nbc\n", 1) == (["bc"], 2)
    assert unseen_lines("a\nbc\nd", 2, final=True) == (["d"], 3)
    assert unseen_lines("a\n\nb\n", 0) == (["a", "", "b"], 3)  # an empty line is a line


@given(st.lists(st.text(alphabet="ab \n", max_size=12), min_size=1, max_size=6))
def test_fetches_of_a_growing_log_write_it_exactly_once(chunks: list[str]) -> None:
    log, shown, written = "", 0, []
    for chunk in chunks:
        log += chunk
        lines, shown = unseen_lines(log, shown)
        written += lines
    lines, shown = unseen_lines(log, shown, final=True)
    written += lines
    assert "\n".join(written) == log.removesuffix("\n")


@pytest.mark.parametrize(("value", "seconds"), [(None, 10.0), ("2.5", 2.5), ("0", None), ("", None)])
def test_the_interval_comes_from_the_fasttrack_section(
    monkeypatch: pytest.MonkeyPatch, value: str | None, seconds: float | None
) -> None:
    if value is None:
        monkeypatch.delenv("AIRFLOW__FASTTRACK__LOG_INTERVAL", raising=False)
    else:
        monkeypatch.setenv("AIRFLOW__FASTTRACK__LOG_INTERVAL", value)
    assert configured_log_interval() == seconds


def test_a_bad_interval_names_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FASTTRACK__LOG_INTERVAL", "ten")
    with pytest.raises(ValueError, match=r"\[fasttrack\] log_interval = 'ten' is not a number of seconds"):
        configured_log_interval()
