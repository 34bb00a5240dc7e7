"""A session's log in the Airflow task log: the manager returns the whole log each time; each line is shown once.

The cursor is the number of complete lines already shown. A last line without its newline is still being
written, so it waits for the next fetch, except in the final one when the session has ended.
"""

from __future__ import annotations

__all__ = ["DEFAULT_LOG_INTERVAL", "LOG_INTERVAL_OPTION", "configured_log_interval", "unseen_lines"]

#: seconds between log fetches while a task is deferred, unless ``[fasttrack] log_interval`` says otherwise
DEFAULT_LOG_INTERVAL = 10.0
LOG_INTERVAL_OPTION = "log_interval"


def unseen_lines(text: str, shown: int, *, final: bool = False) -> tuple[list[str], int]:
    """The lines of ``text`` after the first ``shown`` ones, and the new count of lines shown."""
    lines = text.split("\n")
    if lines[-1] == "" or not final:
        lines.pop()  # after the last newline: nothing, or a line still being written
    return lines[shown:], max(shown, len(lines))


def configured_log_interval() -> float | None:
    """``[fasttrack] log_interval`` (seconds; 0 or empty: only when the session ends)."""
    from airflow_provider_fasttrack.settings import configured_seconds

    return configured_seconds(LOG_INTERVAL_OPTION, DEFAULT_LOG_INTERVAL) or None
