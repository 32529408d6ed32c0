"""The provider conformance kit: an opt-in pytest plugin shipped with the core.

Enable it with ``pytest -p llm_router.testing`` or ``pytest_plugins = ["llm_router.testing"]`` in a
``conftest.py``, then subclass :class:`ProviderConformance` in a test module and override these fixtures:

``provider_class``
    the :class:`~llm_router.Provider` subclass under test (installed, so its entry point registers it); or
    set the class attribute ``provider_type`` of the subclass to it.
``upstream``
    a running fake of the provider's API that satisfies :class:`Upstream` (below); :func:`serve_upstream`
    makes it from a fake's class (started once per test module, reset for each test).
``provider_params``
    the policy parameters that point the provider at ``upstream`` with ``api_key``
    (e.g. ``{"base_url": upstream.base_url, "api_key": api_key}``).
``model_id``
    a model name the provider accepts (``gpt-4o-mini``).

Optional: ``api_key`` (a distinctive fake key), and the class attribute ``key_env`` (the environment
variable the provider reads its key from; ``None`` when a key is optional).

The upstream scripting protocol (:class:`Upstream`): a fake answers each request with the next scripted
behaviour, or with a default text when nothing is queued:

- ``base_url``: where the SDK should send requests.
- ``queue_text(text, *, usage=(input_tokens, output_tokens), tool_calls=(), chunk_delay_s=0.0)``: answer
  with ``text`` (streamed in several events when the request streams, the last reporting ``usage``);
  ``tool_calls`` are dicts ``{"id", "name", "arguments"}``; ``chunk_delay_s`` pauses between stream events.
- ``queue_error(kind, *, retry_after=None)``: answer with the API's documented error for ``kind``:
  ``"rate_limit"`` (429, with a ``retry-after`` header when given), ``"auth"`` (401), ``"context_length"``
  (400), ``"server"`` (500) or ``"overloaded"`` (503, or 529 for Anthropic). Every error carries a request id.
- ``queue_stall(seconds)``: send nothing for ``seconds``, then answer with the default text.
- ``requests``: every request received, each with ``path``, ``headers`` (lower-case names) and ``json``; an
  API that names the model or the streaming mode in the URL rather than the body (Gemini) records them as
  ``model`` and ``stream`` attributes, which the kit then reads instead of ``json["model"]`` / ``json["stream"]``.
- ``open_streams`` / ``closed_streams``: streamed responses still being sent / ended (finished or
  abandoned by the client).

Optional attributes of the upstream, for APIs whose documented errors differ: ``auth_status`` (the HTTP
status of the ``"auth"`` error, default 401; the Gemini API answers a bad key with 400) and
``error_request_ids`` (``False`` when the API sends no request id with an error; default ``True``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import anyio
import pytest

from llm_router.components import ComponentContext, Provider
from llm_router.errors import (
    AuthenticationError,
    ContextLengthExceededError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from llm_router.errors import TimeoutError as ProviderTimeoutError
from llm_router.policy import Policy
from llm_router.state import MemoryState
from llm_router.types import CompletionRequest, Message, StreamChunk

__all__ = ["ProviderConformance", "RecordedRequest", "Upstream", "make_provider", "request_for", "serve_upstream"]

FAKE_KEY = "sk-llmrouter-conformance-7f3a9c1e5b2d4680SECRET"


class RecordedRequest(Protocol):
    path: str
    headers: Mapping[str, str]
    json: Any


class Upstream(Protocol):
    """What the ``upstream`` fixture must provide (see the module docstring)."""

    @property
    def base_url(self) -> str: ...

    requests: Sequence[RecordedRequest]
    open_streams: int
    closed_streams: int

    def queue_text(
        self,
        text: str = ...,
        *,
        usage: tuple[int, int] = ...,
        tool_calls: Iterable[dict[str, Any]] = ...,
        chunk_delay_s: float = ...,
    ) -> None: ...

    def queue_error(self, kind: str, *, retry_after: float | None = None) -> None: ...

    def queue_stall(self, seconds: float) -> None: ...


class Resettable(Protocol):
    def reset(self) -> None: ...


_U = TypeVar("_U", bound=Resettable)


def serve_upstream(factory: Callable[[], AbstractContextManager[_U]], name: str) -> tuple[Any, Any]:
    """Two fixtures for a fake upstream, to bind in a test module or ``conftest.py``::

        fake_tinychat, upstream = serve_upstream(FakeTinyChat, "fake_tinychat")

    ``name`` (module scope) enters ``factory()`` once per test module and leaves it after the module's last
    test (a fake server starts and stops); ``upstream`` hands it to each test after ``reset()`` (its script
    and recorded requests cleared)."""

    @pytest.fixture(scope="module", name=name)
    def running() -> Iterator[_U]:
        with factory() as fake:
            yield fake

    @pytest.fixture(name="upstream")
    def upstream(request: pytest.FixtureRequest) -> _U:
        fake: _U = request.getfixturevalue(name)
        fake.reset()
        return fake

    return running, upstream


def make_provider(cls: type[Provider], params: Mapping[str, Any], name: str = "under_test") -> Provider:
    """An instance of provider ``cls`` as the router would build it for ``providers: {name: params}``."""
    config = cls.Config.model_validate(dict(params))
    context = ComponentContext(
        name=name, policy_dir=Path.cwd(), taxonomy=Policy().build_taxonomy(), state=MemoryState()
    )
    return cls(config, context)


def request_for(model: str, text: str = "Say hello.", **fields: Any) -> CompletionRequest:
    """A small completion request for ``model``."""
    messages = (Message(role="system", content="You are terse."), Message(role="user", content=text))
    return CompletionRequest(model=model, messages=messages, timeout_s=fields.pop("timeout_s", 10.0), **fields)


def sent_model(sent: RecordedRequest) -> Any:
    """The model a recorded request names: its ``model`` attribute (from the URL) or the body's ``model``."""
    model = getattr(sent, "model", None)
    return model if model else sent.json["model"]


def sent_stream(sent: RecordedRequest) -> Any:
    """Whether a recorded request asked for a stream: its ``stream`` attribute or the body's ``stream``."""
    stream = getattr(sent, "stream", None)
    return stream if stream is not None else sent.json.get("stream")


async def collect(stream: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [chunk async for chunk in stream]


async def wait_until(predicate: Any, limit_s: float = 5.0) -> bool:
    """Poll ``predicate()`` until it is true or ``limit_s`` passes (a bound on waiting, not a timing check)."""
    with anyio.move_on_after(limit_s):
        while not predicate():  # noqa: ASYNC110 - polls a plain predicate: there is no event to wait on
            await anyio.sleep(0.02)
    return bool(predicate())


# --------------------------------------------------------------------------------------------------
# Fixtures (override provider_class, upstream, provider_params, model_id)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def api_key() -> str:
    return FAKE_KEY


@pytest.fixture
def provider_class() -> type[Provider]:
    raise NotImplementedError("override the `provider_class` fixture")


@pytest.fixture
def upstream() -> Upstream:
    raise NotImplementedError("override the `upstream` fixture with a running fake of the provider's API")


@pytest.fixture
def provider_params(upstream: Upstream, api_key: str) -> dict[str, Any]:
    return {"base_url": upstream.base_url, "api_key": api_key}


@pytest.fixture
def model_id() -> str:
    raise NotImplementedError("override the `model_id` fixture")


@pytest.fixture
async def provider(provider_class: type[Provider], provider_params: dict[str, Any]) -> AsyncIterator[Provider]:
    instance = make_provider(provider_class, provider_params)
    yield instance
    await instance.aclose()


# --------------------------------------------------------------------------------------------------


@pytest.mark.anyio
class ProviderConformance:
    """Tests every provider must pass. Subclass it and override the fixtures above."""

    key_env: ClassVar[str | None] = None
    """The environment variable the provider reads its key from (``None``: a key is optional)."""

    provider_type: ClassVar[type[Provider] | None] = None
    """The provider class under test, when the subclass does not override the ``provider_class`` fixture."""

    @pytest.fixture
    def provider_class(self) -> type[Provider]:
        if self.provider_type is None:
            raise NotImplementedError("set `provider_type` or override the `provider_class` fixture")
        return self.provider_type

    # -- completion and streaming ------------------------------------------------------------------

    async def test_complete_returns_text_and_usage(
        self, provider: Provider, upstream: Upstream, model_id: str, api_key: str
    ) -> None:
        upstream.queue_text("Bonjour tout le monde", usage=(21, 5))
        response = await provider.complete(request_for(model_id, max_tokens=50, temperature=0.2))
        assert response.text == "Bonjour tout le monde"
        assert response.usage is not None
        assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 5)
        assert response.request_id
        sent = upstream.requests[-1]
        assert sent_model(sent) == model_id
        assert any(api_key in value for value in sent.headers.values()), "the key was not sent"

    async def test_stream_yields_text_then_usage(self, provider: Provider, upstream: Upstream, model_id: str) -> None:
        upstream.queue_text("one two three four", usage=(9, 4))
        chunks = await collect(provider.stream(request_for(model_id)))
        assert "".join(c.text for c in chunks) == "one two three four"
        assert sum(1 for c in chunks if c.text) > 1, "the answer should arrive in several chunks"
        assert chunks[-1].usage is not None
        assert (chunks[-1].usage.input_tokens, chunks[-1].usage.output_tokens) == (9, 4)
        assert sent_stream(upstream.requests[-1]) is True

    async def test_cost_from_reported_usage(
        self,
        provider_class: type[Provider],
        provider_params: dict[str, Any],
        upstream: Upstream,
        model_id: str,
    ) -> None:
        from llm_router.router import Router

        policy = {
            "providers": {"under_test": {"type": provider_class.name, **provider_params}},
            "models": [
                {
                    "id": f"under_test/{model_id}",
                    "context_window": 100_000,
                    "max_output_tokens": 4096,
                    "price": {"input_per_mtok": 2.0, "output_per_mtok": 10.0},
                }
            ],
            "classify": [{"rules": {"threshold": 0.0}}],
            "routes": [{"models": [f"under_test/{model_id}"]}],
            "fallback": {"retries": 0},
        }
        router = Router(policy)
        try:
            upstream.queue_text("priced answer", usage=(1000, 200))
            result = await router.aroute_and_execute("hello", max_tokens=300)
            assert (result.usage.input_tokens, result.usage.output_tokens) == (1000, 200)
            assert result.cost == pytest.approx((1000 * 2.0 + 200 * 10.0) / 1e6)
            upstream.queue_text("streamed priced answer", usage=(500, 100))
            routed = await router.astream("hello again", max_tokens=300)
            text = "".join([chunk.text async for chunk in routed])
            assert text == "streamed priced answer"
            assert routed.result is not None
            assert routed.result.cost == pytest.approx((500 * 2.0 + 100 * 10.0) / 1e6)
        finally:
            await router.aclose()

    # -- errors -----------------------------------------------------------------------------------

    async def test_rate_limit_with_retry_after(self, provider: Provider, upstream: Upstream, model_id: str) -> None:
        upstream.queue_error("rate_limit", retry_after=7)
        with pytest.raises(RateLimitError) as info:
            await provider.complete(request_for(model_id))
        err = info.value
        assert err.retry_after_s == pytest.approx(7)
        assert err.status_code == 429
        assert err.retryable
        assert (err.provider, err.model) == ("under_test", model_id)
        if getattr(upstream, "error_request_ids", True):
            assert err.request_id

    async def test_authentication_error_names_the_key_setting(
        self, provider: Provider, upstream: Upstream, model_id: str, api_key: str
    ) -> None:
        upstream.queue_error("auth")
        with pytest.raises(AuthenticationError) as info:
            await provider.complete(request_for(model_id))
        err = info.value
        assert err.status_code == getattr(upstream, "auth_status", 401)
        assert not err.retryable
        assert "api_key" in str(err)
        if self.key_env:
            assert self.key_env in str(err)
        assert api_key not in str(err)
        assert api_key not in repr(err)

    async def test_context_length(self, provider: Provider, upstream: Upstream, model_id: str) -> None:
        upstream.queue_error("context_length")
        with pytest.raises(ContextLengthExceededError) as info:
            await provider.complete(request_for(model_id))
        assert info.value.status_code == 400
        assert not info.value.retryable

    async def test_server_error_is_retryable(self, provider: Provider, upstream: Upstream, model_id: str) -> None:
        upstream.queue_error("server")
        with pytest.raises(ServerError) as info:
            await provider.complete(request_for(model_id))
        assert info.value.retryable
        assert info.value.status_code is not None
        assert info.value.status_code >= 500
        if getattr(upstream, "error_request_ids", True):
            assert info.value.request_id

    async def test_errors_while_streaming_are_typed(
        self, provider: Provider, upstream: Upstream, model_id: str
    ) -> None:
        upstream.queue_error("rate_limit", retry_after=3)
        with pytest.raises(RateLimitError) as info:
            await collect(provider.stream(request_for(model_id)))
        assert info.value.retry_after_s == pytest.approx(3)

    async def test_no_sdk_retries(self, provider: Provider, upstream: Upstream, model_id: str) -> None:
        upstream.queue_error("server")
        upstream.queue_text("second answer")
        with pytest.raises(ServerError):
            await provider.complete(request_for(model_id))
        assert len(upstream.requests) == 1, "the SDK retried on its own; retries are the router's job"

    async def test_stall_becomes_timeout(self, provider: Provider, upstream: Upstream, model_id: str) -> None:
        upstream.queue_stall(3)
        with pytest.raises(ProviderTimeoutError) as info:
            await provider.complete(request_for(model_id, timeout_s=0.3))
        assert info.value.retryable

    async def test_stream_stall_becomes_timeout(self, provider: Provider, upstream: Upstream, model_id: str) -> None:
        upstream.queue_stall(3)
        with pytest.raises(ProviderTimeoutError):
            await collect(provider.stream(request_for(model_id, timeout_s=0.3)))

    # -- secrets ----------------------------------------------------------------------------------

    async def test_key_never_leaks(
        self,
        provider: Provider,
        upstream: Upstream,
        model_id: str,
        api_key: str,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.DEBUG)
        assert api_key not in repr(provider)
        assert api_key not in str(provider)
        assert api_key not in repr(provider.config)
        assert api_key not in str(provider.config)
        assert api_key not in provider.config.model_dump_json()
        upstream.queue_text("fine")
        response = await provider.complete(request_for(model_id))
        assert api_key not in response.model_dump_json()
        chunks = await collect(provider.stream(request_for(model_id)))
        assert all(api_key not in c.model_dump_json() for c in chunks)
        for kind in ("auth", "rate_limit", "server", "context_length"):
            upstream.queue_error(kind)
            with pytest.raises(ProviderError) as info:
                await provider.complete(request_for(model_id))
            assert api_key not in str(info.value)
            assert api_key not in repr(info.value)
            assert api_key not in str(info.value.args)
        for record in caplog.records:
            assert api_key not in record.getMessage()
            assert api_key not in repr(record.__dict__)

    async def test_unavailable_without_key(
        self, provider_class: type[Provider], provider_params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        params = {k: v for k, v in provider_params.items() if k != "api_key"}
        if self.key_env is None:
            assert make_provider(provider_class, params).unavailable_reason() is None
            return
        monkeypatch.delenv(self.key_env, raising=False)
        reason = make_provider(provider_class, params).unavailable_reason()
        assert reason is not None
        assert self.key_env in reason
        assert "api_key" in reason
        monkeypatch.setenv(self.key_env, FAKE_KEY)
        assert make_provider(provider_class, params).unavailable_reason() is None

    # -- cancellation -------------------------------------------------------------------------------

    async def test_cancelling_a_stream_closes_the_upstream_request(
        self, provider: Provider, upstream: Upstream, model_id: str
    ) -> None:
        upstream.queue_text("a b c d e f g h i j k l m n o p", chunk_delay_s=0.5)
        received: list[StreamChunk] = []
        with anyio.CancelScope() as scope:
            async for chunk in provider.stream(request_for(model_id)):
                received.append(chunk)
                if chunk.text:
                    scope.cancel()
        assert received
        assert len(received) < 10
        assert await wait_until(lambda: upstream.open_streams == 0 and upstream.closed_streams >= 1)

    async def test_closing_a_stream_early_closes_the_upstream_request(
        self, provider: Provider, upstream: Upstream, model_id: str
    ) -> None:
        upstream.queue_text("a b c d e f g h i j k l m n o p", chunk_delay_s=0.5)
        stream = provider.stream(request_for(model_id))
        iterator = stream.__aiter__()
        first = await iterator.__anext__()
        while not first.text:
            first = await iterator.__anext__()
        await iterator.aclose()  # type: ignore[attr-defined]
        assert await wait_until(lambda: upstream.open_streams == 0 and upstream.closed_streams >= 1)
