"""Fake Azure OpenAI: the OpenAI chat completions and embeddings wire format as Azure serves it.

Per Azure OpenAI's REST reference (learn.microsoft.com/azure/ai-services/openai/reference):

- ``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` and ``.../embeddings``; a request
  without ``api-version`` is answered 404 ``Resource not found``. The key comes in the ``api-key`` header, or an
  Entra ID token as ``Authorization: Bearer``.
- Answers are OpenAI's, plus the content filter's verdicts: ``prompt_filter_results`` (per prompt) and, per
  choice, ``content_filter_results`` (hate, self_harm, sexual, violence: ``{filtered, severity}``). A stream
  starts with a chunk of empty ``choices`` carrying ``prompt_filter_results`` (and empty ``id``/``model``).
- An answer the filter cuts short ends with ``finish_reason: content_filter``. A prompt the filter rejects is
  HTTP 400 ``{"error": {"code": "content_filter", "innererror": {"code": "ResponsibleAIPolicyViolation",
  "content_filter_result": {...}}}}``.
- Other errors: 401 ``{"error": {"code": "401", "message": "Access denied due to invalid subscription key ..."}}``;
  429 with ``retry-after`` / ``retry-after-ms`` headers and "Please retry after N seconds"; 400
  ``context_length_exceeded`` as OpenAI; 500 / 503. Every answer carries ``apim-request-id`` and
  ``x-request-id``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FakeUpstream, Recorded, Script, split_text, sse
from .openai_api import fake_vector

_SAFE = {"filtered": False, "severity": "safe"}
SAFE_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
FILTERED_RESULTS = {**SAFE_RESULTS, "violence": {"filtered": True, "severity": "high"}}
PROMPT_FILTER = [{"prompt_index": 0, "content_filter_results": SAFE_RESULTS}]

ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "rate_limit": (
        429,
        {
            "code": "429",
            "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
            "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after {s} seconds. "
            "Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default "
            "rate limit.",
        },
    ),
    "auth": (
        401,
        {
            "code": "401",
            "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
            "valid key for an active subscription and use a correct regional API endpoint for your resource.",
        },
    ),
    "context_length": (
        400,
        {
            "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "200000 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        },
    ),
    "content_filter": (
        400,
        {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management "
            "policy. Please modify your prompt and retry. To learn more about our content filtering policies please "
            "read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation", "content_filter_result": FILTERED_RESULTS},
        },
    ),
    "server": (
        500,
        {
            "code": "InternalServerError",
            "message": "The service is temporarily unable to process your request. Please try again later.",
        },
    ),
    "overloaded": (
        503,
        {"code": "ServiceUnavailable", "message": "The service is temporarily unable to process your request."},
    ),
}


class FakeAzureOpenAI(FakeUpstream):
    name = "azure_openai"
    base_path = ""  # the SDK's azure_endpoint is the server root

    def routes(self) -> list[Route]:
        return [
            Route("/openai/deployments/{deployment}/chat/completions", self.chat, methods=["POST"]),
            Route("/openai/deployments/{deployment}/embeddings", self.embeddings, methods=["POST"]),
        ]

    def headers(self, request_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {
            "apim-request-id": request_id,
            "x-request-id": request_id,
            "x-ms-region": "Sweden Central",
            **(extra or {}),
        }

    def queue_filtered(self) -> None:
        """Answer the next request as cut short by the content filter (``finish_reason: content_filter``)."""
        self.queue_text("I can't", finish_reason="content_filter")

    def error(self, script: Script, request_id: str) -> Response:
        status, error = ERRORS[script.error]
        error = dict(error)
        extra: dict[str, str] = {}
        if script.retry_after is not None:
            error["message"] = error["message"].format(s=f"{script.retry_after:g}")
            extra = {"retry-after": f"{script.retry_after:g}", "retry-after-ms": f"{script.retry_after * 1000:g}"}
        elif "{s}" in error["message"]:
            error["message"] = error["message"].format(s="1")
        return self.json({"error": error}, request_id, status, extra)

    def refused(self, request: Request, rec: Recorded, request_id: str) -> Response | None:
        if not request.query_params.get("api-version"):
            return self.json({"error": {"code": "404", "message": "Resource not found"}}, request_id, 404)
        if not (rec.headers.get("api-key") or rec.headers.get("authorization", "").startswith("Bearer ")):
            return self.error(Script("error", error="auth"), request_id)
        return None

    async def begin(self, request: Request) -> tuple[Recorded, str, Script] | Response:
        """What every endpoint does first: record the request, refuse a wrong path or a missing key, and take
        the next script (an error script is answered here)."""
        rec = await self.record(request)
        request_id = self.new_request_id()
        refused = self.refused(request, rec, request_id)
        if refused is not None:
            return refused
        script = await self.next_script(request)
        if script.kind == "error":
            return self.error(script, request_id)
        return rec, request_id, script

    async def chat(self, request: Request) -> Response:
        begun = await self.begin(request)
        if isinstance(begun, Response):
            return begun
        rec, request_id, script = begun
        body = rec.json or {}
        model = "gpt-4o-2024-11-20"  # Azure names the model behind the deployment
        prompt, completion = script.usage
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        calls = [
            {"id": t["id"], "type": "function", "function": {"name": t["name"], "arguments": t["arguments"]}}
            for t in script.tool_calls
        ]
        finish = script.finish_reason or ("tool_calls" if calls else "stop")
        verdict = FILTERED_RESULTS if finish == "content_filter" else SAFE_RESULTS
        base = {
            "id": f"chatcmpl-{request_id[4:]}",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_azure",
        }
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": script.text or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            choice = {
                "index": 0,
                "message": message,
                "finish_reason": finish,
                "logprobs": None,
                "content_filter_results": verdict,
            }
            answer = {
                **base,
                "object": "chat.completion",
                "choices": [choice],
                "usage": usage,
                "prompt_filter_results": PROMPT_FILTER,
            }
            return self.json(answer, request_id)
        return self.event_stream(
            self.events(base, script, calls, finish, usage, body), request_id, script.chunk_delay_s
        )

    def events(
        self,
        base: dict[str, Any],
        script: Script,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, int],
        body: Any,
    ) -> list[bytes]:
        def chunk(
            delta: dict[str, Any], finish_reason: str | None = None, verdict: dict[str, Any] | None = None
        ) -> bytes:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            choice["content_filter_results"] = verdict if verdict is not None else (SAFE_RESULTS if delta else {})
            return sse({**base, "object": "chat.completion.chunk", "choices": [choice], "usage": None})

        first = {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": PROMPT_FILTER,
        }
        events = [sse(first), chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"content": part}) for part in (split_text(script.text) if script.text else [])]
        for i, call in enumerate(calls):
            events.append(chunk({"tool_calls": [{"index": i, **call}]}))
        events.append(chunk({}, finish, FILTERED_RESULTS if finish == "content_filter" else {}))
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append(sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        events.append(sse("[DONE]"))
        return events

    async def embeddings(self, request: Request) -> Response:
        begun = await self.begin(request)
        if isinstance(begun, Response):
            return begun
        rec, request_id, _script = begun
        inputs = (rec.json or {}).get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [{"object": "embedding", "index": i, "embedding": fake_vector(t)} for i, t in enumerate(texts)]
        tokens = sum(len(t.split()) for t in texts)
        return self.json(
            {
                "object": "list",
                "data": data,
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
            request_id,
        )
