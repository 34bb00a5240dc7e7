"""``BackendAISessionOperator``: one Airflow task = one Backend.AI batch session.

Flow: ``execute`` -> (skip?) -> ``execute_resumable`` (Airflow's ``ResumableJobMixin``) -> ``submit_job`` creates
the session under a deterministic name and stores its id -> ``poll_until_complete`` defers to
``BackendAISessionTrigger`` (or polls here in sync mode, streaming the log) -> ``execute_complete`` /
``_finish`` reads the result, logs and ``result.json`` and succeeds, skips or fails with Backend.AI's reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context, ResumableJobMixin
from airflow.sdk.exceptions import AirflowSkipException, AirflowTaskTimeout

from airflow_provider_fasttrack.artifacts import RESULT_FILE, PipelineArtifacts, as_artifacts
from airflow_provider_fasttrack.exceptions import (
    BackendAIError,
    BackendAINotFoundError,
    ResourceRequestError,
    SessionFailedError,
)
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.hooks.connection import DEFAULT_CONN_ID
from airflow_provider_fasttrack.hooks.models import ACTIVE_STATUSES, SessionState
from airflow_provider_fasttrack.links import SESSION_URL_XCOM_KEY, BackendAISessionLink
from airflow_provider_fasttrack.mounts import Mount
from airflow_provider_fasttrack.naming import pipeline_job_id, session_name
from airflow_provider_fasttrack.pools import gpu_pool
from airflow_provider_fasttrack.slots import (
    format_slots,
    is_memory_slot,
    scaling_group_capacities,
    slots_exceeding,
)
from airflow_provider_fasttrack.triggers.session import BackendAISessionTrigger

__all__ = ["BackendAISessionOperator"]

LOG_TAIL_LINES = 20
SKIP_TASKS_PARAM = "skip_tasks"


class BackendAISessionOperator(ResumableJobMixin, BaseOperator):
    """Run ``command`` in a Backend.AI batch session and wait for it.

    :param image: container image of the session.
    :param command: the batch ``startupCommand`` (run with bash).
    :param resources: slots, e.g. ``{"cpu": 4, "mem": "16g", "cuda.shares": "1.5"}`` (kept as
        ``session_resources``: ``resources`` is Airflow's own operator field).
    :param resource_opts: e.g. ``{"shmem": "2g"}``.
    :param mounts: vfolders, FastTrack syntax ``"vf"`` or ``"vf:alias"``.
    :param env: environment variables of the session (templated).
    :param artifacts: the task's place in a pipeline vfolder (``/pipeline/outputs``, ``/pipeline/input1..N``).
    :param skip: start no session and end as skipped (FastTrack's ``skip: true``).
    :param skip_on_exit_code: exit code(s) that end the task as skipped instead of failed.
    :param fail_fast: when this task fails, destroy the sessions of the other tasks of the same DAG run; when
        a task of the run has already failed, end as skipped without a session.
    :param gpu_pool: run in the scaling group's GPU pool with ``pool_slots`` from the GPU request
        (see :mod:`airflow_provider_fasttrack.pools`), unless ``pool`` is given.
    :param deferrable: wait in the triggerer (default True, whatever ``[operators] default_deferrable`` says:
        a GPU job should not hold a worker slot for hours).
    :param durable: store the session id before waiting, so that a retry reattaches (``ResumableJobMixin``).
    :param poll_interval: seconds between state checks (events wake it up sooner).
    :param log_interval: seconds between log fetches while deferred (None: only at the end).
    """

    template_fields: Sequence[str] = ("command", "env", "image", "mounts", "session_resources")
    template_fields_renderers = {"command": "bash", "env": "json", "session_resources": "json"}
    ui_color = "#b6e3ff"
    operator_extra_links = (BackendAISessionLink(),)
    external_id_key = "backendai_session_id"

    def __init__(
        self,
        *,
        image: str,
        command: str,
        resources: Mapping[str, Any] | None = None,
        resource_opts: Mapping[str, Any] | None = None,
        cluster_mode: str = "single-node",
        cluster_size: int = 1,
        mounts: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        project: str | None = None,
        scaling_group: str | None = None,
        domain: str | None = None,
        architecture: str = "x86_64",
        batch_timeout: int | str | None = None,
        bootstrap_script: str | None = None,
        tag: str | None = None,
        backendai_conn_id: str = DEFAULT_CONN_ID,
        artifacts: PipelineArtifacts | Mapping[str, Any] | None = None,
        skip: bool = False,
        skip_on_exit_code: int | Collection[int] | None = None,
        fail_fast: bool = False,
        gpu_pool: bool = False,
        deferrable: bool = True,
        poll_interval: float = 5.0,
        log_interval: float | None = 60.0,
        **kwargs: Any,
    ) -> None:
        if gpu_pool and "pool" not in kwargs and (pool := _gpu_pool(scaling_group, resources)):
            kwargs["pool"], kwargs["pool_slots"] = pool
        super().__init__(**kwargs)
        if cluster_mode not in {"single-node", "multi-node"}:
            raise ValueError(f"cluster_mode must be 'single-node' or 'multi-node', not {cluster_mode!r}")
        self.image = image
        self.command = command
        # BaseOperator.resources is Airflow's own executor-resources field: keep the session's slots apart
        self.session_resources = dict(resources or {})
        self.resource_opts = dict(resource_opts or {})
        self.cluster_mode = cluster_mode
        self.cluster_size = cluster_size
        self.mounts = list(mounts)
        self.env = dict(env or {})
        self.project = project
        self.scaling_group = scaling_group
        self.domain = domain
        self.architecture = architecture
        self.batch_timeout = batch_timeout
        self.bootstrap_script = bootstrap_script
        self.tag = tag
        self.backendai_conn_id = backendai_conn_id
        self.artifacts = as_artifacts(artifacts)
        self.skip = skip
        if skip_on_exit_code is None:
            self.skip_on_exit_code: frozenset[int] = frozenset()
        elif isinstance(skip_on_exit_code, int):
            self.skip_on_exit_code = frozenset({skip_on_exit_code})
        else:
            self.skip_on_exit_code = frozenset(skip_on_exit_code)
        self.fail_fast = fail_fast
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.log_interval = log_interval
        self._kill_requested = False

    @cached_property
    def hook(self) -> BackendAIHook:
        return BackendAIHook(self.backendai_conn_id)

    # -- identity of this task's session ------------------------------------------------------

    def _session_name(self, context: Context) -> str:
        ti = context["ti"]
        return session_name(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))

    def _job_id(self, context: Context) -> str:
        ti = context["ti"]
        return pipeline_job_id(ti.dag_id, ti.run_id)

    # -- execute --------------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        skip_now = set(context["params"].get(SKIP_TASKS_PARAM) or ()) if "params" in context else set()
        if self.skip or self.task_id in skip_now:
            why = "skip: true" if self.skip else f"listed in the run's '{SKIP_TASKS_PARAM}' param"
            raise AirflowSkipException(f"Task {self.task_id} skipped ({why}); no session started")
        if self.fail_fast and self._failed_tasks_in_run(context):
            raise AirflowSkipException(
                f"Task {self.task_id} not started: a task of this run failed and fail_fast is set"
            )
        return self.execute_resumable(context)

    def _failed_tasks_in_run(self, context: Context) -> int:
        """How many tasks of this DAG run have failed, as Airflow records them (through the Task SDK)."""
        ti = context["ti"]
        return int(ti.get_ti_count(dag_id=ti.dag_id, run_ids=[ti.run_id], states=["failed"]))

    def submit_job(self, context: Context) -> str:
        name = self._session_name(context)
        self._check_capacity()
        mounts = [Mount.parse(m) for m in self.mounts]
        environ = dict(self.env)
        environ["BACKENDAI_PIPELINE_JOB_ID"] = self._job_id(context)
        environ["BACKENDAI_PIPELINE_TASK_ID"] = self.task_id
        if self.artifacts is not None:
            mounts += self._artifact_mounts(context)
            environ.update(self.artifacts.environ())
        request = self.hook.build_session_request(
            name=name,
            image=self.image,
            command=self.command,
            resources=self.session_resources,
            resource_opts=self.resource_opts,
            mounts=mounts,
            environ=environ,
            cluster_mode=self.cluster_mode,
            cluster_size=self.cluster_size,
            project=self.project,
            domain=self.domain,
            scaling_group=self.scaling_group,
            architecture=self.architecture,
            batch_timeout=self.batch_timeout,
            bootstrap_script=self.bootstrap_script,
            tag=self.tag or context["ti"].dag_id,
        )
        created = self.hook.create_session(request)
        session_id = str(created["sessionId"])
        self.log.info(
            "Backend.AI session %s (%s) %s, status %s",
            name,
            session_id,
            "created" if created.get("created", True) else "already exists; reattached",
            created.get("status"),
        )
        ti = context["ti"]
        ti.xcom_push(key="session_id", value=session_id)
        ti.xcom_push(key="session_name", value=name)
        if url := self.hook.webui_session_url(session_id):
            ti.xcom_push(key=SESSION_URL_XCOM_KEY, value=url)
        return session_id

    def _check_capacity(self) -> None:
        """Fail at once when the request can never fit the scaling group or the keypair's limits."""
        if not self.session_resources:
            return
        presets = self.hook.check_presets(project=self.project, scaling_group=self.scaling_group)
        # the keypair's policy limits only the slots it names; a scaling group has 0 of any slot it lacks
        policy = {
            k: v for k, v in (presets.get("keypair_limits") or {}).items() if v not in (None, "Infinity")
        }
        checks = [
            (
                "the keypair's resource policy",
                policy,
                {k: v for k, v in self.session_resources.items() if k in policy},
            )
        ]
        groups = scaling_group_capacities(presets)
        group_name = self.scaling_group or self.hook.settings.scaling_group or next(iter(groups), None)
        if group_name in groups:
            checks.append((f"scaling group {group_name!r}", groups[group_name], self.session_resources))
        for where, limit, request in checks:
            over = slots_exceeding(request, limit)
            if over:
                slot, (_, have) = min(over.items())
                raise ResourceRequestError(
                    f"Task {self.task_id} requests {slot}={self.session_resources[slot]} but {where} can never "
                    f"provide more than {_human(slot, have)} (request: {format_slots(self.session_resources)})"
                )

    def _artifact_mounts(self, context: Context) -> list[Mount]:
        assert self.artifacts is not None
        job_id = self._job_id(context)
        self.hook.ensure_vfolder(self.artifacts.vfolder)
        upstream_jobs: dict[str, str] = {}
        for upstream in self.artifacts.upstream:
            upstream_jobs[upstream] = self._upstream_job(job_id, upstream)
        return self.artifacts.mounts(job_id, self.task_id, upstream_jobs)

    def _upstream_job(self, job_id: str, upstream: str) -> str:
        """This run's job when the upstream produced output in it, else the upstream's last successful job."""
        assert self.artifacts is not None
        try:
            if self.hook.list_files(self.artifacts.vfolder, job_id + "/" + upstream) is not None:
                return job_id
        except BackendAINotFoundError:
            pass
        try:
            pointer = self.hook.download_file(self.artifacts.vfolder, self.artifacts.latest_pointer(upstream))
        except BackendAINotFoundError:
            self.log.warning("Upstream %s has no output yet; /pipeline/input for it is empty", upstream)
            return job_id
        latest = PipelineArtifacts.parse_pointer(pointer) or job_id
        self.log.info(
            "Upstream %s did not run in this job; reading its last output (job %s)", upstream, latest
        )
        return latest

    # -- ResumableJobMixin --------------------------------------------------------------------

    def get_job_status(self, external_id: Any, context: Context) -> str:
        try:
            state = self.hook.get_session_state(str(external_id))
        except BackendAINotFoundError:
            return "GONE"
        return f"{state.status}/{state.result}"

    def is_job_active(self, status: str) -> bool:
        return status.split("/")[0] in ACTIVE_STATUSES

    def is_job_succeeded(self, status: str) -> bool:
        return status == "TERMINATED/SUCCESS"

    def poll_until_complete(self, external_id: Any, context: Context) -> Any:
        session_id = str(external_id)
        name = self._session_name(context)
        if self.deferrable:
            self.defer(
                trigger=BackendAISessionTrigger(
                    session_id=session_id,
                    session_name=name,
                    backendai_conn_id=self.backendai_conn_id,
                    poll_interval=self.poll_interval,
                    deadline=self._deadline(context),
                    log_interval=self.log_interval,
                ),
                method_name="execute_complete",
            )
        offset = 0
        try:
            while True:
                state = self.hook.get_session_state(session_id)
                offset = self._log_new_output(session_id, name, offset)
                if state.is_terminal:
                    return self._finish(context, state, offset)
                if self._kill_requested:
                    self._stop_waiting(context, session_id)
                time.sleep(self.poll_interval)
        except AirflowTaskTimeout:  # execution_timeout: the session must not outlive the task
            self.log.info("execution_timeout exceeded: destroying Backend.AI session %s", session_id)
            self.hook.destroy_session(session_id, forced=True)
            raise

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        state = self.hook.get_session_state(str(external_id))
        return self._finish(context, state, log_offset=None)

    def _deadline(self, context: Context) -> float | None:
        """``execution_timeout`` as an absolute time, so that it also holds while deferred."""
        if self.execution_timeout is None:
            return None
        start = context["ti"].start_date
        started = start.timestamp() if start else time.time()
        return started + self.execution_timeout.total_seconds()

    # -- completion -----------------------------------------------------------------------------

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        session_id = str(event["session_id"])
        status = event.get("status")
        if status == "timeout":
            self.hook.destroy_session(session_id, forced=True)
            tail = self._log_tail(session_id)
            raise AirflowTaskTimeout(
                f"execution_timeout ({self.execution_timeout}) exceeded while waiting for Backend.AI session "
                f"{event.get('session_name')} ({session_id}); the session was destroyed.{tail}",
            )
        if status == "error":
            raise SessionFailedError(f"Lost track of Backend.AI session {session_id}: {event.get('message')}")
        # the trigger read the state from the manager; read it again rather than trust a payload blindly
        state = self.hook.get_session_state(session_id)
        return self._finish(context, state, int(event.get("log_offset") or 0))

    def _finish(self, context: Context, state: SessionState, log_offset: int | None) -> Any:
        ti = context["ti"]
        name = self._session_name(context)
        if log_offset is not None:
            self._log_new_output(state.session_id, name, log_offset)
        ti.xcom_push(key="exit_code", value=state.exit_code)
        ti.xcom_push(key="result", value=state.result)
        if state.is_successful:
            self.log.info("Backend.AI %s", state.describe())
            return self._task_result(context, state)
        if state.exit_code is not None and state.exit_code in self.skip_on_exit_code:
            raise AirflowSkipException(
                f"Session exited with {state.exit_code}, declared as skip_on_exit_code"
            )
        if self.fail_fast:
            self._cancel_siblings(context)
        raise SessionFailedError(f"Backend.AI {state.describe()}{self._log_tail(state.session_id)}")

    def _task_result(self, context: Context, state: SessionState) -> Any:
        """``result.json`` from the outputs folder when the session wrote one, else a summary."""
        summary = {"session_id": state.session_id, "result": state.result, "exit_code": state.exit_code}
        if self.artifacts is None:
            return summary
        job_id = self._job_id(context)
        folder = self.artifacts.output_dir(job_id, self.task_id)
        self.hook.upload_file(
            self.artifacts.vfolder,
            self.artifacts.latest_pointer(self.task_id),
            PipelineArtifacts.pointer_content(job_id),
        )
        try:
            content = self.hook.download_file(self.artifacts.vfolder, f"{folder}/{RESULT_FILE}")
        except BackendAINotFoundError:
            return summary
        try:
            return json.loads(content)
        except ValueError as exc:
            raise SessionFailedError(
                f"{RESULT_FILE} written by session {state.session_id} is not valid JSON: {exc}"
            ) from exc

    # -- logs ----------------------------------------------------------------------------------

    def _log_new_output(self, session_id: str, name: str, offset: int) -> int:
        try:
            text = self.hook.get_logs(session_id)
        except BackendAIError as exc:
            self.log.warning("Could not fetch the session log: %s", exc)
            return offset
        for line in text[offset:].rstrip("\n").splitlines():
            self.log.info("[%s] %s", name, line)
        return max(offset, len(text))

    def _log_tail(self, session_id: str) -> str:
        try:
            lines = self.hook.get_logs(session_id).rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
        except BackendAIError:
            return ""
        return ("\nLast log lines:\n" + "\n".join(lines)) if lines else ""

    # -- kill and fail-fast ---------------------------------------------------------------------

    def on_kill(self) -> None:
        """Airflow is terminating this task (a user action, a timeout, or the worker shutting down).

        Runs in a signal handler, so it only records the request; the waiting loop, on the main thread,
        then destroys the session, or keeps it when a durable task's worker is merely shutting down
        (see :meth:`_stop_waiting`). Before the loop is reached there is no session to act on.
        """
        self._kill_requested = True

    def _stop_waiting(self, context: Context, session_id: str) -> None:
        """Act on a kill request: keep the session for the retry, or destroy it; then end the task."""
        if self.durable and self._task_still_running(context):
            self.log.info(
                "Worker shutdown: keeping Backend.AI session %s for the retry to reattach", session_id
            )
            raise SessionFailedError(
                f"Worker shut down while waiting; session {session_id} kept for the retry"
            )
        destroyed = self.hook.destroy_session(session_id, forced=True)
        self.log.info("Task killed: destroyed Backend.AI session %s (%s)", session_id, destroyed)
        raise SessionFailedError(f"Task killed; Backend.AI session {session_id} destroyed")

    def _task_still_running(self, context: Any) -> bool:
        """True when Airflow still records this task as running (a signal, not a user action)."""
        try:
            ti = context["ti"]
            states = ti.get_task_states(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id])
            return states.get(ti.run_id, {}).get(ti.task_id) == "running"
        except Exception:  # no way to tell: keep the session, a retry reattaches or the user destroys it
            return True

    def _cancel_siblings(self, context: Context) -> None:
        """Destroy the live sessions of the other tasks of this DAG run (fail-fast)."""
        ti = context["ti"]
        for task_id in self.dag.task_ids:
            if task_id == self.task_id:
                continue
            name = session_name(ti.dag_id, ti.run_id, task_id)
            try:
                if self.hook.destroy_session(name, forced=True):
                    self.log.info("Fail-fast: destroyed session %s of task %s", name, task_id)
            except BackendAIError as exc:
                self.log.warning("Fail-fast: could not destroy session of %s: %s", task_id, exc)


def _gpu_pool(scaling_group: str | None, resources: Mapping[str, Any] | None) -> tuple[str, int] | None:
    return gpu_pool(scaling_group, resources or {})


def _human(slot: str, amount: Any) -> str:
    if is_memory_slot(slot):
        return f"{int(amount) / 2**30:g}g"
    return f"{amount:g}" if hasattr(amount, "__format__") else str(amount)
