"""Vertex AI with a project: the real google-genai SDK and google-auth against the fake, end to end.

The provider runs in Vertex mode (``vertexai: true``, ``project``, ``location``) with application default
credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` names a service-account key file made here (a fresh RSA key),
whose ``token_uri`` is the fake's OAuth 2 token endpoint. google-auth signs a JWT-bearer grant with that key,
the fake checks the signature and issues an access token, and the SDK sends it as ``Authorization: Bearer`` on
the project-scoped Vertex path. Nothing leaves the machine.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fakes import FakeGemini
from fakes.gemini_api import GeminiRecorded
from llm_router.errors import AuthenticationError
from llm_router.testing import collect, make_provider, request_for
from llm_router_google import GoogleProvider

pytestmark = pytest.mark.anyio

EMAIL = "router-test@adc-project.iam.gserviceaccount.com"
PATH = "/v1beta1/projects/my-project/locations/europe-west4/publishers/google/models/gemini-2.5-flash"


def _key_file(directory: Path, token_uri: str) -> tuple[Path, bytes]:
    """A service-account key file (the JSON Google issues) with a new key, and that key's public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "adc-project",
        "private_key_id": "0123456789abcdef",
        "private_key": private,
        "client_email": EMAIL,
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    path = directory / "service-account.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public


@pytest.fixture
def adc(upstream: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """Application default credentials pointing at the fake; returns the registered public key."""
    for env in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        monkeypatch.delenv(env, raising=False)
    path, public = _key_file(tmp_path, f"{upstream.base_url}/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return public


@pytest.fixture(params=["aiohttp", "httpx"])
async def vertex(request: pytest.FixtureRequest, upstream: FakeGemini) -> AsyncIterator[GoogleProvider]:
    params: dict[str, Any] = {
        "vertexai": True,
        "project": "my-project",
        "location": "europe-west4",
        "base_url": upstream.base_url,
        "http_client": request.param,
    }
    p = make_provider(GoogleProvider, params, name="google")
    assert isinstance(p, GoogleProvider)
    assert p.unavailable_reason() is None, "a project means credentials come from ADC, no API key needed"
    yield p
    await p.aclose()


def _sent(upstream: FakeGemini) -> GeminiRecorded:
    sent = upstream.last
    assert isinstance(sent, GeminiRecorded)
    return sent


async def test_vertex_project_calls_with_adc_service_account(
    vertex: GoogleProvider, upstream: FakeGemini, adc: bytes
) -> None:
    upstream.add_service_account(EMAIL, adc)
    upstream.queue_text("Bonjour.", usage=(9, 3))
    response = await vertex.complete(request_for("gemini-2.5-flash", max_tokens=20))
    assert response.text == "Bonjour."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (9, 3)  # type: ignore[union-attr]
    sent = _sent(upstream)
    assert sent.path == f"{PATH}:generateContent"
    assert (sent.project, sent.location, sent.version) == ("my-project", "europe-west4", "v1beta1")
    assert len(upstream.tokens) == 1
    assert sent.headers["authorization"] == f"Bearer {upstream.tokens[0]}"
    assert "x-goog-api-key" not in sent.headers
    assert sent.json["generationConfig"]["maxOutputTokens"] == 20

    upstream.queue_text("one two three")
    chunks = await collect(vertex.stream(request_for("gemini-2.5-flash")))
    assert "".join(c.text for c in chunks) == "one two three"
    assert chunks[-1].usage is not None
    sent = _sent(upstream)
    assert sent.path == f"{PATH}:streamGenerateContent"
    assert sent.stream
    assert sent.headers["authorization"] == f"Bearer {upstream.tokens[0]}", "the token is reused until it expires"
    assert len(upstream.tokens) == 1


async def test_vertex_credentials_the_token_endpoint_refuses(
    vertex: GoogleProvider, upstream: FakeGemini, adc: bytes
) -> None:
    """A key Google does not know (here: no service account registered with the fake) fails as an
    authentication error naming application default credentials, with no key material in the message."""
    with pytest.raises(AuthenticationError) as info:
        await vertex.complete(request_for("gemini-2.5-flash"))
    message = str(info.value)
    assert "invalid_grant" in message
    assert "GOOGLE_APPLICATION_CREDENTIALS" in message
    assert "PRIVATE KEY" not in message
    assert upstream.tokens == []
    assert [r.path for r in upstream.requests] == [], "no model call without a token"


async def test_vertex_without_any_credentials(
    vertex: GoogleProvider, upstream: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ADC at all (no file, no gcloud configuration, no metadata server) is an authentication error too."""
    for env in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_CLOUD_PROJECT"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(AuthenticationError) as info:
        await vertex.complete(request_for("gemini-2.5-flash"))
    assert "DefaultCredentialsError" in str(info.value)
    assert upstream.requests == []


async def test_fake_refuses_vertex_project_calls_without_a_token(upstream: FakeGemini) -> None:
    """The fake's side of the contract: a project-scoped call with an API key instead of a token is 401."""
    import httpx

    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{upstream.base_url}{PATH}:generateContent",
            headers={"x-goog-api-key": "AIza-not-a-token"},
            json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        )
    assert answer.status_code == 401
    assert answer.json()["error"]["status"] == "UNAUTHENTICATED"
