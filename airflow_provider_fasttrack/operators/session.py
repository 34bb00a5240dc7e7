"""``BackendAISessionOperator``: one Airflow task = one Backend.AI batch session.

Flow: ``execute`` -> (skip?) -> ``execute_resumable`` (Airflow's ``ResumableJobMixin``) -> ``submit_job`` creates
the session under a deterministic name and stores its id -> ``poll_until_complete`` waits up to ``[fasttrack]
resume_grace`` seconds, then defers to ``BackendAISessionTrigger`` (or polls here in sync mode, streaming the log)
-> ``execute_complete`` / ``_finish`` reads the result, logs and ``result.json`` and succeeds, skips or fails
with Backend.AI's reason.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from functools import cached_property
from typing import Any, Literal

import httpx
from airflow.sdk import Asset, BaseOperator, Context, ResumableJobMixin, RetryAction, XComArg
from airflow.sdk.exceptions import AirflowSkipException, AirflowTaskTimeout

from airflow_provider_fasttrack.artifacts import (
    ARTIFACTS_XCOM_KEY,
    OUTPUTS,
    RESULT_FILE,
    PipelineArtifacts,
    as_artifacts,
)
from airflow_provider_fasttrack.exceptions import (
    BackendAIAuthError,
    BackendAIError,
    BackendAINotFoundError,
    ResourceRequestError,
    SecretNotFoundError,
    SessionFailedError,
)
from airflow_provider_fasttrack.hooks.backendai import BackendAIHook
from airflow_provider_fasttrack.hooks.connection import DEFAULT_CONN_ID
from airflow_provider_fasttrack.hooks.models import ACTIVE_STATUSES, SessionEvent, SessionState
from airflow_provider_fasttrack.links import SESSION_URL_XCOM_KEY, BackendAISessionLink, FastTrackRunLink
from airflow_provider_fasttrack.masking import masked_in
from airflow_provider_fasttrack.mounts import Mount
from airflow_provider_fasttrack.naming import pipeline_job_id, session_name
from airflow_provider_fasttrack.pipeline.assets import artefact_location, asset_event_extra
from airflow_provider_fasttrack.pipeline.template_context import restricted_rendering
from airflow_provider_fasttrack.pools import gpu_pool as gpu_pool_of
from airflow_provider_fasttrack.retry_policy import with_default_retry_policy
from airflow_provider_fasttrack.secret_refs import for_jinja, resolve, secret_names
from airflow_provider_fasttrack.session_log import configured_log_interval, unseen_lines
from airflow_provider_fasttrack.session_request import REQUEST_FIELDS, SessionRequest, pop_request_fields
from airflow_provider_fasttrack.settings import (
    DEFAULT_RESUME_GRACE_SECONDS,
    RESUME_GRACE_OPTION,
    configured_seconds,
)
from airflow_provider_fasttrack.slots import (
    exceeding,
    format_slots,
    is_memory_slot,
    parse_slots,
    scaling_group_capacities,
    session_slots,
)
from airflow_provider_fasttrack.triggers.event_stream import WAKE_EVENTS
from airflow_provider_fasttrack.triggers.session import BackendAISessionTrigger
from airflow_provider_fasttrack.usage import USAGE_XCOM_KEY, format_usage

__all__ = [
    "SKIP_TASKS_PARAM",
    "BackendAISessionOperator",
    "SessionRequest",
    "env_for_jinja",
    "secret_values",
    "with_secrets",
]

LOG_TAIL_LINES = 20
#: how often a deferrable task waiting in the worker before deferring looks for a kill request
BEFORE_DEFERRAL_KILL_CHECK_SECONDS = 0.5
#: the DAG param that lists tasks to skip in one run (the pipeline factory declares it)
SKIP_TASKS_PARAM = "skip_tasks"


def _forwarding_request_fields(init: Callable[..., None]) -> Callable[..., None]:
    """Show :data:`REQUEST_FIELDS` in ``__init__``'s signature, which forwards them through ``**kwargs``.

    Airflow reads an operator's parameters from that signature: ``default_args`` fill them, and ``partial()``
    and ``expand()`` accept them (``.expand(command=[...])``). The fields themselves are listed only in
    :class:`SessionRequest`.
    """
    signature = inspect.signature(init)
    params = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    forwarded = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None) for name in REQUEST_FIELDS
    ]
    var_keyword = inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)
    init.__signature__ = signature.replace(parameters=[*params, *forwarded, var_keyword])  # type: ignore[attr-defined]
    return init


class BackendAISessionOperator(ResumableJobMixin, BaseOperator):
    """Run a :class:`SessionRequest` as a Backend.AI batch session and wait for it.

    Give the request either as ``request=SessionRequest(...)`` or as its fields (``image=``, ``command=``,
    ``resources=`` (per-kernel slots, not Airflow's executor ``resources``), ``mounts=``, ``env=``, ...), which
    are forwarded to :class:`SessionRequest`. The request is templated: its ``template_fields`` are rendered.

    :param artifacts: the task's place in a pipeline vfolder (``/pipeline/outputs``, ``/pipeline/input1..N``).
    :param skip: start no session and end as skipped (FastTrack's ``skip: true``).
    :param skip_on_exit_code: exit code(s) that end the task as skipped instead of failed.
    :param fail_fast: when this task fails for good (no retry left), destroy the sessions of the other tasks
        of the same DAG run, every map index; when a task of the run has already failed, end as skipped
        without a session.
    :param continue_on_failure: this task's failure is not the run's: its final failure destroys no other
        session (fail-fast leaves it out) and other tasks' fail-fast does not count it. The pipeline factory
        also lets its downstream tasks run (see ``ContinueOnFailureGate``).
    :param gpu_pool: run in the scaling group's GPU pool with ``pool_slots`` from the session's total GPU
        request (see :mod:`airflow_provider_fasttrack.pools`), unless ``pool`` is given.
    :param deferrable: wait in the triggerer (default True, whatever ``[operators] default_deferrable`` says:
        a GPU job should not hold a worker slot for hours), after waiting up to ``[fasttrack] resume_grace``
        seconds in the worker: a session that ends by then finishes the task there, without a deferral.
    :param durable: store the session id before waiting, so that a retry reattaches (``ResumableJobMixin``).
    :param poll_interval: seconds between state checks in the worker (sync mode), and in the triggerer with
        ``[fasttrack] session_events = per_task`` (events wake it up sooner); the shared event stream reads
        the state on events and every ``[fasttrack] recheck_interval`` instead.
    :param log_interval: seconds between log fetches while deferred (None: only at the end); by default the
        deployment's ``[fasttrack] log_interval`` (10 s unless set).
    :param pipeline_templates: render as a pipeline task: under the deployment's ``[fasttrack]
        pipeline_connections`` / ``pipeline_variables`` restriction (see
        :mod:`airflow_provider_fasttrack.pipeline.template_context`). The pipeline factory sets it.
    :param retry_policy: by default :class:`~airflow_provider_fasttrack.retry_policy.BackendAIRetryPolicy`: an
        error a retry cannot help fails the task on its first try.
    """

    template_fields: Sequence[str] = ("request",)
    template_fields_renderers = {"request": "json"}
    ui_color = "#b6e3ff"
    operator_extra_links = (BackendAISessionLink(), FastTrackRunLink())
    external_id_key = "backendai_session_id"

    @_forwarding_request_fields
    def __init__(
        self,
        *,
        request: SessionRequest | None = None,
        backendai_conn_id: str = DEFAULT_CONN_ID,
        artifacts: PipelineArtifacts | Mapping[str, Any] | None = None,
        skip: bool = False,
        skip_on_exit_code: int | Collection[int] | None = None,
        fail_fast: bool = False,
        continue_on_failure: bool = False,
        gpu_pool: bool = False,
        deferrable: bool = True,
        poll_interval: float = 5.0,
        log_interval: float | None | Literal["config"] = "config",
        pipeline_templates: bool = False,
        **kwargs: Any,
    ) -> None:
        # the request's fields (``resources`` included) never reach BaseOperator
        given = {name: value for name, value in pop_request_fields(kwargs).items() if value is not None}
        if request is not None and given:
            raise TypeError(
                f"give request= or the request's fields, not both (got {', '.join(sorted(given))})"
            )
        self.request = request if request is not None else SessionRequest(**given)
        if gpu_pool and "pool" not in kwargs:
            pool = gpu_pool_of(self.request.scaling_group, self.request.resources, self.request.cluster_size)
            if pool:
                kwargs["pool"], kwargs["pool_slots"] = pool
        super().__init__(**with_default_retry_policy(kwargs))
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
        self.continue_on_failure = continue_on_failure
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.log_interval = log_interval
        self.pipeline_templates = pipeline_templates
        self._kill_requested = False
        #: the ended session's state and the log lines already written, once this worker has seen the end
        self._ended: tuple[SessionState, int] | None = None
        #: the session's web UI page, once this task knows its session (read by the extra link)
        self.session_url: str | None = None
        #: the session's id, once this task knows it (read by the lineage)
        self.session_id: str | None = None
        #: per job id: the job whose output each upstream task's /pipeline/input folder holds
        self._upstream_jobs_of: dict[str, dict[str, str]] = {}

    @cached_property
    def hook(self) -> BackendAIHook:
        return BackendAIHook(self.backendai_conn_id)

    # -- identity of this task's session ------------------------------------------------------

    def _set_xcomargs_dependencies(self) -> None:
        """An ``XComArg`` in a request field (``command=other.output``) makes ``other`` upstream, as it did
        in a template field of the operator itself (Airflow looks only one level deep)."""
        super()._set_xcomargs_dependencies()
        XComArg.apply_upstream_relationship(
            self, [getattr(self.request, f) for f in self.request.template_fields]
        )

    def _session_name(self, context: Context) -> str:
        ti = context["ti"]
        return session_name(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))

    def _job_id(self, context: Context) -> str:
        ti = context["ti"]
        return pipeline_job_id(ti.dag_id, ti.run_id)

    # -- execute --------------------------------------------------------------------------------

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render nothing for a skipped task: its templates may read connections that exist only where it runs.

        ``${{ secrets.NAME }}`` references come out of rendering as written; :meth:`submit_job` resolves them.
        """
        if self._skip_reason(context) is None:
            self.request.env = env_for_jinja(self.request.env)
            if self.pipeline_templates:
                context, jinja_env = restricted_rendering(
                    f"Task {self.task_id}", context, jinja_env, self.dag
                )
            super().render_template_fields(context, jinja_env)

    def _skip_reason(self, context: Context) -> str | None:
        return skip_reason(self.task_id, self.skip, context)

    def execute(self, context: Context) -> Any:
        if why := self._skip_reason(context):
            raise AirflowSkipException(f"Task {self.task_id} skipped ({why}); no session started")
        if self.fail_fast and self._failed_tasks_in_run(context):
            raise AirflowSkipException(
                f"Task {self.task_id} not started: a task of this run failed and fail_fast is set"
            )
        return self.execute_resumable(context)

    def _failed_tasks_in_run(self, context: Context) -> int:
        """How many tasks of this DAG run have failed, as Airflow records them (through the Task SDK), not
        counting ``continue_on_failure`` tasks."""
        ti = context["ti"]
        failed = int(ti.get_ti_count(dag_id=ti.dag_id, run_ids=[ti.run_id], states=["failed"]))
        tolerated = [t.task_id for t in self.dag.tasks if getattr(t, "continue_on_failure", False)]
        if failed and tolerated:
            failed -= int(
                ti.get_ti_count(dag_id=ti.dag_id, task_ids=tolerated, run_ids=[ti.run_id], states=["failed"])
            )
        return failed

    def submit_job(self, context: Context) -> str:
        name = self._session_name(context)
        self._check_capacity()
        ti = context["ti"]
        request = self.request if self.request.tag else replace(self.request, tag=ti.dag_id)
        extra_env = {
            "BACKENDAI_PIPELINE_JOB_ID": self._job_id(context),
            "BACKENDAI_PIPELINE_TASK_ID": self.task_id,
        }
        extra_mounts: list[Mount] = []
        if self.artifacts is not None:
            extra_mounts = self._artifact_mounts(context)
            extra_env.update(self.artifacts.environ())
        request = self._with_secrets(request)
        body = request.body(name, defaults=self.hook.settings, extra_mounts=extra_mounts, extra_env=extra_env)
        created = self.hook.create_session(body)
        session_id = str(created["sessionId"])
        self.log.info(
            "Backend.AI session %s (%s) %s, status %s",
            name,
            session_id,
            "created" if created.get("created", True) else "already exists; reattached",
            created.get("status"),
        )
        ti.xcom_push(key="session_id", value=session_id)
        ti.xcom_push(key="session_name", value=name)
        if self.artifacts is not None:
            location = self.artifacts.location(self.backendai_conn_id, self._job_id(context), self.task_id)
            ti.xcom_push(key=ARTIFACTS_XCOM_KEY, value=location)
        if url := self._know_session(session_id):
            ti.xcom_push(key=SESSION_URL_XCOM_KEY, value=url)
        return session_id

    def _secrets(self) -> dict[str, str]:
        """The values of the request's ``${{ secrets.NAME }}`` references, by name (see :func:`secret_values`)."""
        return secret_values(self.request.env, self.task_id)

    def _mask_secrets(self) -> None:
        """Register the secrets' values with the masker in this process, before the session's output is logged."""
        with suppress(SecretNotFoundError):
            self._secrets()

    def _with_secrets(self, request: SessionRequest) -> SessionRequest:
        """``request`` with its secret references replaced by their values: only for the ``POST /session``
        body, never stored, logged or pushed."""
        return replace(request, env=with_secrets(request.env, self._secrets()))

    def _know_session(self, session_id: str) -> str | None:
        """Record the session's id (for the lineage) and web UI page (for the extra link); returns the page."""
        self.session_id = session_id
        self.session_url = self.hook.webui_session_url(session_id)
        return self.session_url

    def _check_capacity(self) -> None:
        """Fail at once when the session's total request (all kernels) can never fit the group or keypair."""
        request = self.request
        if not request.resources:
            return
        total = session_slots(request.resources, request.cluster_size)
        try:
            presets = self.hook.check_presets(project=request.project, scaling_group=request.scaling_group)
        except BackendAIAuthError as error:
            if error.status_code != 403:
                raise
            # a keypair may create sessions without reading presets; the session's creation decides then
            self.log.warning("Task %s: capacity check skipped, presets not readable: %s", self.task_id, error)
            return
        # the keypair's policy limits only the slots it names; a scaling group has 0 of any slot it lacks
        policy = parse_slots(
            {k: v for k, v in (presets.get("keypair_limits") or {}).items() if v not in (None, "Infinity")}
        )
        checks = [("the keypair's resource policy", policy, {k: v for k, v in total.items() if k in policy})]
        groups = scaling_group_capacities(presets)
        group_name = request.scaling_group or self.hook.settings.scaling_group or next(iter(groups), None)
        if group_name in groups:
            checks.append((f"scaling group {group_name!r}", groups[group_name], total))
        for where, limit, wanted in checks:
            over = exceeding(wanted, limit)
            if over:
                slot, (amount, have) = min(over.items())
                kernels = request.cluster_size
                asked = f"{slot}={request.resources[slot]}"
                if kernels > 1:
                    asked += f" per kernel x {kernels} kernels = {_human(slot, amount)}"
                raise ResourceRequestError(
                    f"Task {self.task_id} requests {asked} but {where} can never provide more than "
                    f"{_human(slot, have)} (request: {format_slots(request.resources)})"
                )

    def _artifact_mounts(self, context: Context) -> list[Mount]:
        assert self.artifacts is not None
        job_id = self._job_id(context)
        self.hook.ensure_vfolder(self.artifacts.vfolder)
        return self.artifacts.mounts(job_id, self.task_id, self._upstream_jobs(job_id))

    def _upstream_jobs(self, job_id: str) -> dict[str, str]:
        """Each upstream task -> the job whose output this task reads; looked up once per job in a process."""
        assert self.artifacts is not None
        if job_id not in self._upstream_jobs_of:
            self._upstream_jobs_of[job_id] = {
                upstream: self._upstream_job(job_id, upstream) for upstream in self.artifacts.upstream
            }
        return self._upstream_jobs_of[job_id]

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
        self._mask_secrets()  # a reattaching retry logs the output of a session it did not start
        self._know_session(session_id)
        try:
            if self.deferrable:
                state = self._wait_before_deferring(context, session_id)
                if state is not None:
                    self._ended = (state, 0)
                    return
                self._defer(context, session_id, name)
            self._ended = self._wait_here(context, session_id, name)
        except AirflowTaskTimeout:  # execution_timeout: the session must not outlive the task
            self.log.info("execution_timeout exceeded: destroying Backend.AI session %s", session_id)
            self.hook.destroy_session(session_id, forced=True)
            raise

    def _wait_before_deferring(self, context: Context, session_id: str) -> SessionState | None:
        """The session's state if it ends within ``[fasttrack] resume_grace`` seconds; None when it still runs.

        A trigger event within that time of the deferral has to wait for the rest of it (see
        :data:`~airflow_provider_fasttrack.settings.DEFAULT_RESUME_GRACE_SECONDS`); a short session ends in the
        worker instead, without a deferral. The worker listens to the session's events meanwhile and reads its
        state once the stream is open and after each event that may mean its end.
        """
        grace = configured_seconds(RESUME_GRACE_OPTION, DEFAULT_RESUME_GRACE_SECONDS)
        if grace <= 0:
            return None
        state = asyncio.run(self._session_end_within(session_id, self._session_name(context), grace))
        if state is None and self._kill_requested:
            self._stop_waiting(context, session_id)
        return state

    async def _session_end_within(self, session_id: str, name: str, seconds: float) -> SessionState | None:
        """The session's state once it is terminal, if that is within ``seconds`` (and no kill request came)."""
        hook = self.hook
        ends = time.monotonic() + seconds
        wake = asyncio.Event()

        async def listen(events: AsyncIterator[SessionEvent]) -> None:
            async for event in events:
                if event.session_id == session_id and event.name in WAKE_EVENTS:
                    wake.set()

        try:
            async with hook.aopen_session_events(name, session_id=session_id) as events:
                listener = asyncio.create_task(listen(events))
                try:
                    state = await hook.aget_session_state(session_id)  # read after the stream opened
                    while not state.is_terminal:
                        left = ends - time.monotonic()
                        if left <= 0 or self._kill_requested:
                            return None
                        with suppress(TimeoutError):
                            await asyncio.wait_for(
                                wake.wait(), timeout=min(left, BEFORE_DEFERRAL_KILL_CHECK_SECONDS)
                            )
                        if wake.is_set():
                            wake.clear()
                            state = await hook.aget_session_state(session_id)
                    return state
                finally:
                    listener.cancel()
                    with suppress(asyncio.CancelledError, Exception):
                        await listener
        except (
            BackendAIError,
            httpx.HTTPError,
        ) as exc:  # the trigger waits instead, and reads the state itself
            self.log.info("Waiting for the session's end here stopped (%s); deferring", exc)
            return None
        finally:
            await hook.aclose()

    def _defer(self, context: Context, session_id: str, name: str) -> None:
        log_interval = configured_log_interval() if self.log_interval == "config" else self.log_interval
        self.defer(
            trigger=BackendAISessionTrigger(
                session_id=session_id,
                session_name=name,
                backendai_conn_id=self.backendai_conn_id,
                poll_interval=self.poll_interval,
                deadline=timeout_deadline(self.execution_timeout, context),
                log_interval=log_interval,
                masks=masked_in(self.request.serialize(), self._secrets().values()),
                deferred_at=time.time(),
            ),
            method_name="execute_complete",
        )

    def _wait_here(self, context: Context, session_id: str, name: str) -> tuple[SessionState, int]:
        """Sync mode: read the state and write the new log lines every ``poll_interval`` until the end; the
        ended state and the log lines written."""
        offset = 0
        while True:
            state = self.hook.get_session_state(session_id)
            offset = self._log_new_output(session_id, name, offset)
            if state.is_terminal:
                return state, offset
            if self._kill_requested:
                self._stop_waiting(context, session_id)
            time.sleep(self.poll_interval)

    def get_job_result(self, external_id: Any, context: Context) -> Any:
        """The task's result, once: after this worker waited (``poll_until_complete``), or on a retry whose
        session had already ended."""
        self._know_session(str(external_id))
        ended, self._ended = self._ended, None
        if ended is None:
            return self._finish(context, self.hook.get_session_state(str(external_id)), log_offset=None)
        return self._finish(context, *ended)

    # -- completion -----------------------------------------------------------------------------

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        session_id = str(event["session_id"])
        self._know_session(session_id)
        status = event.get("status")
        if status == "timeout":
            self.hook.destroy_session(session_id, forced=True)
            self._report_usage(context, session_id)
            tail = _log_tail(self._final_log(session_id))
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
        self._mask_secrets()
        name = self._session_name(context)
        log = self._final_log(state.session_id) if log_offset is not None or not state.is_successful else None
        if log_offset is not None and log is not None:
            self._write_output(log, name, log_offset, final=True)
        ti.xcom_push(key="exit_code", value=state.exit_code)
        ti.xcom_push(key="result", value=state.result)
        self._report_usage(context, state.session_id)
        if state.is_successful:
            self.log.info("Backend.AI %s", state.describe())
            result = self._task_result(context, state)
            self._record_asset_events(context, state, result)
            return result
        if state.exit_code is not None and state.exit_code in self.skip_on_exit_code:
            raise AirflowSkipException(
                f"Session exited with {state.exit_code}, declared as skip_on_exit_code"
            )
        error = SessionFailedError(f"Backend.AI {state.describe()}{_log_tail(log)}")
        if self.fail_fast and self.continue_on_failure:
            self.log.info("continue_on_failure: fail-fast keeps the other tasks' sessions")
        elif self.fail_fast:
            if self._will_retry(context, error):
                self.log.info("Fail-fast: Airflow retries this task, so the other tasks' sessions are kept")
            else:
                self._cancel_siblings(context)
        raise error

    def _report_usage(self, context: Context, session_id: str) -> None:
        """What the ended session used: one line in the task log and the ``backendai_usage`` XCom (a
        :class:`~airflow_provider_fasttrack.usage.SessionUsage` as JSON), for this map index.

        One request, not retried; when the usage cannot be read the task says so in a warning and ends as its
        session did.
        """
        ti = context["ti"]
        try:
            usage = self.hook.get_session_usage(
                session_id, task_id=ti.task_id, map_index=getattr(ti, "map_index", -1)
            )
        except Exception as exc:  # the usage is a report: nothing about it may change the task's outcome
            self.log.warning(
                "The usage of Backend.AI session %s could not be read (%s: %s); the task's result does not "
                "depend on it",
                session_id,
                type(exc).__name__,
                exc,
            )
            return
        self.log.info("%s", format_usage(usage))
        ti.xcom_push(key=USAGE_XCOM_KEY, value=usage.model_dump(mode="json"))

    def _will_retry(self, context: Context, error: BaseException) -> bool:
        """Whether Airflow retries this task after ``error``, decided as the Task SDK's task runner does.

        The runner retries when the API server's task context says ``should_retry`` (a try left:
        ``try_number <= max_tries``), unless the task's ``retry_policy`` answers FAIL for this error.
        """
        ti = context["ti"]
        server_context = getattr(ti, "_ti_context_from_server", None)
        if server_context is not None:
            should_retry = bool(server_context.should_retry)
        else:
            should_retry = bool(ti.max_tries) and ti.try_number <= ti.max_tries
        if should_retry and self.retry_policy is not None:
            try:
                decision = self.retry_policy.evaluate(
                    exception=error, try_number=ti.try_number, max_tries=ti.max_tries, context=context
                )
            except Exception:  # the runner falls back to the default decision too
                return should_retry
            return decision.action is not RetryAction.FAIL
        return should_retry

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

    def _record_asset_events(self, context: Context, state: SessionState, result: Any) -> None:
        """Say in the event of each asset outlet (recorded by Airflow when the task succeeds) where this run's
        artefact is, the job and session, and the result (see :mod:`~airflow_provider_fasttrack.pipeline.assets`)."""
        outlets = [outlet for outlet in self.outlets if isinstance(outlet, Asset)]
        if not outlets:
            return
        job_id = self._job_id(context)
        outputs = None
        mounts = []
        for text in self.request.mounts:
            with suppress(ValueError):  # a mount that does not parse failed the session request already
                mounts.append(Mount.parse(text))
        if self.artifacts is not None:
            outputs = (self.artifacts.vfolder, self.artifacts.output_dir(job_id, self.task_id))
            mounts.extend(self.artifacts.own_mounts(job_id, self.task_id))
        for asset in outlets:
            try:
                location = artefact_location(asset.group, result, mounts, outputs)
            except ValueError as exc:
                raise SessionFailedError(f"Session {state.session_id}: {exc}; no {asset.name} event") from exc
            extra = asset_event_extra(
                kind=asset.group, result=result, job_id=job_id, session_id=state.session_id, location=location
            )
            context["outlet_events"][asset].extra = extra
            self.log.info("Asset %s: %s", asset.name, {k: v for k, v in extra.items() if k != "metrics"})

    # -- lineage -------------------------------------------------------------------------------

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The task's OpenLineage facets (see :mod:`airflow_provider_fasttrack.lineage`); the OpenLineage
        provider uses them for a failed task too. A task that started no session reports nothing."""
        from airflow_provider_fasttrack import lineage

        if self.session_id is None:
            return lineage.no_lineage()
        request = self.request
        job_id = pipeline_job_id(task_instance.dag_id, task_instance.run_id)
        inputs = [Mount.parse(text).key for text in request.mounts]
        outputs: list[str] = []
        if self.artifacts is not None:
            for mount in self.artifacts.mounts(job_id, self.task_id, self._upstream_jobs(job_id)):
                if mount.read_only:
                    inputs.append(mount.key)
                elif mount.destination == OUTPUTS:
                    outputs.append(mount.key)
        return lineage.operator_lineage(
            namespace=lineage.namespace_of(self.hook.settings.endpoint),
            inputs=inputs,
            outputs=outputs,
            compute=lineage.compute_of(request, self.hook.settings.scaling_group),
            inlets=self.inlets,
            outlets=self.outlets,
            pipeline_task=(self.dag.dag_display_name, self.task_id) if self.pipeline_templates else None,
            run_facets={
                "backendai_session": lineage.BackendAISessionRunFacet(
                    sessionId=self.session_id,
                    sessionName=session_name(
                        task_instance.dag_id,
                        task_instance.run_id,
                        self.task_id,
                        getattr(task_instance, "map_index", -1),
                    ),
                )
            },
            pipeline_job_id=job_id,
        )

    # -- logs ----------------------------------------------------------------------------------

    def _log_new_output(self, session_id: str, name: str, shown: int) -> int:
        """While the session runs: write its new log lines into the task log; returns the new count.

        One attempt: the next poll asks again, and the session may have ended meanwhile.
        """
        try:
            text = self.hook.get_logs(session_id, retry=False)
        except BackendAIError as exc:
            self.log.warning("Could not fetch the session log: %s", exc)
            return shown
        return self._write_output(text, name, shown)

    def _write_output(self, text: str, name: str, shown: int, *, final: bool = False) -> int:
        """Write the log lines after the first ``shown`` into the task log; returns the new count."""
        lines, shown = unseen_lines(text, shown, final=final)
        for line in lines:
            self.log.info("[%s] %s", name, line)
        return shown

    def _final_log(self, session_id: str) -> str | None:
        """The session log once the session has ended, asked once; None when the manager has none to give.

        A manager may answer an error here (a 5xx, as the session's kernels are gone): that is reported in one
        line and changes nothing about the task's outcome.
        """
        try:
            return self.hook.get_logs(session_id, retry=False)
        except BackendAIError as exc:
            self.log.warning(
                "The log of Backend.AI session %s could not be read after the session ended (%s); the task's "
                "result does not depend on it",
                session_id,
                exc,
            )
            return None

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
        """Destroy the live sessions of the other tasks of this DAG run, every map index (fail-fast)."""
        ti = context["ti"]
        for task_id in self.dag.task_ids:
            if task_id == self.task_id:
                continue
            for map_index in self._map_indexes(context, task_id):
                name = session_name(ti.dag_id, ti.run_id, task_id, map_index)
                try:
                    if self.hook.destroy_session(name, forced=True):
                        self.log.info("Fail-fast: destroyed session %s of task %s", name, task_id)
                except BackendAIError as exc:
                    self.log.warning("Fail-fast: could not destroy session of %s: %s", task_id, exc)

    def _map_indexes(self, context: Context, task_id: str) -> range:
        """The map indexes of ``task_id`` in this run: ``-1`` when unmapped, else as many as Airflow made."""
        task = self.dag.get_task(task_id)
        if not task.is_mapped and task.get_closest_mapped_task_group() is None:
            return range(-1, 0)
        ti = context["ti"]
        return range(int(ti.get_ti_count(dag_id=ti.dag_id, task_ids=[task_id], run_ids=[ti.run_id])))


def _log_tail(log: str | None) -> str:
    """The last lines of a session log, for an error message."""
    lines = (log or "").rstrip("\n").splitlines()[-LOG_TAIL_LINES:]
    return ("\nLast log lines:\n" + "\n".join(lines)) if lines else ""


def _has_secret(value: Any) -> bool:
    return isinstance(value, str) and bool(secret_names(value))


def secret_values(env: Mapping[str, Any], task_id: str) -> dict[str, str]:
    """The Airflow Variables that ``env``'s ``${{ secrets.NAME }}`` references read, by name.

    Each value is registered with Airflow's secrets masker before anything can log it, so that a log line
    that shows it (the session's own output included) shows ``***``. Called again in every process that
    logs the session's output (after a deferral the task resumes in a new one).
    """
    names = sorted({name for value in env.values() if _has_secret(value) for name in secret_names(value)})
    if not names:
        return {}
    from airflow.sdk import Variable
    from airflow.sdk.log import mask_secret

    values: dict[str, str] = {}
    for name in names:
        value = Variable.get(name, default=None)
        if value is None:
            users = [k for k, text in env.items() if _has_secret(text) and name in secret_names(text)]
            raise SecretNotFoundError(
                f"Task {task_id}: environment variable {', '.join(users)} reads "
                f"${{{{ secrets.{name} }}}}, but there is no Airflow Variable {name!r}; create it "
                f"(airflow variables set {name} ...) or serve it from a secrets backend"
            )
        values[name] = str(value)
        mask_secret(values[name])  # unnamed: masked whatever the name says (a name must look secret)
    return values


def with_secrets(env: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """``env`` with its secret references replaced by ``values``."""
    return {k: resolve(v, values.__getitem__) if _has_secret(v) else v for k, v in env.items()}


def env_for_jinja(env: Mapping[str, Any]) -> dict[str, Any]:
    """``env`` with its secret references wrapped so that rendering leaves them as written."""
    return {key: for_jinja(v) if _has_secret(v) else v for key, v in env.items()}


def _human(slot: str, amount: Any) -> str:
    if is_memory_slot(slot):
        return f"{int(amount) / 2**30:g}g"
    return f"{amount:g}" if hasattr(amount, "__format__") else str(amount)


def timeout_deadline(execution_timeout: dt.timedelta | None, context: Context) -> float | None:
    """A task's ``execution_timeout`` as an absolute time (epoch seconds), so that it also holds while deferred."""
    if execution_timeout is None:
        return None
    start = context["ti"].start_date
    started = start.timestamp() if start else time.time()
    return started + execution_timeout.total_seconds()


def skip_reason(task_id: str, skip: bool, context: Context) -> str | None:
    """Why a pipeline task does not run in this DAG run (FastTrack's ``skip``, or the run's ``skip_tasks``)."""
    skip_now = set(context["params"].get(SKIP_TASKS_PARAM) or ()) if "params" in context else set()
    if skip:
        return "skip: true"
    if task_id in skip_now:
        return f"listed in the run's '{SKIP_TASKS_PARAM}' param"
    return None
