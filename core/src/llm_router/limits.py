"""Per-key limits: budgets (USD per UTC day and month) and rates (requests and tokens per minute).

A request of a limited key is admitted by :meth:`KeyBook.admit`, which in one atomic step checks every limit
and holds the request's worst-case cost (:func:`worst_case_cost`: the counted prompt plus the maximum output
at the model's prices) and its tokens; :meth:`KeyBook.settle` replaces the hold by what the request really
cost (or releases it when nothing was produced). Because every admitted request holds its worst case until
it settles, concurrent requests can never together spend more than the budget: the overspend bound is zero
as long as a provider bills no more than the counted prompt (plus :data:`PROMPT_MARGIN` for models whose
tokenizer the router only estimates) and the max output it was asked for.

Two books implement it: :class:`llm_router.gateway.limits.MemoryBook` (one process) and
:class:`llm_router.redis_state.RedisBook` (every gateway instance and worker, atomic in a Lua script).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from .policy import GatewayKey
    from .types import ModelInfo

__all__ = [
    "BUDGET_REASON",
    "PROMPT_MARGIN",
    "Hold",
    "KeyBook",
    "LimitRefused",
    "output_cap",
    "worst_case_cost",
]

BUDGET_REASON = "worst-case cost"
"""How the ``cost`` constraint's budget rejections begin (the gateway answers them 429, not 400)."""

PROMPT_MARGIN = 0.05
"""Head-room on the counted prompt of a model whose tokenizer the router only estimates."""

WINDOW_S = 60
"""The rate windows: requests and tokens in the last 60 seconds."""


def output_cap(model: ModelInfo, max_tokens: int | None, default_max_tokens: int | None = None) -> int | None:
    """The ``max_tokens`` a call to ``model`` asks for: the request's, else its default cap (``default_max_tokens``,
    within the model's max output), else none (the provider's own limit)."""
    if max_tokens is not None or default_max_tokens is None:
        return max_tokens
    return min(default_max_tokens, model.max_output_tokens)


def worst_case_output(model: ModelInfo, max_tokens: int | None, default_max_tokens: int | None = None) -> int:
    """The most output tokens a call may produce: what it asks for (:func:`output_cap`), else the model's
    maximum. Exact only because the cap is sent upstream as the call's ``max_tokens``."""
    cap = output_cap(model, max_tokens, default_max_tokens)
    return cap if cap is not None else model.max_output_tokens


def worst_case_prompt(model: ModelInfo, input_tokens: int) -> int:
    return input_tokens if model.tokenizer_exact else math.ceil(input_tokens * (1 + PROMPT_MARGIN))


def worst_case_cost(
    model: ModelInfo, input_tokens: int, max_tokens: int | None, default_max_tokens: int | None = None
) -> float:
    """USD a call may cost at most: the counted prompt and the maximum output at ``model``'s prices."""
    price = model.price
    return (
        worst_case_prompt(model, input_tokens) * price.input_per_mtok
        + worst_case_output(model, max_tokens, default_max_tokens) * price.output_per_mtok
    ) / 1_000_000


@dataclass(slots=True)
class Hold:
    """What one admitted request holds until it settles."""

    key_id: str
    request_id: str
    cost: float
    """USD held against the key's budgets (its worst case)."""
    tokens: int
    """Tokens held in the key's tokens-per-minute window (prompt + max or expected output)."""
    at: float
    """Epoch seconds of the admission."""
    shared: bool = False
    """Held in the shared store (Redis); ``False``: in this process only."""
    settled: bool = False
    window: list[float] | None = None
    """The in-process rate window's entry of this request ([time, tokens]), updated when it settles."""


class LimitRefused(Exception):
    """A request a key's limits do not allow now (answered 429, or 503 for ``state``)."""

    def __init__(
        self, reason: Literal["budget", "rpm", "tpm", "state"], message: str, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after_s = retry_after_s


class KeyBook(Protocol):
    """Budgets and rate windows of the gateway's keys."""

    backend: str

    def remaining(self, key: GatewayKey, now: float) -> float | None:
        """USD the key may still commit now (``None``: no budget). A local read, never waits."""

    def spent(self, key_id: str, now: float) -> tuple[float, float, float]:
        """(spent today, spent this month, held by requests in flight) in USD, as last seen."""

    async def admit(self, key: GatewayKey, request_id: str, cost: float, tokens: int, now: float) -> Hold:
        """Check every limit of ``key`` and hold ``cost`` and ``tokens`` atomically.

        :raises LimitRefused: a limit does not allow it; the message says which, what was spent and held."""

    def settle(self, hold: Hold, cost: float, tokens: int, now: float) -> None:
        """Replace ``hold`` by the real ``cost`` and ``tokens`` (never blocks; idempotent)."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def budget_message(key_id: str, period: str, budget: float, spent: float, reserved: float, cost: float) -> str:
    return (
        f"{period} budget of key {key_id!r} exceeded: ${spent:.6f} spent and ${reserved:.6f} reserved by requests "
        f"in flight, of ${budget:.6f}; this request may cost up to ${cost:.6f} (its prompt and max output: "
        "a lower max_tokens may fit)"
    )


def check_budgets(key: GatewayKey, day: float, month: float, reserved: float, cost: float) -> None:
    """Raise :class:`LimitRefused` when holding ``cost`` more would break a budget of ``key``."""
    for spent, budget, period in ((day, key.budget_usd_per_day, "daily"), (month, key.budget_usd_per_month, "monthly")):
        if budget is not None and spent + reserved + cost > budget + 1e-12:
            raise LimitRefused("budget", budget_message(key.id, period, budget, spent, reserved, cost))


def remaining_of(key: GatewayKey, day: float, month: float, reserved: float) -> float | None:
    out: float | None = None
    for spent, budget in ((day, key.budget_usd_per_day), (month, key.budget_usd_per_month)):
        if budget is not None:
            left = max(0.0, budget - spent - reserved)
            out = left if out is None else min(out, left)
    return out


def rate_message(key_id: str, what: str, limit: int, used: int, asked: int) -> str:
    return f"{what} limit of key {key_id!r} reached: {used} used in the last {WINDOW_S} s of {limit}" + (
        f"; this request holds {asked}" if what == "tokens-per-minute" else ""
    )
