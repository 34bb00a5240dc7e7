"""``airflow.approvals``: a person approves or rejects before a pipeline's promotion tasks run.

Each entry becomes one :class:`~airflow_provider_fasttrack.operators.approval.PipelineApproval` task, wired
``after >> approval >> before``. Unless the entry gives a ``body``, the approver reads the evaluation summary
(:func:`evaluation_summary`): the result of the task the approval follows (its ``result.json``, which is its
XCom) or, when it follows a quality gate or another approval, the result of the task that one follows, with the
gate's decision; the run's usage so far; and a link to the run's FastTrack view, where the evaluation's report
files are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_provider_fasttrack.pipeline.spec import PipelineSpec

if TYPE_CHECKING:
    from airflow.sdk import DAG, BaseOperator

    from airflow_provider_fasttrack.usage import RunUsage

__all__ = [
    "BODY_LIMIT",
    "build_approvals",
    "capped",
    "evaluation_summary",
    "result_source",
]

#: characters of an approval request's body (the summary, or the pipeline's own body once rendered)
BODY_LIMIT = 8000
#: characters of the metrics table, of one key and of one value in it
_METRICS_LIMIT = 4000
_KEY_LIMIT = 80
_VALUE_LIMIT = 200
#: usage table rows shown (all sessions count in its totals)
_USAGE_ROWS = 20
#: characters markdown reads as markup, written as text
_MARKDOWN = str.maketrans(
    {
        **{c: f"\\{c}" for c in "\\`*{}[]()|~"},
        "<": "&lt;",
        ">": "&gt;",
        "&": "&amp;",
        "\n": " ",
        "\r": " ",
    }
)


def result_source(spec: PipelineSpec, name: str) -> tuple[str, str | None]:
    """``(task, gate)``: the task whose result approval ``name``'s summary shows, and the quality gate whose
    decision it shows (``None``: none). An approval after a quality gate shows that gate's ``after`` task; after
    another approval, what that one shows."""
    approvals, gates = spec.airflow.approvals, spec.airflow.quality_gates
    after, seen = approvals[name].after, {name}
    while after in approvals and after not in seen:  # a loop is a validation error; stop anyway
        seen.add(after)
        after = approvals[after].after
    if after in gates:
        return str(gates[after].after), after
    return after, None


def build_approvals(
    spec: PipelineSpec, nodes: Mapping[str, BaseOperator], dag: DAG, *, stand_ins: Mapping[str, BaseOperator]
) -> dict[str, BaseOperator]:
    """The approval tasks of ``spec``, wired ``after >> approval >> before``.

    ``nodes``: the pipeline's tasks (and quality gates) by name; ``stand_ins``: the tasks that follow a
    ``continue_on_failure`` task in its place, as its downstream tasks' upstream.
    """
    if not spec.airflow.approvals:
        return {}  # the operator's module (Airflow's HITL operators) is imported only where a pipeline asks
    import datetime as dt

    from airflow_provider_fasttrack.operators.approval import PipelineApproval

    answers = {"reject": PipelineApproval.REJECT, "approve": PipelineApproval.APPROVE, "none": None}
    built: dict[str, BaseOperator] = {}
    for name, approval in spec.airflow.approvals.items():
        source, gate = result_source(spec, name)
        timeout = approval.response_timeout
        built[name] = PipelineApproval(
            task_id=name,
            dag=dag,
            subject=approval.subject or f"Run {', '.join(approval.before)} of {spec.name}?",
            body=approval.body,
            defaults=answers[approval.default],
            response_timeout=dt.timedelta(seconds=timeout) if timeout is not None else None,
            summary_of=source,
            decision_of=gate,
            doc_md=f"Asks a person to approve {', '.join(approval.before)}; reject skips them and what follows.",
        )
    every = {**nodes, **built}
    for name, approval in spec.airflow.approvals.items():
        stand_ins.get(approval.after, every[approval.after]) >> built[name]
        for task in approval.before:
            built[name] >> every[task]
    return built


def capped(body: str) -> str:
    """``body`` cut to :data:`BODY_LIMIT` characters, saying so."""
    if len(body) <= BODY_LIMIT:
        return body
    note = f"\n\n_(cut to {BODY_LIMIT} characters)_"
    return body[: BODY_LIMIT - len(note)] + note


def _text(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        value = json.dumps(value, default=str, separators=(",", " "))
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    return value.translate(_MARKDOWN)


def _metrics(result: Any) -> list[str]:
    """The result as a markdown table: one row per key, until the table's size limit."""
    from airflow_provider_fasttrack.masking import redacted

    shown = redacted(result if isinstance(result, Mapping) else {"result": result})
    lines, size = ["| metric | value |", "|---|---|"], 0
    for index, (key, value) in enumerate(shown.items()):
        row = f"| {_text(str(key), _KEY_LIMIT)} | {_text(value, _VALUE_LIMIT)} |"
        if size + len(row) > _METRICS_LIMIT:
            lines.append(f"\n_{len(shown) - index} more not shown_")
            break
        lines.append(row)
        size += len(row) + 1
    return lines


def evaluation_summary(
    *,
    source: str,
    result: Any,
    decision: Mapping[str, Any] | None,
    usage: RunUsage | None,
    report_url: str,
) -> str:
    """The default body of an approval request (markdown): ``source``'s result as a table, a quality gate's
    decision, the run's usage so far and a link to the run's FastTrack view (its report files and plots).

    Values come from sessions: they are written as text (never as markdown or HTML), cut to size, and values
    under secret-looking keys or known to Airflow's secrets masker are hidden.
    """
    from airflow_provider_fasttrack.masking import redacted
    from airflow_provider_fasttrack.usage_text import HEADER, session_row, totals_line

    lines = [f"**Evaluation: {_text(source, _KEY_LIMIT)}** · [FastTrack view of this run]({report_url})", ""]
    if result is None:
        lines.append(f"{_text(source, _KEY_LIMIT)} returned no result.")
    else:
        lines += _metrics(result)
    if decision:
        shown = redacted(dict(decision))
        verdict = "passed" if shown.get("passed") else "held"
        lines += ["", f"Quality gate {verdict}: {_text(shown.get('reason', ''), _VALUE_LIMIT)}"]
    if usage is not None:
        lines += ["", f"**Usage so far:** {_text(totals_line(usage), _VALUE_LIMIT * 2)}", ""]
        rows = [HEADER, ("---",) * len(HEADER), *(session_row(u) for u in usage.sessions[:_USAGE_ROWS])]
        lines += ["| " + " | ".join(_text(cell, _VALUE_LIMIT) for cell in row) + " |" for row in rows]
        if len(usage.sessions) > _USAGE_ROWS:
            lines.append(f"\n_{len(usage.sessions) - _USAGE_ROWS} more sessions not shown_")
    return capped("\n".join(lines))
