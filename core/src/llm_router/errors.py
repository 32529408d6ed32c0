"""The router's errors: one vocabulary for the policy, the plugins, routing and every provider.

Provider plugins translate their SDK's failures into the :class:`ProviderError` subclasses below, so the
fallback logic, the CLI and the gateway never need to know an SDK.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from .types import Attempt, Rejection

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ComponentError",
    "ConfigurationError",
    "ConnectionError",
    "ContentFilteredError",
    "ContextLengthExceededError",
    "DuplicateComponentError",
    "FeedbackError",
    "NoCandidatesError",
    "PermissionDeniedError",
    "PluginError",
    "PolicyError",
    "PolicyIssue",
    "PostprocessError",
    "ProviderError",
    "RateLimitError",
    "RouterError",
    "ServerError",
    "TimeoutError",
    "causes",
    "retry_after_from_headers",
    "scrub",
]


class RouterError(Exception):
    """Base class of every error the router raises on purpose.

    :ivar attempts: the calls made for the request before it failed (empty when no model was called); set
        by the executor on the error it raises after every candidate failed.
    """

    attempts: tuple[Attempt, ...] = ()


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy file: where it is and what is wrong."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{field} {self.message}"


class PolicyError(RouterError):
    """The routing policy is invalid. ``issues`` lists every problem with file:line:column and field."""

    def __init__(self, issues: Sequence[PolicyIssue]) -> None:
        self.issues = tuple(issues)
        n = len(self.issues)
        head = f"invalid routing policy ({n} problem{'s' if n != 1 else ''}):"
        super().__init__("\n".join([head, *(f"  {i}" for i in self.issues)]))


class ConfigurationError(RouterError):
    """Something the router was asked to use does not exist or cannot be set up."""


class PluginError(RouterError):
    """A plugin failed to load, to register, or broke the plugin contract."""


class DuplicateComponentError(PluginError):
    """Two plugins registered a component of the same kind under the same name."""


class FeedbackError(RouterError):
    """Feedback that cannot be taken: a listener does not know its request id (never decided here, or
    expired), or it was rated already. Raised by an ``on_feedback`` listener; it reaches the caller of
    :meth:`Router.feedback` (the gateway answers 404) instead of being logged like other listener errors."""


# --------------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------------


class NoCandidatesError(RouterError):
    """Every candidate model was rejected. ``rejected`` says which constraint ruled out each one and why."""

    def __init__(self, rejected: Sequence[Rejection], task: str) -> None:
        self.rejected = tuple(rejected)
        self.task = task
        lines = [f"no model can serve this request (task {task!r}); every candidate was rejected:"]
        lines += [f"  {r.model_id}: {r.constraint}: {r.reason}" for r in self.rejected]
        if not self.rejected:
            lines = [f"no model can serve this request (task {task!r}): the route allows no model"]
        super().__init__("\n".join(lines))


class PostprocessError(RouterError):
    """A post-processor refused a response (for example it is not valid JSON for the requested schema), or
    raised unexpectedly (``broken`` is then true). Either way the model answered: the router falls back to
    the next candidate, and the model's circuit breaker is never touched."""

    kind: ClassVar[str] = "postprocess"

    def __init__(self, postprocessor: str, message: str, *, broken: bool = False) -> None:
        self.postprocessor = postprocessor
        self.broken = broken
        super().__init__(f"{postprocessor}: {message}")


class ComponentError(RouterError):
    """A scorer or constraint raised while deciding. It is left out of that one decision (the decision's
    ``skipped`` says so) and reported through ``on_error``; the request is still routed."""

    def __init__(self, kind: str, name: str, message: str) -> None:
        self.component_kind = kind
        self.component = name
        super().__init__(f"{kind} {name!r} raised and was skipped for this request: {message}")


# --------------------------------------------------------------------------------------------------
# Providers
# --------------------------------------------------------------------------------------------------


class ProviderError(RouterError):
    """A provider call failed. Subclasses name the kind; ``retryable`` says whether retrying may help.

    Provider plugins raise these (never their SDK's exceptions). Messages must not contain secrets.
    """

    kind: ClassVar[str] = "provider_error"
    retryable: ClassVar[bool] = False
    health: ClassVar[bool] = False
    """Whether this failure says the upstream is unhealthy (5xx, timeout, connection, rate limit): only those
    count towards a model's circuit breaker. A failure the caller caused (a bad request, a context too long,
    a content filter) or a key problem never opens a circuit for everyone else."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.model = model
        self.request_id = request_id
        self.status_code = status_code
        super().__init__(message)

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        extra = []
        if self.status_code is not None:
            extra.append(f"HTTP {self.status_code}")
        if self.request_id:
            extra.append(f"request id {self.request_id}")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"{where + ': ' if where else ''}{self.kind}: {self.message}{tail}"


class RateLimitError(ProviderError):
    kind = "rate_limit"
    retryable = True
    health = True

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: object) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, **kw)  # type: ignore[arg-type]


class TimeoutError(ProviderError):
    kind = "timeout"
    retryable = True
    health = True


class ConnectionError(ProviderError):
    kind = "connection"
    retryable = True
    health = True


class ServerError(ProviderError):
    kind = "server_error"
    retryable = True
    health = True


class AuthenticationError(ProviderError):
    """The key is missing or wrong. The message names the environment variable to set."""

    kind = "authentication"


class PermissionDeniedError(ProviderError):
    kind = "permission"


class BadRequestError(ProviderError):
    kind = "bad_request"


class ContextLengthExceededError(BadRequestError):
    kind = "context_length"


class ContentFilteredError(ProviderError):
    kind = "content_filter"


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait before retrying, from an HTTP answer's ``retry-after-ms`` or ``retry-after`` header
    (seconds, or an HTTP date); ``None`` when neither is there or readable. For provider plugins."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions ``exc`` was raised from (``raise ... from``), nearest first, ``exc`` itself left out.

    For provider plugins whose SDK wraps a transport's error: ``any(isinstance(c, aiohttp.ClientConnectionError)
    for c in causes(exc))`` tells a refused connection from a timeout the SDK reports for it. A chain that loops
    back on itself ends at the first repeat."""
    seen = {id(exc)}
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield cause
        cause = cause.__cause__


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` replaced by ``***`` (for messages that may echo a key back)."""
    return text.replace(secret, "***") if secret else text


ERROR_KINDS: dict[str, type[ProviderError]] = {
    cls.kind: cls
    for cls in (
        ProviderError,
        RateLimitError,
        TimeoutError,
        ConnectionError,
        ServerError,
        AuthenticationError,
        PermissionDeniedError,
        BadRequestError,
        ContextLengthExceededError,
        ContentFilteredError,
    )
}
