"""KeyedProvider: one client per key, a rotated key gets a new client, every client is closed."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import anyio
import pytest
from llm_router.components import ApiKeyConfig, ComponentContext, KeyedProvider
from llm_router.state import MemoryState
from llm_router.taxonomy import DEFAULT_TASKS, Taxonomy


class FakeClient:
    def __init__(self, key: str | None) -> None:
        self.key = key
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class Keyed(KeyedProvider):
    name: ClassVar[str] = "keyed"
    Config = ApiKeyConfig
    default_key_env: ClassVar[str | None] = "KEYED_TEST_API_KEY"


def make_provider() -> Keyed:
    context = ComponentContext(
        name="keyed", policy_dir=Path("."), taxonomy=Taxonomy(tasks=dict(DEFAULT_TASKS)), state=MemoryState()
    )
    return Keyed(ApiKeyConfig(), context)


def test_rotated_key_gets_a_new_client_and_every_client_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = make_provider()
    monkeypatch.setenv("KEYED_TEST_API_KEY", "sk-first")
    first = provider.keyed_client(FakeClient)
    assert provider.keyed_client(FakeClient) is first and first.key == "sk-first"
    monkeypatch.setenv("KEYED_TEST_API_KEY", "sk-second")
    second = provider.keyed_client(FakeClient)
    assert second is not first and second.key == "sk-second"
    assert not first.closed  # calls in flight may still use it
    anyio.run(provider.aclose)
    assert first.closed and second.closed
    third = provider.keyed_client(FakeClient)  # usable again after closing: a fresh client
    assert third is not second and not third.closed


class CountingClient(FakeClient):
    def __init__(self, key: str | None) -> None:
        super().__init__(key)
        self.closes = 0

    async def close(self) -> None:
        self.closes += 1


def test_closing_one_provider_leaves_the_others_clients_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYED_TEST_API_KEY", "sk-one")
    first, second = make_provider(), make_provider()
    a, b = first.keyed_client(CountingClient), second.keyed_client(CountingClient)
    anyio.run(first.aclose)
    anyio.run(second.aclose)
    assert (a.closes, b.closes) == (1, 1)  # each closed once, by its own provider


def test_slots_keep_separate_clients_per_key_and_all_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = make_provider()
    monkeypatch.setenv("KEYED_TEST_API_KEY", "sk-one")
    sdk, own = provider.keyed_client(FakeClient), provider.keyed_client(FakeClient, slot="session")
    assert sdk is not own and provider.keyed_client(FakeClient, slot="session") is own
    monkeypatch.setenv("KEYED_TEST_API_KEY", "sk-two")
    own2 = provider.keyed_client(FakeClient, slot="session")
    assert own2 is not own and own2.key == "sk-two"
    anyio.run(provider.aclose)
    assert sdk.closed and own.closed and own2.closed


class TwoVariables(Keyed):
    default_key_env: ClassVar[str | None] = "KEYED_TEST_SECOND"
    default_key_envs: ClassVar[tuple[str, ...]] = ("KEYED_TEST_FIRST", "KEYED_TEST_SECOND")


def test_several_sdk_variables_in_the_sdks_order(monkeypatch: pytest.MonkeyPatch) -> None:
    context = ComponentContext(
        name="two", policy_dir=Path("."), taxonomy=Taxonomy(tasks=dict(DEFAULT_TASKS)), state=MemoryState()
    )
    provider = TwoVariables(ApiKeyConfig(), context)
    for env in ("KEYED_TEST_FIRST", "KEYED_TEST_SECOND", "KEYED_TEST_CHOSEN"):
        monkeypatch.delenv(env, raising=False)
    assert (
        provider.unavailable_reason()
        == "set KEYED_TEST_SECOND or KEYED_TEST_FIRST (or providers.two.api_key in the policy)"
    )
    monkeypatch.setenv("KEYED_TEST_SECOND", "sk-second")
    assert provider.api_key() == "sk-second"
    monkeypatch.setenv("KEYED_TEST_FIRST", "sk-first")
    assert provider.api_key() == "sk-first", "the first variable in the SDK's order wins"
    chosen = TwoVariables(ApiKeyConfig(api_key_env="KEYED_TEST_CHOSEN"), context)
    assert chosen.api_key() is None, "api_key_env replaces the SDK's variables"
    assert chosen.key_hint() == "set KEYED_TEST_CHOSEN (or providers.two.api_key in the policy)"
