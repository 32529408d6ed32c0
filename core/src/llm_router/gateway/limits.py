"""The in-process key book: budgets on the ledger's spend totals, rate windows as sliding logs.

Exact within one process (every check-and-hold happens under one lock). With ``serve --workers N`` and no
shared state each worker has its own book, refreshed from the shared ledger every few seconds: use
``state: {backend: redis}`` for budgets exact across workers and instances (docs/reliability.md).
"""

from __future__ import annotations

import threading
from collections import deque

from ..limits import WINDOW_S, Hold, LimitRefused, check_budgets, rate_message, remaining_of
from ..policy import GatewayKey
from .ledger import SpendCache

__all__ = ["MemoryBook"]


class MemoryBook:
    """:class:`~llm_router.limits.KeyBook` in this process."""

    backend = "memory"

    def __init__(self, spend: SpendCache) -> None:
        self.spend = spend
        self._lock = threading.Lock()
        self._windows: dict[str, deque[list[float]]] = {}
        """Per key: [admission time, tokens held] of each request of the last minute, oldest first."""

    def remaining(self, key: GatewayKey, now: float) -> float | None:
        if key.budget_usd_per_day is None and key.budget_usd_per_month is None:
            return None
        return remaining_of(key, *self.spend.totals(key.id, now))

    def spent(self, key_id: str, now: float) -> tuple[float, float, float]:
        return self.spend.totals(key_id, now)

    async def admit(self, key: GatewayKey, request_id: str, cost: float, tokens: int, now: float) -> Hold:
        return self.admit_now(key, request_id, cost, tokens, now)

    def admit_now(self, key: GatewayKey, request_id: str, cost: float, tokens: int, now: float) -> Hold:
        """:meth:`admit` without awaiting (the Redis book falls back to it during an outage)."""
        with self._lock:
            entry = self._check_rates(key, tokens, now)

            def check(day: float, month: float, reserved: float) -> None:
                check_budgets(key, day, month, reserved, cost)

            budgeted = key.budget_usd_per_day is not None or key.budget_usd_per_month is not None
            if budgeted:
                self.spend.try_reserve(key.id, cost, check, now)
            if entry is not None:
                self._windows.setdefault(key.id, deque()).append(entry)
        return Hold(key.id, request_id, cost if budgeted else 0.0, tokens, now, window=entry)

    def _check_rates(self, key: GatewayKey, tokens: int, now: float) -> list[float] | None:
        if key.rpm is None and key.tpm is None:
            return None
        window = self._windows.get(key.id)
        if window:
            while window and window[0][0] <= now - WINDOW_S:
                window.popleft()
        requests = len(window) if window else 0
        used = int(sum(e[1] for e in window)) if window else 0
        oldest = window[0][0] if window else now
        retry = max(0.0, oldest + WINDOW_S - now)
        if key.rpm is not None and requests + 1 > key.rpm:
            raise LimitRefused("rpm", rate_message(key.id, "requests-per-minute", key.rpm, requests, 1), retry)
        if key.tpm is not None and used + tokens > key.tpm:
            message = rate_message(key.id, "tokens-per-minute", key.tpm, used, tokens)
            raise LimitRefused("tpm", message, retry if requests else None)
        return [now, float(tokens)]

    def settle(self, hold: Hold, cost: float, tokens: int, now: float) -> None:
        if hold.settled:
            return
        hold.settled = True
        if hold.window is not None:
            with self._lock:
                hold.window[1] = float(tokens)
        self.spend.settle(hold.key_id, hold.cost, cost, now)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
