"""Errors raised by the provider, its pipeline loader and backendai-lite's configuration.

Hierarchy (each class under its base; a root names its base from outside this module)::

    BackendAIError(Exception)             base class of the errors about the Backend.AI manager and its sessions
    ├── BackendAIConnectionError          the manager could not be reached (after retries)
    ├── BackendAIAPIError                 the manager answered with an error (problem+json)
    │   ├── BackendAIAuthError            401 auth-failed, 400 invalid-auth-params, 403
    │   ├── BackendAINotFoundError        404 object-not-found
    │   ├── BackendAIRateLimitError       429 rate-limit-exceeded
    │   ├── BackendAIServerError          5xx
    │   └── BackendAIBadRequestError      other 4xx (invalid-api-params, quota-exceeded, ...)
    ├── SessionFailedError                a session ended without success
    ├── ServiceFailedError                a model service did not become ready
    │   └── ServiceRequestError           a model service that cannot be created as asked (its folders)
    └── ResourceRequestError              a resource request that the cluster can never satisfy
    PipelineSpecError(YamlDocumentError)  a pipeline file that cannot become a DAG; ``issues``, one per line
    PipelineImportError(Exception)        the import error Airflow records for a folder's broken pipeline files
    PipelineWarning(UserWarning)          a pipeline file loaded but has something worth fixing
    SecretNotFoundError(Exception)        a ``${{ secrets.NAME }}`` reference names no Airflow Variable
    TemplateReferenceError(Exception)     a pipeline template reads a connection or variable the deployment refuses
    LiteConfigError(YamlDocumentError)    backendai-lite's configuration file is invalid
    ModelDefinitionError(YamlDocumentError)  a model folder's model-definition.yaml is invalid

``YamlDocumentError`` (``training.exceptions``) carries the ``file:line:column field: reason`` issues of a YAML
document; catching it catches both document errors.

Which errors a retry can help is decided here once: :data:`TRANSIENT_ERRORS` (the hook retries each request on
them, and a task's retries are spent on them) and :data:`PERMANENT_ERRORS` (a task fails on its first try, see
:mod:`airflow_provider_fasttrack.retry_policy`). Any other error spends the task's retries as Airflow's default.
"""

from __future__ import annotations

from typing import Any

from training.exceptions import YamlDocumentError

__all__ = [
    "BackendAIAPIError",
    "BackendAIAuthError",
    "BackendAIBadRequestError",
    "BackendAIConnectionError",
    "BackendAIError",
    "BackendAINotFoundError",
    "BackendAIRateLimitError",
    "BackendAIServerError",
    "LiteConfigError",
    "ModelDefinitionError",
    "PipelineImportError",
    "PipelineSpecError",
    "PERMANENT_ERRORS",
    "PipelineWarning",
    "ResourceRequestError",
    "SecretNotFoundError",
    "ServiceFailedError",
    "ServiceRequestError",
    "SessionFailedError",
    "TRANSIENT_ERRORS",
    "TemplateReferenceError",
]

PROBLEM_TYPE_PREFIX = "https://api.backend.ai/probs/"


class BackendAIError(Exception):
    """Base class of the errors about the Backend.AI manager and its sessions."""


class BackendAIConnectionError(BackendAIError):
    """The manager could not be reached."""


class BackendAIAPIError(BackendAIError):
    """The manager answered with an error status; carries the problem+json fields."""

    def __init__(
        self,
        status_code: int,
        type: str = "",
        title: str = "",
        msg: str | None = None,
        data: Any = None,
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.type = type
        self.title = title
        self.msg = msg
        self.data = data
        self.method = method
        self.path = path
        self.retry_after = retry_after
        super().__init__(str(self))

    @property
    def kind(self) -> str:
        """The last part of the problem type, e.g. ``object-not-found``."""
        return self.type.removeprefix(PROBLEM_TYPE_PREFIX)

    def __str__(self) -> str:
        text = f"{self.method} {self.path} -> {self.status_code} {self.kind or 'error'}: {self.title}".strip()
        if self.msg and self.msg != self.title:
            text += f" ({self.msg})"
        return text


class BackendAIAuthError(BackendAIAPIError):
    """The keypair or the request signature was refused."""


class BackendAINotFoundError(BackendAIAPIError):
    """The session, vfolder or file does not exist (or a session has terminated)."""


class BackendAIRateLimitError(BackendAIAPIError):
    """429: too many requests."""


class BackendAIServerError(BackendAIAPIError):
    """5xx from the manager."""


class BackendAIBadRequestError(BackendAIAPIError):
    """Any other 4xx: the request itself is wrong, retrying does not help."""


class SessionFailedError(BackendAIError):
    """A batch session ended without success."""


class ServiceFailedError(BackendAIError):
    """A model service did not become ready (its replicas failed, or it cannot be created as asked)."""


class ServiceRequestError(ServiceFailedError):
    """A model service that cannot be created as asked: its model folder or an extra mount is missing or of the
    wrong usage mode, or its model definition is missing."""


class ResourceRequestError(BackendAIError):
    """A resource request that the cluster or keypair can never provide."""


class PipelineSpecError(YamlDocumentError):
    """A pipeline file that cannot become a DAG; ``issues`` holds one issue per problem."""


class PipelineImportError(Exception):
    """One or more pipeline files could not become DAGs; one line per problem."""


class PipelineWarning(UserWarning):
    """A pipeline file loaded but has something worth fixing (e.g. an unknown field)."""


class SecretNotFoundError(Exception):
    """A ``${{ secrets.NAME }}`` reference in a task's environment names no Airflow Variable."""


class TemplateReferenceError(Exception):
    """A pipeline template reads a connection or variable that ``[fasttrack] pipeline_connections`` or
    ``pipeline_variables`` does not allow; the message names the task and the name, never a value."""


class LiteConfigError(YamlDocumentError):
    """The backendai-lite configuration file is invalid; the message names the file, the field and the line."""


class ModelDefinitionError(YamlDocumentError):
    """A model folder's ``model-definition.yaml`` is invalid; the message names the file, the field and the line."""


#: the manager was not reached (after the hook's retries), failed (5xx) or asked to slow down (429): the hook
#: retries each request on these, and a task that still fails with one is retried while it has retries left
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    BackendAIConnectionError,
    BackendAIServerError,
    BackendAIRateLimitError,
)

#: a retry cannot help: the manager refused the request as it is (any 4xx but 429: invalid parameters, an
#: unknown image or vfolder, a request over a per-session limit), refused the keypair (401, 403), the request can
#: never fit the keypair's resource policy or the scaling group, or the task's own definition is wrong (a missing
#: secret, a refused template reference, an invalid YAML document)
PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    BackendAIAuthError,
    BackendAINotFoundError,
    BackendAIBadRequestError,
    ResourceRequestError,
    ServiceRequestError,
    SecretNotFoundError,
    TemplateReferenceError,
    YamlDocumentError,
)
