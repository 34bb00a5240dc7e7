"""``ContinueOnFailureGate``: what lets a FastTrack ``continue_on_failure`` task fail without failing its run.

Airflow has no per-edge trigger rule, and a DAG run fails when one of its leaf tasks failed. So the pipeline
factory puts a gate after such a task and makes the gate, not the task, the upstream of the task's downstream
tasks. The gate waits for the task to finish (``all_done``), then:

- the task succeeded or failed: the gate succeeds, so the downstream tasks run (their ``none_failed`` rule
  sees a success) and the run's outcome no longer depends on the task. The task itself still shows *failed*;
- the task was skipped: the gate is skipped, as the task's downstream tasks would see it;
- the task did not run because one of its own upstream tasks failed (``upstream_failed``): the gate fails, so
  the failure of that upstream task stops the downstream tasks as usual.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

__all__ = ["ContinueOnFailureGate"]


class ContinueOnFailureGate(BaseOperator):
    """Succeed when ``tolerated`` succeeded or failed; skip when it was skipped; fail when it never ran.

    :param tolerated: the task id of the ``continue_on_failure`` task this gate follows.
    """

    ui_color = "#fff3c4"

    def __init__(self, *, tolerated: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.tolerated = tolerated

    def execute(self, context: Context) -> None:
        ti = context["ti"]
        states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[self.tolerated], run_ids=[ti.run_id])
        state = states.get(ti.run_id, {}).get(self.tolerated)
        if state == "success":
            self.log.info("Task %s succeeded", self.tolerated)
        elif state == "failed":
            self.log.warning(
                "Task %s failed; continue_on_failure is set, so its downstream tasks run and the run does "
                "not fail because of it",
                self.tolerated,
            )
        elif state == "skipped":
            raise AirflowSkipException(f"Task {self.tolerated} was skipped")
        else:
            raise AirflowFailException(
                f"Task {self.tolerated} did not run ({state}): a task upstream of it failed, so the tasks "
                "downstream of it do not run either"
            )
