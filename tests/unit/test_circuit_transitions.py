"""A circuit's transitions (open, half_open, closed) reach the transition listeners and the log once each,
whether the circuit changed here or in the fleet's shared snapshot (``MemoryState.replace``)."""

from __future__ import annotations

import logging

import pytest
from llm_router import state as state_module
from llm_router.state import MemoryState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(state_module.time, "monotonic", fake)
    return fake


def watched(threshold: int = 3, cooldown_s: float = 30.0) -> tuple[MemoryState, list[tuple[str, str]]]:
    store = MemoryState(failure_threshold=threshold, cooldown_s=cooldown_s)
    seen: list[tuple[str, str]] = []
    store.transition_listeners.append(lambda key, to: seen.append((key, to)))
    return store, seen


def test_open_half_open_reopen_and_close_are_each_announced_once(clock: Clock) -> None:
    store, seen = watched()
    for _ in range(2):
        store.record_failure("m", "server_error")
    assert seen == []  # below the threshold
    store.record_failure("m", "server_error")
    store.record_failure("m", "server_error")  # a late failure of a call already in flight
    assert seen == [("m", "open")]
    assert store.open_circuit_reason("m") is not None
    clock.now += 31
    assert store.open_circuit_reason("m") is None
    assert store.open_circuit_reason("m") is None  # still half-open: announced once
    assert seen == [("m", "open"), ("m", "half_open")]
    store.record_failure("m", "timeout")  # the trial call failed
    assert seen[-1] == ("m", "open")
    clock.now += 31
    store.open_circuit_reason("m")
    store.record_success("m", None, None)
    store.record_success("m", None, None)  # already closed: nothing more
    assert seen == [("m", "open"), ("m", "half_open"), ("m", "open"), ("m", "half_open"), ("m", "closed")]


def test_a_success_on_a_closed_circuit_announces_nothing(clock: Clock) -> None:
    store, seen = watched()
    store.record_failure("m", "server_error")
    store.record_success("m", 100.0, 50.0)
    assert seen == []


def test_the_fleets_snapshot_announces_what_other_instances_changed(clock: Clock) -> None:
    store, seen = watched()
    store.replace({"m@p/x": (3, clock.now)}, {})  # another instance opened it
    store.replace({"m@p/x": (3, clock.now)}, {})  # unchanged
    assert seen == [("m@p/x", "open")]
    store.replace({"m@p/x": (3, None)}, {})  # this instance won the probe: calls go through
    assert seen[-1] == ("m@p/x", "half_open")
    store.record_success("m@p/x", None, None)  # the probe succeeded
    assert seen[-1] == ("m@p/x", "closed")
    store.replace({"m@p/x": (4, clock.now)}, {})
    store.replace({}, {})  # another instance's probe closed it
    assert seen[-2:] == [("m@p/x", "open"), ("m@p/x", "closed")]


def test_each_transition_is_logged_with_its_deployment(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    store, _ = watched(threshold=1)
    with caplog.at_level(logging.INFO, logger="llm_router.state"):
        store.record_failure("m@p/x", "server_error")
    record = next(r for r in caplog.records if r.getMessage() == "circuit m@p/x -> open")
    assert (record.deployment, record.to_state) == ("m@p/x", "open")  # type: ignore[attr-defined]
