"""``BackendAIModelServiceOperator``: one Airflow task = one Backend.AI model service, up and ready.

Flow: ``execute`` -> (skip?) -> check the model folder (and its model definition for ``custom``) -> create the
service, or reuse the live one of the same name -> wait until ready (deferred to ``BackendAIServiceTrigger``, or
polling here) -> push ``service_id`` and ``service_endpoint`` to XCom. An ``ephemeral`` service gets a name of its
own per DAG run and is deleted when the run ends by :class:`BackendAIDeleteServiceOperator` (a teardown task); the
pipeline factory adds it. Tokens are never pushed: a downstream task asks for its own
(:func:`service_token_for`, the ``backendai_service_token`` template function of pipeline DAGs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator, Context, get_current_context
from airflow.sdk.exceptions import AirflowSkipException, AirflowTaskTimeout

from airflow_provider_fasttrack.exceptions import (
    BackendAIError,
    BackendAINotFoundError,
    ServiceFailedError,
    ServiceRequestError,
)
from airflow_provider_fasttrack.hooks.backendai import MODEL_USAGE_MODE, SERVICE_TOKEN_SECONDS, BackendAIHook
from airflow_provider_fasttrack.hooks.connection import DEFAULT_CONN_ID
from airflow_provider_fasttrack.masking import masked_in
from airflow_provider_fasttrack.model_definition import DEFINITION_FILES, parse_model_definition
from airflow_provider_fasttrack.mounts import Mount
from airflow_provider_fasttrack.naming import pipeline_job_id, run_service_name
from airflow_provider_fasttrack.operators.session import (
    env_for_jinja,
    secret_values,
    skip_reason,
    timeout_deadline,
    with_secrets,
)
from airflow_provider_fasttrack.pipeline.template_context import restricted_rendering
from airflow_provider_fasttrack.retry_policy import with_default_retry_policy
from airflow_provider_fasttrack.service_request import (
    SERVICE_REQUEST_FIELDS,
    ServiceRequest,
    vfolder_subpath_problem,
)
from airflow_provider_fasttrack.triggers.service import (
    BackendAIServiceTrigger,
    service_failure,
    service_is_ready,
)

__all__ = [
    "BackendAIDeleteServiceOperator",
    "BackendAIModelServiceOperator",
    "ServiceRequest",
    "service_token_for",
]

SERVICE_ID_KEY = "service_id"
SERVICE_ENDPOINT_KEY = "service_endpoint"
SERVICE_CREATED_KEY = "service_created"


class BackendAIModelServiceOperator(BaseOperator):
    """Create (or reuse) a :class:`ServiceRequest` as a Backend.AI model service and wait until it is ready.

    Give the request as ``request=ServiceRequest(...)`` or as its fields (``name=``, ``model=``, ``image=``, ...).

    :param ephemeral: the service belongs to this DAG run: it is named per run (``<name>-<digest>``) and a
        :class:`BackendAIDeleteServiceOperator` teardown deletes it when the run ends. Otherwise the service
        keeps its name, stays after the run and the next run reuses it.
    :param skip: create nothing and end as skipped (FastTrack's ``skip: true``).
    :param deferrable: wait in the triggerer (default True).
    :param poll_interval: seconds between readiness checks.
    :param max_failures: replicas that may fail (``GET /services/{id}/errors``) before the task gives up.
    :param pipeline_templates: render as a pipeline task, under the deployment's ``[fasttrack]
        pipeline_connections`` / ``pipeline_variables`` restriction (the pipeline factory sets it).
    :param retry_policy: by default :class:`~airflow_provider_fasttrack.retry_policy.BackendAIRetryPolicy`: an
        error a retry cannot help fails the task on its first try.
    """

    template_fields: Sequence[str] = ("request",)
    template_fields_renderers = {"request": "json"}
    ui_color = "#c9f2d8"

    def __init__(
        self,
        *,
        request: ServiceRequest | None = None,
        backendai_conn_id: str = DEFAULT_CONN_ID,
        ephemeral: bool = False,
        skip: bool = False,
        deferrable: bool = True,
        poll_interval: float = 2.0,
        max_failures: int = 3,
        pipeline_templates: bool = False,
        **kwargs: Any,
    ) -> None:
        given = {name: kwargs.pop(name) for name in SERVICE_REQUEST_FIELDS if name in kwargs}
        if request is not None and given:
            raise TypeError(
                f"give request= or the request's fields, not both (got {', '.join(sorted(given))})"
            )
        self.request = request if request is not None else ServiceRequest(**given)
        super().__init__(**with_default_retry_policy(kwargs))
        self.backendai_conn_id = backendai_conn_id
        self.ephemeral = ephemeral
        self.skip = skip
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_failures = max_failures
        self.pipeline_templates = pipeline_templates
        self._kill_requested = False
        #: the service's id, once this task knows it (read by the lineage)
        self.service_id: str | None = None

    @cached_property
    def hook(self) -> BackendAIHook:
        return BackendAIHook(self.backendai_conn_id)

    def service_name(self, ti: Any) -> str:
        """The name of this task's service in the run of ``ti``: the request's, or one per DAG run when
        ephemeral."""
        if not self.ephemeral:
            return self.request.name
        return run_service_name(self.request.name, ti.dag_id, ti.run_id)

    # -- execute --------------------------------------------------------------------------------

    def _skip_reason(self, context: Context) -> str | None:
        return skip_reason(self.task_id, self.skip, context)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        if self._skip_reason(context) is None:
            # ${{ secrets.NAME }} references come out of rendering as written; execute resolves them
            self.request.env = env_for_jinja(self.request.env)
            if self.pipeline_templates:
                context, jinja_env = restricted_rendering(
                    f"Task {self.task_id}", context, jinja_env, self.dag
                )
            super().render_template_fields(context, jinja_env)

    def execute(self, context: Context) -> Any:
        if why := self._skip_reason(context):
            raise AirflowSkipException(f"Task {self.task_id} skipped ({why}); no service created")
        ti = context["ti"]
        name = self.service_name(ti)
        secrets = secret_values(self.request.env, self.task_id)
        mount_ids = self._check_folders()
        request = replace(self.request, env=with_secrets(self.request.env, secrets))
        body = request.body(name, defaults=self.hook.settings, extra_mount_ids=mount_ids)
        if not body.get("tag"):
            body["tag"] = ti.dag_id
        answer = self.hook.create_service(body)
        service_id = self.service_id = str(answer["endpoint_id"])
        created = bool(answer.get("created", True))
        self.log.info(
            "Backend.AI model service %s (%s) %s",
            name,
            service_id,
            "created" if created else "already exists; reused as it is",
        )
        ti.xcom_push(key=SERVICE_ID_KEY, value=service_id)
        ti.xcom_push(key="service_name", value=name)
        ti.xcom_push(key=SERVICE_CREATED_KEY, value=created)
        owned = created or self.ephemeral
        if self.deferrable:
            self.defer(
                trigger=BackendAIServiceTrigger(
                    service_id=service_id,
                    backendai_conn_id=self.backendai_conn_id,
                    poll_interval=self.poll_interval,
                    deadline=timeout_deadline(self.execution_timeout, context),
                    max_failures=self.max_failures,
                    delete_on_kill=owned,
                    masks=masked_in(body, secrets.values()),
                ),
                method_name="execute_complete",
            )
        return self._wait_here(context, service_id, owned)

    def _check_folders(self) -> dict[str, str]:
        """Fail before anything starts when the model folder (or an extra mount) is missing, when the model
        folder is not a model-type vfolder (or an extra mount is one), or when a ``custom`` service's model
        definition is missing or invalid. Returns vfolder name -> id."""
        request = self.request
        subpath = (request.vfolder_subpath or "").strip()
        if problem := vfolder_subpath_problem(subpath):  # as rendered
            raise ServiceRequestError(f"Task {self.task_id}: vfolder_subpath {problem}")
        folders = self.hook.list_vfolders()
        ids = {str(f.get("name")): str(f.get("id")) for f in folders}
        modes = {
            key: str(f.get("usage_mode") or "general")
            for f in folders
            for key in (f.get("name"), f.get("id"))
        }
        wanted = [("model folder", request.model)] + [
            ("mount", Mount.parse(text).name) for text in request.extra_mounts
        ]
        for what, vfolder in wanted:
            if vfolder not in modes:
                raise ServiceRequestError(
                    f"Task {self.task_id}: the {what} {vfolder!r} does not exist "
                    f"(vfolders: {', '.join(sorted(ids)) or 'none'})"
                )
            is_model = modes[vfolder] == MODEL_USAGE_MODE
            if what == "model folder" and not is_model:
                raise ServiceRequestError(
                    f"Task {self.task_id}: the model folder {vfolder!r} is a {modes[vfolder]!r} vfolder; Backend.AI "
                    f"serves only model-type vfolders (usage_mode: {MODEL_USAGE_MODE}): create one "
                    f"(fasttrack stage --create-model NAME) and put the model there"
                )
            if what == "mount" and is_model:
                raise ServiceRequestError(
                    f"Task {self.task_id}: the mount {vfolder!r} is a model-type vfolder; Backend.AI does not "
                    "mount a model-type vfolder as a service's extra mount"
                )
        if request.runtime_variant == "custom":
            self._check_model_definition()
        return ids

    def _check_model_definition(self) -> None:
        request = self.request
        candidates = [request.model_definition_path] if request.model_definition_path else DEFINITION_FILES
        prefix = (request.vfolder_subpath or "").strip("/")
        for path in candidates:
            inside = "/".join(part for part in (prefix, str(path).lstrip("/")) if part)
            try:
                content = self.hook.download_file(request.model, inside)
            except BackendAINotFoundError:
                continue
            text = content.decode("utf-8", errors="replace")
            parse_model_definition(text, f"{request.model}:/{inside}")
            return
        raise ServiceRequestError(
            f"Task {self.task_id}: the model folder {request.model!r} has no {' or '.join(candidates)}; a "
            "runtime_variant 'custom' service needs a model definition (or choose another runtime_variant)"
        )

    def _wait_here(self, context: Context, service_id: str, owned: bool) -> Any:
        try:
            while True:
                if self._kill_requested:
                    self._give_up(service_id, owned, "Task killed")
                info = self.hook.get_service(service_id)
                if service_is_ready(info):
                    return self._ready(context, info)
                why = service_failure(self.hook.service_errors(service_id), self.max_failures)
                if why is not None:
                    self._give_up(service_id, owned, why)
                time.sleep(self.poll_interval)
        except AirflowTaskTimeout:
            if owned:
                self.hook.delete_service(service_id)
            raise

    # -- completion -----------------------------------------------------------------------------

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        service_id = self.service_id = str(event["service_id"])
        created = context["ti"].xcom_pull(task_ids=self.task_id, key=SERVICE_CREATED_KEY)
        owned = bool(created) or self.ephemeral
        status = event.get("status")
        if status == "ready":
            return self._ready(context, self.hook.get_service(service_id))
        if status == "timeout":
            if owned:
                self.hook.delete_service(service_id)
            raise AirflowTaskTimeout(
                f"execution_timeout ({self.execution_timeout}) exceeded while waiting for model service "
                f"{service_id}" + ("; the service was deleted" if owned else "")
            )
        self._give_up(service_id, owned, str(event.get("message") or status))

    def _ready(self, context: Context, info: dict[str, Any]) -> dict[str, Any]:
        ti = context["ti"]
        endpoint = str(info["service_endpoint"])
        ti.xcom_push(key=SERVICE_ENDPOINT_KEY, value=endpoint)
        routes = len(info.get("active_routes") or [])
        self.log.info(
            "Model service %s is ready at %s (%d healthy replicas)", info.get("name"), endpoint, routes
        )
        return {
            "service_id": str(info["endpoint_id"]),
            "service_name": info.get("name"),
            "service_endpoint": endpoint,
        }

    def _give_up(self, service_id: str, owned: bool, why: str) -> None:
        deleted = False
        if owned:
            try:
                deleted = self.hook.delete_service(service_id)
            except BackendAIError as exc:
                self.log.warning("Could not delete model service %s: %s", service_id, exc)
        note = "; the service was deleted" if deleted else ""
        raise ServiceFailedError(f"Model service {service_id} is not ready: {why}{note}")

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """The task's OpenLineage facets (see :mod:`airflow_provider_fasttrack.lineage`): the model folder and
        extra mounts as inputs; the OpenLineage provider uses them for a failed task too. A task that created
        or reused no service reports nothing."""
        from airflow_provider_fasttrack import lineage

        if self.service_id is None:
            return lineage.no_lineage()
        request = self.request
        model = Mount(request.model, subpath=(request.vfolder_subpath or "").strip())
        return lineage.operator_lineage(
            namespace=lineage.namespace_of(self.hook.settings.endpoint),
            inputs=[model.key, *(Mount.parse(text).key for text in request.extra_mounts)],
            outputs=[],
            compute=lineage.compute_of(request, self.hook.settings.scaling_group),
            inlets=self.inlets,
            outlets=self.outlets,
            pipeline_task=(self.dag.dag_display_name, self.task_id) if self.pipeline_templates else None,
            run_facets={
                "backendai_service": lineage.BackendAIServiceRunFacet(
                    serviceId=self.service_id, serviceName=self.service_name(task_instance)
                )
            },
            pipeline_job_id=pipeline_job_id(task_instance.dag_id, task_instance.run_id),
        )

    def on_kill(self) -> None:
        """Airflow is terminating this task: the waiting loop deletes a service this task created (or an
        ephemeral one) and ends the task. A deferred task's trigger does the same (its ``on_kill``)."""
        self._kill_requested = True


class BackendAIDeleteServiceOperator(BaseOperator):
    """Delete the service that ``service_task_id`` created or reused (its ``service_id`` XCom).

    Used as a teardown (``.as_teardown()``, downstream of the service and its users): it runs when they are done,
    whether they succeeded or failed, and its own result does not decide the run's state.
    """

    ui_color = "#f2d0c9"

    def __init__(
        self, *, service_task_id: str, backendai_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.service_task_id = service_task_id
        self.backendai_conn_id = backendai_conn_id

    def execute(self, context: Context) -> None:
        service_id = context["ti"].xcom_pull(task_ids=self.service_task_id, key=SERVICE_ID_KEY)
        if not service_id:
            self.log.info("Task %s created no service; nothing to delete", self.service_task_id)
            return
        deleted = BackendAIHook(self.backendai_conn_id).delete_service(str(service_id))
        self.log.info("Model service %s %s", service_id, "deleted" if deleted else "was already gone")


def service_token_for(
    task_id: str, *, backendai_conn_id: str = DEFAULT_CONN_ID, duration: int = SERVICE_TOKEN_SECONDS
) -> str:
    """A fresh token for the service of ``task_id`` in this DAG run, for use in a template while it renders.

    The token is masked in logs and rendered fields (Airflow's secrets masker), and never stored as XCom.
    """
    context = get_current_context()
    service_id = context["ti"].xcom_pull(task_ids=task_id, key=SERVICE_ID_KEY)
    if not service_id:
        raise ServiceFailedError(
            f"task {task_id!r} has no model service in this run (no {SERVICE_ID_KEY} XCom)"
        )
    return BackendAIHook(backendai_conn_id).service_token(str(service_id), duration=duration)
