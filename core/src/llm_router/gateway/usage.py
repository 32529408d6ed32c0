"""``GET /v1/usage/...``: the usage dashboard's JSON (and CSV) endpoints, for admin keys only.

Every figure comes from the ledger through :mod:`llm_router.gateway.usage_queries` (queries run in a worker
thread, never on the event loop), except budgets' in-flight reservations and the live state (circuit
breakers, measured latencies, provider readiness), which come from the running gateway and router.
See ``docs/web.md`` for each endpoint.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..types import Attempt, RoutingResult
from . import usage_queries as q
from .openai_types import GatewayHTTPError

if TYPE_CHECKING:
    from .app import Gateway

__all__ = ["UsageAPI", "fallback_note", "stream_report"]

DEFAULT_DAYS = 30
MAX_LIMIT = 1000
CSV_MAX_ROWS = 100_000
MAX_EPOCH = 253402214400.0  # 9999-12-31T00:00:00Z: every time stays a date Python can print
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _respond(data: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode(),
        status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def _bad(param: str, message: str) -> GatewayHTTPError:
    return GatewayHTTPError(422, f"invalid query parameter {param}: {message}", param=param, code="invalid_value")


def _time(param: str, raw: str, end_of_day: bool) -> float:
    """A ``YYYY-MM-DD`` date (UTC; as ``until``, the end of that day) or epoch seconds."""
    raw = raw.strip()
    if _DATE.match(raw):
        try:
            day = datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC)
            value = (day + timedelta(days=1 if end_of_day else 0)).timestamp()
        except (ValueError, OverflowError):
            raise _bad(param, f"{raw!r} is not a date between 1970-01-01 and 9999-12-30") from None
    else:
        try:
            value = float(raw)
        except ValueError:
            raise _bad(param, f"expected a date YYYY-MM-DD or epoch seconds, got {raw!r}") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_EPOCH):
        raise _bad(param, f"expected a date YYYY-MM-DD or epoch seconds (1970 to 9999), got {raw!r}")
    return value


def _int(request: Request, param: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(param)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(param, f"expected an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise _bad(param, f"must be between {low} and {high}, got {value}")
    return value


def filters(request: Request, now: float | None = None) -> q.Filters:
    """The ``since``/``until`` range (default: the last 30 UTC days, today included) and row filters of a
    usage request's query string."""
    params = request.query_params
    now = time.time() if now is None else now
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    since_raw, until_raw = params.get("since"), params.get("until")
    until = _time("until", until_raw, True) if until_raw else (today + timedelta(days=1)).timestamp()
    since = _time("since", since_raw, False) if since_raw else (today - timedelta(days=DEFAULT_DAYS - 1)).timestamp()
    if since >= until:
        raise _bad("since", "must be before until")
    text = {name: (params.get(name) or None) for name in ("model", "key", "task", "outcome", "q")}
    if text["q"] is not None and len(text["q"]) > 200:
        raise _bad("q", "at most 200 characters")
    return q.Filters(since, until, text["model"], text["key"], text["task"], text["outcome"], text["q"])


def _csv_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula gets a leading apostrophe (OWASP's advice)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class UsageAPI:
    """The ``/v1/usage/*`` endpoints of one gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.reader: q.LedgerReader = q.SQLiteReader(gateway.ledger.path)
        self.admins = frozenset(gateway.config.admin_keys)

    def routes(self) -> list[Route]:
        handlers: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "/v1/usage/summary": self.summary,
            "/v1/usage/by/{dimension}": self.by,
            "/v1/usage/budgets": self.budgets,
            "/v1/usage/live": self.live,
            "/v1/usage/requests": self.requests,
            "/v1/usage/requests.csv": self.requests_csv,
        }
        return [Route(path, self._guarded(fn), methods=["GET"]) for path, fn in handlers.items()]

    def _guarded(self, fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                self.authorize(request)
                return await fn(request)
            except GatewayHTTPError as err:
                return Response(
                    json.dumps(err.body()).encode(), err.status, headers=err.headers, media_type="application/json"
                )

        return endpoint

    def authorize(self, request: Request) -> None:
        """Only admin keys (``gateway.admin_keys``) read usage; an open gateway (no keys) lets anyone."""
        key = self.gateway.authenticate(request)
        if key is None or key.id in self.admins:
            return
        hint = "" if self.admins else " (the policy lists no gateway.admin_keys)"
        raise GatewayHTTPError(
            403,
            f"key {key.id!r} is not an admin key: usage and the dashboard need a key of gateway.admin_keys{hint}",
            type="permission_error",
            code="admin_required",
            kind="auth",
        )

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(self.reader, *args, **kwargs))

    async def summary(self, request: Request) -> Response:
        f = filters(request)
        data = await self._run(q.summary, f)
        return _respond({"since": f.since, "until": f.until, **data})

    async def by(self, request: Request) -> Response:
        dimension = request.path_params["dimension"]
        f = filters(request)
        if dimension == "day":
            if (f.until - f.since) / 86400 > q.MAX_DAYS:
                raise _bad("since", f"a range of at most {q.MAX_DAYS} days, by day")
            rows = await self._run(q.by_day, f)
        elif dimension == "provider":
            rows = await self._run(q.by_provider, f)
        elif dimension in q.DIMENSIONS:
            rows = await self._run(q.by_dimension, dimension, f)
        else:
            names = ", ".join(["day", "provider", *q.DIMENSIONS])
            raise GatewayHTTPError(
                404, f"no usage dimension {dimension!r}: use one of {names}", param="dimension", code="not_found"
            )
        return _respond({"since": f.since, "until": f.until, "by": dimension, "rows": rows})

    async def budgets(self, request: Request) -> Response:
        now = time.time()
        today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        month = today.replace(day=1)
        day_spend = await self._run(q.spend_by_key, today.timestamp())
        month_spend = await self._run(q.spend_by_key, month.timestamp())
        reserved = self.gateway.ledger.spend.reserved
        keys = [
            {
                "key": k.id,
                "admin": k.id in self.admins,
                "allowed_models": k.allowed_models,
                "budget_usd_per_day": k.budget_usd_per_day,
                "budget_usd_per_month": k.budget_usd_per_month,
                "spent_usd_today": round(day_spend.get(k.id, 0.0), 10),
                "spent_usd_this_month": round(month_spend.get(k.id, 0.0), 10),
                "reserved_usd": round(reserved.get(k.id, 0.0), 10),
            }
            for k in self.gateway.config.keys
        ]
        return _respond({"day": today.strftime("%Y-%m-%d"), "month": month.strftime("%Y-%m"), "keys": keys})

    async def live(self, request: Request) -> Response:
        router = self.gateway.router
        state = router.state
        table = state.latency_table()
        models = []
        for m in router.catalogue:
            measured = table.get(m.id)
            circuit = state.open_circuit_reason(m.id) if state.has_open_circuits() else None
            if measured is None and circuit is None:
                continue
            models.append(
                {
                    "model": m.id,
                    "circuit": "open" if circuit else "closed",
                    "circuit_reason": circuit,
                    "ttft_ms": None if measured is None else measured.ttft_ms,
                    "ttft_samples": 0 if measured is None else measured.ttft_samples,
                    "tokens_per_second": None if measured is None else measured.tokens_per_second,
                    "prior_ttft_ms": m.ttft_ms,
                    "prior_tokens_per_second": m.tokens_per_second,
                }
            )
        providers = {name: router.provider_status(name) for name in router.policy.providers}
        return _respond(
            {
                "providers": [{"provider": p, "ready": r is None, "reason": r} for p, r in providers.items()],
                "models": models,
                "ledger_rows_written": self.gateway.ledger.written,
            }
        )

    async def requests(self, request: Request) -> Response:
        f = filters(request)
        limit = _int(request, "limit", 100, 1, MAX_LIMIT)
        offset = _int(request, "offset", 0, 0, 10**9)
        total, rows = await self._run(q.request_log, f, limit=limit, offset=offset, prompts=self.gateway.log_prompts)
        return _respond({"since": f.since, "until": f.until, "total": total, "offset": offset, "rows": rows})

    async def requests_csv(self, request: Request) -> Response:
        f = filters(request)
        prompts = self.gateway.log_prompts
        _, rows = await self._run(q.request_log, f, limit=CSV_MAX_ROWS, prompts=prompts)
        out = io.StringIO()
        columns = [*q.LOG_COLUMNS, "prompt"] if prompts else list(q.LOG_COLUMNS)
        writer = csv.writer(out)
        writer.writerow(["time_utc", *columns])
        for row in rows:
            stamp = datetime.fromtimestamp(row["ts"], UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            writer.writerow([stamp, *(_csv_cell(row[c]) for c in columns)])
        name = "llm-router-usage-{}-{}.csv".format(
            datetime.fromtimestamp(f.since, UTC).strftime("%Y%m%d"),
            datetime.fromtimestamp(f.until - 1, UTC).strftime("%Y%m%d"),
        )
        return Response(
            out.getvalue().encode(),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"},
        )


def stream_report(result: RoutingResult) -> bytes:
    """The SSE comment a stream ends with when the request asked for it (header ``x-router-stream-report: 1``):
    what the stream actually cost, which model answered and which failed before it (error kinds only, never
    an upstream's message). SSE clients, the OpenAI SDKs included, skip comments."""
    report = {
        "model": result.selected_model.id,
        "cost_usd": round(result.cost, 10),
        "estimated_cost_usd": round(result.estimated_cost, 10),
        "latency_ms": round(result.latency_ms, 2),
        "input_tokens": result.usage.input_tokens,
        "output_tokens": result.usage.output_tokens,
        "fallbacks": result.fallbacks,
        "attempts": [
            {
                "model": a.model_id,
                "outcome": a.outcome,
                "error_kind": a.error_kind,
                "latency_ms": round(a.latency_ms, 2),
            }
            for a in result.attempts
        ],
    }
    return b": x-router-report " + json.dumps(report, separators=(",", ":")).encode() + b"\n\n"


def fallback_note(attempts: tuple[Attempt, ...], answered_by: str | None) -> str:
    """The ledger's ``error`` of a request that succeeded after others failed: ``fell back from
    cheap/mini (server_error), other/model (timeout)`` (error kinds only; read back by
    :func:`~llm_router.gateway.usage_queries.by_provider`)."""
    failed: dict[str, str] = {}
    for a in attempts:
        if a.outcome != "ok" and a.model_id != answered_by:
            failed[a.model_id] = a.error_kind or "error"
    return q.FALLBACK_NOTE + ", ".join(f"{m} ({kind})" for m, kind in failed.items())
