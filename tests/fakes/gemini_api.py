"""Fake Gemini REST API (the Gemini Developer API and Vertex AI's ``publishers/google`` surface).

Per the API reference (ai.google.dev/api/generate-content, cloud.google.com/vertex-ai/docs/reference/rest):

- ``POST /{version}/models/{model}:generateContent`` (Gemini API; Vertex AI express mode uses
  ``/{version}/publishers/google/models/...`` and a project's ``/{version}/projects/P/locations/L/publishers/
  google/models/...``) takes ``contents`` ([{role: user|model, parts: [{text} | {functionCall} |
  {functionResponse}]}]), ``systemInstruction``, ``generationConfig``, ``tools``, ``toolConfig``,
  ``safetySettings``, ``cachedContent``; the key comes in the ``x-goog-api-key`` header. The model is named in
  the path, never in the body.
- The answer is a ``GenerateContentResponse``: ``candidates`` [{content: {role: model, parts}, finishReason,
  index}], ``usageMetadata`` {promptTokenCount, candidatesTokenCount, totalTokenCount}, ``modelVersion``,
  ``responseId``. A function call is a part ``{"functionCall": {"name", "args"}}`` with finishReason ``STOP``;
  a Gemini 3 model adds a ``thoughtSignature`` to the first call of its turn, to be sent back with it.
  A prompt blocked by safety filters has no candidates and ``promptFeedback.blockReason``.
- ``:streamGenerateContent?alt=sse`` sends the same objects as server-sent events (``data: {...}`` then a
  blank line, CRLF line ends), each with the usage so far; the last carries ``finishReason`` and the full usage.
- ``:batchEmbedContents`` takes ``requests`` [{model, content: {parts}}] and answers ``embeddings`` [{values}].
- Errors are ``{"error": {"code", "message", "status", "details"}}`` (google.rpc.Status): a rate limit is 429
  ``RESOURCE_EXHAUSTED`` with a ``google.rpc.RetryInfo`` detail (``retryDelay: "7s"``) and no ``Retry-After``
  header; a bad key is 400 ``INVALID_ARGUMENT`` with an ``ErrorInfo`` detail of reason ``API_KEY_INVALID``
  (the Gemini API never answers 401 to a key); a long prompt is 400 ``INVALID_ARGUMENT`` ("The input token
  count ... exceeds the maximum"); 500 ``INTERNAL``; 503 ``UNAVAILABLE`` (overloaded). Google sends no request
  id header; a successful answer names itself with ``responseId``.
- Vertex AI with a project (``/v1beta1/projects/P/locations/L/publishers/google/models/M:...``) takes an OAuth 2
  access token (``Authorization: Bearer ...``), never an API key; without a valid token it answers 401
  ``UNAUTHENTICATED``. Tokens come from ``POST /token``, this fake's stand-in for Google's OAuth 2 token
  endpoint (a service account's ``token_uri``): the JWT-bearer grant of RFC 7523 (``grant_type=
  urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT``), whose RS256 signature must verify with the
  public key of a service account registered with :meth:`FakeGemini.add_service_account`, ``aud`` must be
  Google's token endpoint (``https://oauth2.googleapis.com/token``, whatever URL the grant is posted to, as
  google-auth signs it) and ``scope`` must include ``cloud-platform``; the answer is ``{access_token, expires_in,
  token_type}``, an error ``{error: invalid_grant, error_description}`` with status 400.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .base import FakeUpstream, Recorded, Script, split_text
from .openai_api import fake_vector

PATH = re.compile(
    r"^/(?P<version>v1[a-z0-9]*)/(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"(?:publishers/google/)?models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)

_HELP = "https://ai.google.dev/gemini-api/docs/troubleshooting"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
ERRORS: dict[str, tuple[int, str, str, list[dict[str, Any]]]] = {
    "rate_limit": (
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        "this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more", "url": _HELP}]},
        ],
    ),
    "auth": (
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    ),
    "unauthenticated": (  # what Vertex AI answers to a bad OAuth token
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential.",
        [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED"}],
    ),
    "permission": (
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key "
        "or other form of API consumer identity to call this API.",
        [],
    ),
    "context_length": (
        400,
        "INVALID_ARGUMENT",
        "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
        [],
    ),
    "bad_request": (
        400,
        "INVALID_ARGUMENT",
        'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
        [],
    ),
    "server": (500, "INTERNAL", "An internal error has occurred. Please retry or report in " + _HELP, []),
    "overloaded": (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", []),
    "deadline": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", []),
}


@dataclass
class GeminiRecorded(Recorded):
    """A request with what the path says: the model, the method (``rpc``) and whether it streams (``alt=sse``)."""

    model: str = ""
    rpc: str = ""
    stream: bool = False
    version: str = ""
    project: str | None = None
    location: str | None = None


class FakeGemini(FakeUpstream):
    name = "gemini"
    auth_status = 400  # the Gemini API answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID
    error_request_ids = False  # Google sends no request id with an error

    def __init__(self) -> None:
        super().__init__()
        self.service_accounts: dict[str, bytes] = {}  # client_email -> public key (PEM)
        self.tokens: list[str] = []  # access tokens issued, oldest first

    def add_service_account(self, email: str, public_key_pem: bytes) -> None:
        """Accept JWT-bearer grants signed by this service account's key at ``POST /token``."""
        self.service_accounts[email] = public_key_pem

    def reset(self) -> None:
        super().reset()
        self.service_accounts.clear()
        self.tokens.clear()

    def routes(self) -> list[Route]:
        return [Route("/token", self.token, methods=["POST"]), Route("/{path:path}", self.dispatch, methods=["POST"])]

    async def token(self, request: Request) -> Response:
        """The OAuth 2 token endpoint: an access token for a correctly signed JWT-bearer assertion."""
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or "assertion" not in form:
            return self.oauth_error("unsupported_grant_type", "Invalid grant_type or no assertion.")
        claims = _verified_claims(form["assertion"], self.service_accounts)
        if claims is None:
            return self.oauth_error("invalid_grant", "Invalid JWT Signature.")
        now = time.time()
        if claims.get("aud") != GOOGLE_TOKEN_AUDIENCE or not claims.get("exp", 0) > now >= claims.get("iat", 0) - 60:
            return self.oauth_error(
                "invalid_grant", "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe."
            )
        if "https://www.googleapis.com/auth/cloud-platform" not in str(claims.get("scope", "")).split():
            return self.oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = f"ya29.fake-{uuid.uuid4().hex}"
        self.tokens.append(token)
        return self.json({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}, "")

    def oauth_error(self, error: str, description: str) -> Response:
        return self.json({"error": error, "error_description": description}, "", 400)

    async def record(self, request: Request) -> Recorded:
        base = await super().record(request)
        match = PATH.match(request.url.path)
        groups = match.groupdict() if match else {}
        rec = GeminiRecorded(
            base.method,
            base.path,
            base.headers,
            base.json,
            model=groups.get("model") or "",
            rpc=groups.get("method") or "",
            stream=groups.get("method") == "streamGenerateContent" and request.query_params.get("alt") == "sse",
            version=groups.get("version") or "",
            project=groups.get("project"),
            location=groups.get("location"),
        )
        self.requests[-1] = rec
        return rec

    async def dispatch(self, request: Request) -> Response:
        rec = await self.record(request)
        assert isinstance(rec, GeminiRecorded)
        if not rec.rpc:
            return self.status(404, "NOT_FOUND", f"Requested entity was not found: {rec.path}", [])
        if rec.project is not None and rec.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            code, status, message, details = ERRORS["unauthenticated"]
            return self.status(code, status, message, details)
        if rec.rpc == "batchEmbedContents":
            return await self.embed(request, rec)
        if rec.rpc not in ("generateContent", "streamGenerateContent"):
            return self.status(400, "INVALID_ARGUMENT", f"Unknown method {rec.rpc}", [])
        script = await self.next_script(request)
        if script.kind == "error":
            return self.error(script)
        if script.error == "blocked":
            return self.json(self.blocked(rec), self.new_request_id())
        if rec.stream:
            return self.event_stream(self.events(rec, script), self.new_request_id(), script.chunk_delay_s)
        return self.json(self.response(rec, script), self.new_request_id())

    def queue_blocked(self) -> None:
        """Answer the next request as a prompt blocked by the safety filters (HTTP 200, no candidates)."""
        self.script.append(Script("text", text="", error="blocked"))

    # -- answers --------------------------------------------------------------------------------------

    def headers(self, request_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"server": "scaffolding on HTTPServer2", "x-content-type-options": "nosniff", **(extra or {})}

    def status(self, code: int, status: str, message: str, details: list[dict[str, Any]]) -> Response:
        error: dict[str, Any] = {"code": code, "message": message, "status": status}
        if details:
            error["details"] = details
        return self.json({"error": error}, "", code)

    def error(self, script: Script) -> Response:
        code, status, message, details = ERRORS[script.error]
        details = list(details)
        if script.retry_after is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{script.retry_after:g}s"}
            )
        return self.status(code, status, message, details)

    def parts(self, script: Script, text: str, model: str = "") -> list[dict[str, Any]]:
        """The answer's parts. A Gemini 3 model signs its first function call of a turn (``thoughtSignature``,
        opaque base64) and wants the signature back with that call in the next turn."""
        parts: list[dict[str, Any]] = [{"text": text}] if text else []
        for i, call in enumerate(script.tool_calls):
            part: dict[str, Any] = {
                "functionCall": {"name": call["name"], "args": json.loads(call["arguments"] or "{}")}
            }
            if model.startswith("gemini-3") and i == 0:
                part["thoughtSignature"] = base64.b64encode(f"sig:{self._response_id}:{call['name']}".encode()).decode()
            parts.append(part)
        return parts

    def usage(self, script: Script, done: bool) -> dict[str, int]:
        prompt, output = script.usage
        if not done:
            return {"promptTokenCount": prompt, "totalTokenCount": prompt}
        return {"promptTokenCount": prompt, "candidatesTokenCount": output, "totalTokenCount": prompt + output}

    def chunk(self, rec: GeminiRecorded, parts: list[dict[str, Any]], script: Script, done: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if done:
            candidate["finishReason"] = script.finish_reason or "STOP"
        return {
            "candidates": [candidate],
            "usageMetadata": self.usage(script, done),
            "modelVersion": rec.model,
            "responseId": self._response_id,
        }

    def response(self, rec: GeminiRecorded, script: Script) -> dict[str, Any]:
        self._response_id = self.new_request_id()[4:]
        return self.chunk(rec, self.parts(script, script.text, rec.model), script, done=True)

    def events(self, rec: GeminiRecorded, script: Script) -> list[bytes]:
        self._response_id = self.new_request_id()[4:]
        pieces = split_text(script.text) if script.text else []
        events = [self.chunk(rec, [{"text": p}], script, done=False) for p in pieces[:-1]]
        last = pieces[-1] if pieces else ""
        events.append(self.chunk(rec, self.parts(script, last, rec.model), script, done=True))
        return [f"data: {json.dumps(e, separators=(',', ':'))}\r\n\r\n".encode() for e in events]

    def blocked(self, rec: GeminiRecorded) -> dict[str, Any]:
        return {
            "promptFeedback": {
                "blockReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}],
            },
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
            "modelVersion": rec.model,
            "responseId": self.new_request_id()[4:],
        }

    async def embed(self, request: Request, rec: GeminiRecorded) -> Response:
        script = await self.next_script(request)
        if script.kind == "error":
            return self.error(script)
        texts = [
            "".join(p.get("text", "") for p in r.get("content", {}).get("parts", []))
            for r in (rec.json or {}).get("requests", [])
        ]
        return self.json({"embeddings": [{"values": fake_vector(t)} for t in texts]}, "")

    _response_id = ""


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _verified_claims(assertion: str, keys: dict[str, bytes]) -> dict[str, Any] | None:
    """The claims of an RS256 JWT whose issuer is a registered service account and whose signature verifies
    with its key, else ``None``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    try:
        head, body, signature = assertion.split(".")
        header, claims = json.loads(_b64decode(head)), json.loads(_b64decode(body))
        pem = keys.get(str(claims.get("iss")))
        if header.get("alg") != "RS256" or pem is None:
            return None
        key = serialization.load_pem_public_key(pem)
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(_b64decode(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return None
    return dict(claims)
