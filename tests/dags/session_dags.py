"""DAGs that the operator tests run with dag.test() against backendai-lite (airflow dag file)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_fasttrack.operators.session import BackendAISessionOperator
from airflow_provider_fasttrack.session_request import SessionRequest
from tests.helpers import WIDE_GPU_GROUP

START = pendulum.datetime(2026, 1, 1, tz="UTC")
IMAGE = "python:3.11"
GPU_TASK_RESOURCES = {"cpu": 1, "cuda.shares": "5"}
POOL_GATES = "pool-gates"
POOL_GATES_PATH = f"/home/work/{POOL_GATES}"


def session_dag(dag_id: str, **defaults: object) -> DAG:
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, default_args=defaults, tags=["test"])


for deferrable in (True, False):
    mode = "deferrable" if deferrable else "sync"
    common = {"deferrable": deferrable, "poll_interval": 0.5, "image": IMAGE}

    with session_dag(f"op_success_{mode}"):
        BackendAISessionOperator(
            task_id="hello",
            command="echo hello from the session; echo $BACKENDAI_PIPELINE_TASK_ID; sleep 0.5",
            env={"GREETING": "{{ dag.dag_id }}"},
            resources={"cpu": 1, "mem": "256m"},
            **common,
        )

    with session_dag(f"op_failure_{mode}"):
        BackendAISessionOperator(
            task_id="fails",
            command="echo preparing; echo the last words; exit 3",
            retries=0,
            **common,
        )

    with session_dag(f"op_skip_{mode}"):
        BackendAISessionOperator(task_id="skips", command="exit 99", skip_on_exit_code=99, **common)

    with session_dag(f"op_usage_{mode}", retries=0):
        # a GPU session, then two mapped sessions of which the second fails: each reports what it used
        gpu = BackendAISessionOperator(
            task_id="gpu",
            command="sleep 2",
            resources={"cpu": 1, "mem": "256m", "cuda.shares": "2"},
            **common,
        )
        each = BackendAISessionOperator.partial(
            task_id="each", resources={"cpu": 2, "mem": "128m"}, **common
        ).expand(command=["sleep 1", "sleep 1; exit 3"])
        gpu >> each

with session_dag("op_wait_in_worker", retries=0):
    # ends a few seconds after it starts: within [fasttrack] resume_grace, so the worker waits for it
    BackendAISessionOperator(
        task_id="short", command="sleep 4", image=IMAGE, deferrable=True, poll_interval=0.5
    )

with session_dag("op_usage_unreadable", retries=0):
    # the test garbles what backendai-lite stored of the session's slots while it runs
    BackendAISessionOperator(
        task_id="garbled", command="sleep 3", image=IMAGE, deferrable=False, poll_interval=0.5
    )

with session_dag("op_timeout"):
    BackendAISessionOperator(
        task_id="too_slow",
        command="sleep 120",
        image=IMAGE,
        poll_interval=0.5,
        execution_timeout=timedelta(seconds=3),
        retries=0,
    )

with session_dag("op_never_fits"):
    BackendAISessionOperator(
        task_id="greedy", command="true", image=IMAGE, resources={"cuda.shares": "500"}, retries=0
    )

with session_dag("op_never_fits_cluster"):
    # 6 shares fit the 10-share group on one kernel; two kernels need 12
    BackendAISessionOperator(
        task_id="two_kernels",
        command="true",
        image=IMAGE,
        resources={"cpu": 1, "cuda.shares": "6"},
        cluster_mode="multi-node",
        cluster_size=2,
        retries=0,
    )

with session_dag("op_never_fits_policy"):
    # 3 cpu fit a keypair policy of 4 on one kernel; two kernels need 6 (the test's keypair has that policy)
    BackendAISessionOperator(
        task_id="two_kernels",
        request=SessionRequest(image=IMAGE, command="true", resources={"cpu": 3}, cluster_size=2),
        retries=0,
    )

with session_dag("op_fgpu", retries=0):
    # Three GPU tasks in a scaling group with room for all three. Each session waits at a barrier (a file per
    # session in a vfolder): until a second task has started (for up to 2 minutes, however slowly the
    # worker starts tasks), then until the third has (for up to 15 s more). So all three overlap unless
    # something holds the third back, and when something does, the first two still overlap.
    for index in range(3):
        BackendAISessionOperator(
            task_id=f"gpu_{index}",
            command=(
                f"gates={POOL_GATES_PATH}/$BACKENDAI_PIPELINE_JOB_ID; mkdir -p $gates; "
                "touch $gates/$BACKENDAI_PIPELINE_TASK_ID; "
                "for i in $(seq 1200); do [ $(ls $gates | wc -l) -ge 2 ] && break; sleep 0.1; done; "
                "for i in $(seq 150); do [ $(ls $gates | wc -l) -ge 3 ] && break; sleep 0.1; done"
            ),
            image=IMAGE,
            resources=GPU_TASK_RESOURCES,
            scaling_group=WIDE_GPU_GROUP,
            mounts=[POOL_GATES],
            gpu_pool=True,
            poll_interval=0.5,
        )

with session_dag("op_chain", retries=0):
    previous = None
    for index in range(5):
        task = BackendAISessionOperator(
            task_id=f"step_{index}", command=f"echo step {index}", image=IMAGE, poll_interval=0.5
        )
        if previous is not None:
            previous >> task
        previous = task

with session_dag("op_crash", retries=0):
    # runs until the test opens the gate (a file in the "gates" vfolder): no race with the retry's start-up
    BackendAISessionOperator(
        task_id="crash_victim",
        command="until [ -e gates/crash-gate ]; do sleep 0.2; done; echo survived",
        image=IMAGE,
        mounts=["gates"],
        poll_interval=0.5,
    )

with session_dag("op_crash_sync", retries=1, retry_delay=timedelta(seconds=1)):
    # a real deployment kills the task's process; the retry reattaches through the task state store
    BackendAISessionOperator(
        task_id="crash_sync_victim",
        # the first line reaches the task log only once the operator polls, i.e. after it stored the id
        command="echo waiting-at-gate; until [ -e gates/crash-sync-gate ]; do sleep 0.2; done; echo survived",
        image=IMAGE,
        mounts=["gates"],
        deferrable=False,
        poll_interval=0.5,
    )

with session_dag("op_kill_sync", retries=0):
    BackendAISessionOperator(
        task_id="victim", command="sleep 120", image=IMAGE, deferrable=False, poll_interval=0.5
    )


def _sibling_states_at_retry(context):  # type: ignore[no-untyped-def]
    """``on_retry_callback``: print what became of the other tasks' sessions after the failed first try."""
    from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
    from airflow_provider_fasttrack.naming import session_name

    ti = context["ti"]
    hook = BackendAIHook()
    for task_id, map_index in FAIL_FAST_SIBLINGS:
        name = session_name(ti.dag_id, ti.run_id, task_id, map_index)
        statuses = [item["status"] for item in hook.find_sessions(name)]
        print(f"at retry: {task_id}[{map_index}] {statuses}")


#: the sessions fail-fast must destroy in op_fail_fast_retry: a plain sibling and both map indexes of a mapped one
FAIL_FAST_SIBLINGS = (("sibling", -1), ("mapped_sibling", 0), ("mapped_sibling", 1))

with session_dag("op_fail_fast_retry"):
    # the test starts the siblings' sessions under their task instances' names (as if another worker ran
    # them: dag.test() runs one task at a time); the siblings themselves wait for `breaks`, so they never
    # run here and leave their sessions to fail-fast
    breaks = BackendAISessionOperator(
        task_id="breaks",
        command="echo giving up; exit 4",
        image=IMAGE,
        fail_fast=True,
        retries=1,
        retry_delay=timedelta(0),
        on_retry_callback=_sibling_states_at_retry,
        poll_interval=0.5,
    )
    sibling = BackendAISessionOperator(
        task_id="sibling", command="sleep 300", image=IMAGE, fail_fast=True, poll_interval=0.5
    )
    mapped = BackendAISessionOperator.partial(
        task_id="mapped_sibling", image=IMAGE, fail_fast=True, poll_interval=0.5
    ).expand(command=["sleep 300", "sleep 301"])
    breaks >> [sibling, mapped]

#: the connection of the live-log DAG: backendai-lite as the README's example gives it, with no web UI page
PLAIN_CONN_ID = "backendai_plain"

with session_dag("op_live_log", retries=0):
    # the default log interval; the session holds at the gate (a file in the "gates" vfolder) until the test
    # has seen its first lines in the task log
    BackendAISessionOperator(
        task_id="live",
        command=(
            "echo live line one; echo live line two; "
            "until [ -e gates/live-log-gate ]; do sleep 0.2; done; echo after the gate"
        ),
        image=IMAGE,
        mounts=["gates"],
        backendai_conn_id=PLAIN_CONN_ID,
        poll_interval=0.5,
    )

with session_dag("op_static_skip", retries=0):
    BackendAISessionOperator(task_id="not_needed", command="true", image=IMAGE, skip=True)
