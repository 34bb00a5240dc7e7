"""Quality gates (``airflow.quality_gates``): a task that reads another task's result and holds tasks back.

A gate ``name`` with ``after: A``, ``key: K``, ``above: X`` and ``before: [B, ...]`` is wired ``A >> name >> B``.
It passes when ``result_of_A[K] > X``; otherwise ``B`` and every task downstream of it end as skipped and the run
still succeeds. What it decided is its XCom (:meth:`QualityGateDecision.xcom`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_fasttrack.pipeline.spec import QualityGate

if TYPE_CHECKING:
    from airflow.sdk import DAG, BaseOperator

__all__ = ["QualityGateDecision", "QualityGateError", "add_quality_gates", "decide"]


class QualityGateError(ValueError):
    """The gate cannot decide: no result, no such key, or not a number (one line)."""


@dataclass(frozen=True)
class QualityGateDecision:
    """Whether ``after``'s ``key`` is above the threshold, and the one line that says so."""

    gate: str
    after: str
    key: str
    value: float
    above: float
    before: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return self.value > self.above

    @property
    def reason(self) -> str:
        measured = f"{self.after}'s {self.key} is {self.value:g}"
        if self.passed:
            return f"{self.gate} passed: {measured}, above {self.above:g}"
        return f"{self.gate} held back {', '.join(self.before)}: {measured}, not above {self.above:g}"

    def xcom(self) -> dict[str, Any]:
        """The gate's XCom value."""
        return {
            "passed": self.passed,
            "reason": self.reason,
            "key": self.key,
            "value": self.value,
            "above": self.above,
        }


def _number(value: Any) -> float | None:
    """``value`` as a finite number; ``None`` for anything else (booleans and numeric text included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def decide(
    gate: str, *, after: str, result: Any, key: str, above: Any, before: tuple[str, ...]
) -> QualityGateDecision:
    """The decision of ``gate`` on ``after``'s ``result``; raises :class:`QualityGateError` (one line)."""
    try:
        threshold = float(above) if isinstance(above, str) else _number(above)
    except ValueError:
        threshold = None
    if threshold is None or not math.isfinite(threshold):
        raise QualityGateError(f"{gate}: above is {str(above)[:100]!r}, not a number")
    if result is None:
        raise QualityGateError(f"{gate}: {after} has no result in this run (it pushed no XCom)")
    if not isinstance(result, Mapping):
        raise QualityGateError(f"{gate}: {after}'s result is a {type(result).__name__}, not a JSON object")
    if key not in result:
        keys = ", ".join(sorted(map(str, result))[:40]) or "none"
        raise QualityGateError(f"{gate}: {after}'s result has no key {key[:100]!r} (keys: {keys})")
    value = _number(result[key])
    if value is None:
        raise QualityGateError(f"{gate}: {after}'s {key} is {str(result[key])[:100]!r}, not a number")
    return QualityGateDecision(gate=gate, after=after, key=key, value=value, above=threshold, before=before)


def add_quality_gates(
    gates: Mapping[str, QualityGate], operators: Mapping[str, BaseOperator], dag: DAG
) -> dict[str, BaseOperator]:
    """One task per quality gate, wired ``after >> gate >> before``; returns them by name."""
    if not gates:
        return {}  # the operator's module (Airflow's ShortCircuitOperator) is imported only where a pipeline asks
    from airflow_provider_fasttrack.operators.quality_gate import QualityGateOperator

    built: dict[str, BaseOperator] = {}
    for name, gate in gates.items():
        node = QualityGateOperator(
            task_id=name,
            dag=dag,
            after=gate.after,
            key=gate.key,
            above=gate.above,
            before=tuple(gate.before),
            doc_md=(
                f"Runs {', '.join(gate.before)} only when {gate.after}'s `{gate.key}` is above `{gate.above}`; "
                "otherwise they and every task after them are skipped."
            ),
        )
        operators[gate.after] >> node
        for task_id in gate.before:
            node >> operators[task_id]
        built[name] = node
    return built
