"""The gateway's OpenAPI 3.1 document, served at ``GET /openapi.json``.

Request bodies are the JSON Schemas of the pydantic models the gateway validates them with
(:class:`~llm_router.gateway.openai_types.ChatCompletionRequest`, :class:`~llm_router.gateway.openai_types.RouteBody`,
:class:`~llm_router.types.Feedback`), so the document cannot drift from the validation; answers and errors are
described here by hand, as docs/gateway.md describes them.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic.json_schema import models_json_schema

from ..types import Feedback
from .openai_types import ChatCompletionRequest, RouteBody

__all__ = ["openapi_document"]

_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    out["headers"] = {"x-request-id": _ref_header("RequestId"), **(headers or {})}
    return out


def _ref_header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


# status -> when, per docs/gateway.md's error table
_ERRORS: dict[int, str] = {
    400: "the body is not JSON, no model can serve the request, or the upstream refused it "
    "(`invalid_json`, `no_model_available`, `upstream_bad_request`, `context_length_exceeded`, `content_filter`)",
    401: "no API key, or an unknown one (`invalid_api_key`)",
    403: "the key may not use that model (`model_not_allowed`)",
    404: "unknown model (`model_not_found`)",
    413: "the body is larger than `gateway.max_body_bytes` (`request_too_large`)",
    422: "a field is wrong or unknown; `param` names it (`invalid_value`)",
    429: "the key's budget is spent (`budget_exceeded`) or the upstream's rate limit was hit (`rate_limit_exceeded`)",
    500: "a fault of the gateway itself (`internal_error`); the operator's log has the details",
    502: "the upstream failed, could not be reached, rejected the gateway's credentials or a post-processor refused "
    "the answer (`upstream_error`, `upstream_auth_failed`, `postprocess_failed`)",
    503: "the upstream is unavailable, or no provider is ready (`upstream_unavailable`, `no_model_available`)",
    504: "the upstream timed out (`upstream_timeout`)",
}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), _ERRORS[s]) for s in statuses}


_AUTH: list[dict[str, list[str]]] = [{"bearer": []}]
_ROUTER_HEADERS: list[dict[str, Any]] = [
    {
        "name": "x-router-preferences",
        "in": "header",
        "required": False,
        "description": "routing weights: a JSON object, or `name=value,name=value` (e.g. `quality=0.2,cost=0.8`); "
        "the body's `router.preferences` wins for the same name",
        "schema": {"type": "string"},
    },
    {
        "name": "x-router-constraints",
        "in": "header",
        "required": False,
        "description": "hard limits: a JSON object, or `name=value,name=value` (lists separated by `|`)",
        "schema": {"type": "string"},
    },
    {"$ref": "#/components/parameters/RequestId"},
]
_CHAT_HEADERS: list[dict[str, Any]] = [
    {
        "name": "cache-control",
        "in": "header",
        "required": False,
        "description": "`no-cache`: not answered from the response cache; `no-store`: the answer is not stored",
        "schema": {"type": "string"},
    },
    {
        "name": "traceparent",
        "in": "header",
        "required": False,
        "description": "W3C trace context, continued by the request's span when tracing is on",
        "schema": {"type": "string"},
    },
]


def _chat() -> dict[str, Any]:
    headers = {
        name: {"description": description, "schema": {"type": "string"}}
        for name, description in (
            ("x-router-model", "the model that answered (percent-encoded beyond printable ASCII)"),
            ("x-router-task", "the classified task"),
            ("x-router-decision-ms", "routing decision time"),
            ("x-router-estimated-cost", "USD estimated before the call"),
            ("x-router-cost", "USD charged (not on streams)"),
            ("x-router-fallbacks", "models that failed before the one that answered (not on streams)"),
            ("x-router-reason", "why the top model won, in one line"),
            ("x-router-cache", "what the response cache did: hit, semantic, miss or bypass (with a cache policy)"),
        )
    }
    ok = _json(_ref("ChatCompletion"), "the completion (`stream: false`)", headers)
    ok["content"]["text/event-stream"] = {
        "schema": {"type": "string", "description": "`chat.completion.chunk` events, then `data: [DONE]`"}
    }
    return {
        "post": {
            "summary": "OpenAI chat completions, routed (`model: auto`, an alias, or a catalogue id)",
            "operationId": "{operation}",
            "security": _AUTH,
            "parameters": [*_ROUTER_HEADERS, *_CHAT_HEADERS],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ChatCompletionRequest")}},
            },
            "responses": {"200": ok, **_errors(400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504)},
        }
    }


def _operation(
    method: str,
    operation_id: str,
    summary: str,
    ok: dict[str, Any],
    errors: tuple[int, ...],
    *,
    body: str | None = None,
    auth: bool = True,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": operation_id, "responses": {"200": ok, **_errors(*errors)}}
    op["security"] = _AUTH if auth else []
    op["parameters"] = parameters or [{"$ref": "#/components/parameters/RequestId"}]
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return {method: op}


_NULLABLE_STRING = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def _schemas() -> dict[str, Any]:
    """The request bodies' schemas (from the pydantic models) and the answers'."""
    _, top = models_json_schema(
        [(ChatCompletionRequest, "validation"), (RouteBody, "validation"), (Feedback, "validation")],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": _NULLABLE_STRING,
                    "code": _NULLABLE_STRING,
                },
            }
        },
    }
    usage = {
        "type": "object",
        "properties": {n: {"type": "integer"} for n in ("prompt_tokens", "completion_tokens", "total_tokens")},
    }
    schemas["ChatCompletion"] = {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string", "description": "the catalogue id of the model that answered"},
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": usage,
            "system_fingerprint": {"type": "null"},
        },
    }
    return {**schemas, **_answer_schemas()}


def _answer_schemas() -> dict[str, Any]:
    """The answers' schemas but the completion's and the error's."""
    schemas: dict[str, Any] = {}
    schemas["ModelList"] = {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "object", "created", "owned_by"],
                    "properties": {
                        "id": {"type": "string"},
                        "object": {"const": "model"},
                        "created": {"type": "integer"},
                        "owned_by": {"type": "string"},
                    },
                },
            },
        },
    }
    schemas["RouteDecision"] = {
        "type": "object",
        "description": "the `llm-router route --json` document (docs/cli.md) plus `explanation`",
        "required": ["version", "request_id", "selected", "classification", "ranking", "rejected", "explanation"],
        "properties": {
            "version": {"type": "integer"},
            "request_id": {"type": "string"},
            "selected": {"type": "string"},
            "classification": {"type": "object"},
            "route": {"type": "string"},
            "weights": {"type": "object", "additionalProperties": {"type": "number"}},
            "input_tokens": {"type": "integer"},
            "expected_output_tokens": {"type": "integer"},
            "routing_time_ms": {"type": "number"},
            "ranking": {"type": "array", "items": {"type": "object"}},
            "rejected": {"type": "array", "items": {"type": "object"}},
            "explanation": {"type": "string"},
        },
    }
    schemas["FeedbackAccepted"] = {
        "type": "object",
        "required": ["status", "request_id"],
        "properties": {"status": {"const": "accepted"}, "request_id": {"type": "string"}},
    }
    readiness = {"type": "object", "properties": {"ready": {"type": "boolean"}, "reason": _NULLABLE_STRING}}
    schemas["Health"] = {
        "type": "object",
        "required": ["status", "ready", "providers"],
        "properties": {
            "status": {"const": "ok"},
            "ready": {"type": "boolean"},
            "providers": {"type": "object", "additionalProperties": readiness},
        },
    }
    return schemas


def _paths() -> dict[str, Any]:
    chat = _chat()
    alias = copy.deepcopy(chat)
    chat["post"]["operationId"] = "createChatCompletion"
    alias["post"]["operationId"] = "createChatCompletionWithoutV1"
    text = {"content": {"text/plain": {"schema": {"type": "string"}}}}
    paths: dict[str, Any] = {
        "/v1/chat/completions": chat,
        "/chat/completions": alias,
        "/v1/route": _operation(
            "post",
            "route",
            "the routing decision alone, explained (no model is called)",
            _json(_ref("RouteDecision"), "the decision"),
            (400, 401, 403, 404, 413, 422, 500, 503),
            body="RouteBody",
            parameters=_ROUTER_HEADERS,
        ),
        "/v1/models": _operation(
            "get", "listModels", "`auto`, the aliases and the models the key may use",
            _json(_ref("ModelList"), "the models"), (401, 500),
        ),
        "/v1/feedback": _operation(
            "post", "sendFeedback", "a rating or outcome of a past request, broadcast to the plugins",
            _json(_ref("FeedbackAccepted"), "accepted"), (400, 401, 413, 422, 500), body="Feedback",
        ),
        "/health": _operation(
            "get", "health", "liveness (always 200) and per-provider readiness",
            _json(_ref("Health"), "the gateway's state"), (500,), auth=False,
        ),
        "/metrics": _operation(
            "get", "metrics", "Prometheus text exposition",
            {"description": "the metrics", **text, "headers": {"x-request-id": _ref_header("RequestId")}},
            (500,), auth=False,
        ),
        "/openapi.json": _operation(
            "get", "openapi", "this document",
            _json({"type": "object"}, "the OpenAPI document"), (500,), auth=False,
        ),
    }  # fmt: skip
    paths.update(_usage_paths())
    paths.update(_web_paths())
    return paths


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = schema or {"type": "string"}
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_RANGE = [
    _query("since", "first UTC day `YYYY-MM-DD` or epoch seconds (default: 29 days before today)"),
    _query("until", "last UTC day `YYYY-MM-DD` (included) or epoch seconds (excluded); default: today"),
]
_ROW_FILTERS = [
    _query("model", "only this model id"),
    _query("key", "only this key id"),
    _query("task", "only this task"),
    _query("outcome", "only this outcome (ok, error, cancelled, auth, budget, no_candidates, request)"),
    _query("q", "case-insensitive text in the request id, key, model, task, outcome or error"),
]


def _usage_paths() -> dict[str, Any]:
    """``/v1/usage/*`` (docs/web.md): admin keys only."""
    obj = {"type": "object"}
    rid = {"$ref": "#/components/parameters/RequestId"}
    page = [
        _query("limit", "rows per page (1-1000, default 100)", {"type": "integer"}),
        _query("offset", "rows to skip (default 0)", {"type": "integer"}),
    ]
    dimension = {
        "name": "dimension",
        "in": "path",
        "required": True,
        "schema": {"enum": ["day", "model", "key", "task", "outcome", "provider"]},
    }
    csv_ok = {
        "description": "the request log as CSV",
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "headers": {"x-request-id": _ref_header("RequestId")},
    }
    errors = (401, 403, 422, 500)
    return {
        "/v1/usage/summary": _operation("get", "usageSummary", "totals and p50/p95 latency over a date range",
                                        _json(obj, "the totals"), errors, parameters=[*_RANGE, *_ROW_FILTERS, rid]),
        "/v1/usage/by/{dimension}": _operation("get", "usageBy", "totals per day, model, key, task, outcome, provider",
                                               _json(obj, "one row per value"), (401, 403, 404, 422, 500),
                                               parameters=[dimension, *_RANGE, *_ROW_FILTERS, rid]),
        "/v1/usage/budgets": _operation("get", "usageBudgets", "per key: budgets, spend (today, month), reservations",
                                        _json(obj, "the keys"), (401, 403, 500)),
        "/v1/usage/live": _operation("get", "usageLive", "provider readiness, circuit breakers, live latencies",
                                     _json(obj, "the live state"), (401, 403, 500)),
        "/v1/usage/requests": _operation("get", "usageRequests", "the request log, newest first, searchable",
                                         _json(obj, "a page of the log"), errors,
                                         parameters=[*_RANGE, *_ROW_FILTERS, *page, rid]),
        "/v1/usage/requests.csv": _operation("get", "usageRequestsCsv", "the request log as CSV (up to 100,000 rows)",
                                             csv_ok, errors, parameters=[*_RANGE, *_ROW_FILTERS, rid]),
    }  # fmt: skip


def _web_paths() -> dict[str, Any]:
    """The web app's pages and files (docs/web.md); no key needed to load them."""

    def html(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}

    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    asset = {"description": "a built file (JavaScript, CSS)", "content": {"*/*": {"schema": {"type": "string"}}}}
    return {
        "/": _operation("get", "playground", "the playground page", html("the page"), (500,), auth=False),
        "/dashboard": _operation("get", "dashboard", "the usage dashboard page", html("the page"), (500,), auth=False),
        "/assets/{name}": _operation("get", "webAsset", "a file of the web app", asset, (500,), auth=False,
                                     parameters=[name]),
        "/icon.svg": _operation("get", "webIcon", "the web app's icon", asset, (500,), auth=False),
    }  # fmt: skip


@functools.cache
def _document() -> dict[str, Any]:
    from .. import __version__

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-router gateway",
            "version": __version__,
            "description": "OpenAI-compatible chat completions routed by llm-router (docs/gateway.md). Every "
            'answer carries `x-request-id`; errors are OpenAI\'s `{"error": {message, type, param, code}}`.',
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a key of the policy's gateway.keys (no keys configured: an open gateway)",
                }
            },
            "parameters": {
                "RequestId": {
                    "name": "x-request-id",
                    "in": "header",
                    "required": False,
                    "description": "the request id to use (1 to 128 visible ASCII characters; else one is made)",
                    "schema": {"type": "string"},
                }
            },
            "headers": {
                "RequestId": {
                    "description": "the request's id: the client's own when it sent a sane one, else a fresh one",
                    "schema": {"type": "string"},
                }
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: the caller may change it)."""
    return copy.deepcopy(_document())
