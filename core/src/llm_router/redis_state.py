"""Shared state on Redis (``state: {backend: redis, url: …}``): one fleet of gateways, one set of numbers.

Two parts, each with a local twin that keeps serving when Redis is away:

- :class:`RedisState`, the router's :class:`~llm_router.state.StateStore`: circuit breakers (consecutive
  failures, open, half-open with ONE probe for the whole fleet, claimed with ``SET NX``) and live latency
  (TTFT and output tokens/s per model or deployment, folded in Lua), and the deployments' rpm/tpm windows and
  429 cooldowns (:class:`~llm_router.deployments.SharedWindows`). The decision reads only the local snapshot
  (:class:`~llm_router.state.MemoryState`), which a background task refreshes every ``refresh_ms``
  (short polling: two ``HGETALL`` per refresh, and a script per deployment, cheaper and simpler to recover
  than pub/sub, which loses what is published while a subscriber reconnects); writes are queued and sent
  pipelined by another task.
- :class:`RedisBook`, the gateway's :class:`~llm_router.limits.KeyBook`: budgets and rate windows of the
  keys, checked and held in ONE Lua script (atomic in Redis), so N workers and instances never together
  spend more than a budget.

Redis unreachable (at start or later): a warning, ``llm_router_state_backend_up 0``, local state takes
over (``on_outage: local``) or limited keys are refused with 503 (``refuse``); writes made meanwhile are
kept and replayed when Redis answers again. Amounts are kept in Redis as integer nano-dollars.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .deployments import FleetWindow
from .limits import WINDOW_S, Hold, LimitRefused, check_budgets, rate_message, remaining_of
from .state import LiveLatency, MemoryState, TransitionListener

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .gateway.ledger import SpendCache
    from .gateway.limits import MemoryBook
    from .policy import GatewayKey, StatePolicy

__all__ = ["PluginLink", "RedisBook", "RedisState"]

log = logging.getLogger("llm_router.state")

NANO = 1_000_000_000
MAX_PENDING = 100_000
"""Writes kept for replay while Redis is away; beyond this the oldest are dropped (and logged)."""

_ADMIT = """
local now = tonumber(ARGV[9])
local reserved = 0
local held = redis.call('HGETALL', KEYS[2])
for i = 1, #held, 2 do
  local c, exp = string.match(held[i + 1], '(%d+):(%d+)')
  if tonumber(exp) < now then redis.call('HDEL', KEYS[2], held[i]) else reserved = reserved + tonumber(c) end
end
local cost = tonumber(ARGV[3])
local day = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local month = tonumber(redis.call('HGET', KEYS[1], ARGV[2]) or '0')
local db, mb = tonumber(ARGV[4]), tonumber(ARGV[5])
if db >= 0 and day + reserved + cost > db then return {'day', day, month, reserved, 0} end
if mb >= 0 and month + reserved + cost > mb then return {'month', day, month, reserved, 0} end
local rpm, tpm, tokens = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if rpm >= 0 or tpm >= 0 then
  local sec = math.floor(now / 1000)
  local reqs, toks, oldest = 0, 0, sec
  local w = redis.call('HGETALL', KEYS[3])
  for i = 1, #w, 2 do
    local kind, s = string.match(w[i], '(%a):(%d+)')
    s = tonumber(s)
    if s <= sec - 60 then redis.call('HDEL', KEYS[3], w[i])
    elseif kind == 'r' then
      reqs = reqs + tonumber(w[i + 1])
      if s < oldest then oldest = s end
    else toks = toks + tonumber(w[i + 1]) end
  end
  if rpm >= 0 and reqs + 1 > rpm then return {'rpm', reqs, oldest, 0, 0} end
  if tpm >= 0 and toks + tokens > tpm then return {'tpm', toks, oldest, reqs, 0} end
  redis.call('HINCRBY', KEYS[3], 'r:' .. sec, 1)
  redis.call('HINCRBY', KEYS[3], 't:' .. sec, tokens)
  redis.call('PEXPIRE', KEYS[3], 61000)
end
if cost > 0 then
  redis.call('HSET', KEYS[2], ARGV[10], cost .. ':' .. (now + tonumber(ARGV[11])))
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[11]))
end
return {'ok', day, month, reserved + cost, 0}
"""

_SETTLE = """
if not redis.call('SET', KEYS[4], '1', 'NX', 'EX', 172800) then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
local cost = tonumber(ARGV[2])
if cost > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[3], cost)
  redis.call('HINCRBY', KEYS[1], ARGV[4], cost)
  redis.call('EXPIRE', KEYS[1], 3000000)
end
local delta = tonumber(ARGV[5])
if delta ~= 0 and redis.call('HEXISTS', KEYS[3], ARGV[6]) == 1 then redis.call('HINCRBY', KEYS[3], ARGV[6], delta) end
return 1
"""

_FAILURE = """
local v = redis.call('HGET', KEYS[1], ARGV[1])
local failures, opened = 0, 0
if v then
  local f, o = string.match(v, '(%d+):(%d+)')
  failures, opened = tonumber(f), tonumber(o)
end
failures = failures + 1
if failures >= tonumber(ARGV[3]) then
  opened = tonumber(ARGV[2])
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], ARGV[1], failures .. ':' .. opened)
return failures
"""

_SUCCESS = """
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
local function fold(mean, n, sample, alpha)
  if sample == nil then return mean, n end
  if mean == nil or n <= 0 then return sample, 1 end
  local w = math.max(alpha, 1 / (n + 1))
  return (1 - w) * mean + w * sample, n + 1
end
local ttft, tps = tonumber(ARGV[2]), tonumber(ARGV[3])
if ttft == nil and tps == nil then return 0 end
local v = redis.call('HGET', KEYS[3], ARGV[1])
local mt, nt, ms, ns = nil, 0, nil, 0
if v then
  local a, b, c, d = string.match(v, '([^:]*):([^:]*):([^:]*):([^:]*)')
  mt, nt, ms, ns = tonumber(a), tonumber(b), tonumber(c), tonumber(d)
end
local alpha = tonumber(ARGV[4])
mt, nt = fold(mt, nt, ttft, alpha)
ms, ns = fold(ms, ns, tps, alpha)
redis.call('HSET', KEYS[3], ARGV[1], tostring(mt or '') .. ':' .. nt .. ':' .. tostring(ms or '') .. ':' .. ns)
return 1
"""


_WINDOW_ADD = """
local sec = ARGV[1]
if tonumber(ARGV[2]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'r:' .. sec, ARGV[2]) end
if tonumber(ARGV[3]) ~= 0 then redis.call('HINCRBY', KEYS[1], 't:' .. sec, ARGV[3]) end
if tonumber(ARGV[4] or '0') ~= 0 then redis.call('HINCRBY', KEYS[1], 'e:' .. sec, ARGV[4]) end
if ARGV[5] and ARGV[5] ~= '' then
  redis.call('HINCRBYFLOAT', KEYS[1], 'l:' .. sec, ARGV[5])
  redis.call('HINCRBY', KEYS[1], 'n:' .. sec, 1)
end
redis.call('PEXPIRE', KEYS[1], 61000)
return 1
"""

_COOL = """
local now, untl = tonumber(ARGV[1]), tonumber(ARGV[2])
if untl > tonumber(redis.call('GET', KEYS[1]) or '0') and untl > now then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', untl - now)
end
return 1
"""

_WINDOW_READ = """
local sec = tonumber(ARGV[1])
local sums = {r = 0, t = 0, e = 0, l = 0, n = 0}
local w = redis.call('HGETALL', KEYS[1])
for i = 1, #w, 2 do
  local kind, s = string.match(w[i], '(%a):(%d+)')
  if tonumber(s) <= sec - 60 then redis.call('HDEL', KEYS[1], w[i])
  else sums[kind] = sums[kind] + tonumber(w[i + 1]) end
end
return {sums.r, sums.t, redis.call('GET', KEYS[2]) or '0', sums.e, tostring(sums.l), sums.n}
"""


def _client(url: str) -> Redis:
    try:
        from redis.asyncio import Redis
    except ImportError:
        from .errors import ConfigurationError

        raise ConfigurationError(
            "state.backend redis needs the redis client: pip install 'llm-router[redis]'"
        ) from None

    client: Redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True)
    return client


def _mean(total: str | bytes, samples: int) -> float | None:
    return float(total) / int(samples) if int(samples) else None


def _nano(usd: float) -> int:
    return round(usd * NANO)


def _day_field(now: float) -> str:
    return "d:" + time.strftime("%Y%m%d", time.gmtime(now))


def _month_field(now: float) -> str:
    return "m:" + time.strftime("%Y%m", time.gmtime(now))


class _Link:
    """One Redis connection with its up/down state, a queue of writes and the tasks that flush and refresh."""

    def __init__(self, cfg: StatePolicy, what: str) -> None:
        self.cfg = cfg
        self.what = what
        self.redis: Redis = _client(cfg.url or "")
        self.up = False
        self.pending: deque[tuple[Any, list[str], list[Any]]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._dropped = 0
        self._reconnect: Any = None
        self._closed = False
        self._flushing = asyncio.Lock()

    def key(self, *parts: str) -> str:
        return ":".join((self.cfg.prefix, *parts))

    async def start(self, refresh: Any, reconnect: Any = None) -> None:
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._reconnect = reconnect
        await self.check()
        self._tasks = [asyncio.create_task(self._flusher()), asyncio.create_task(self._refresher(refresh))]

    async def close(self) -> None:
        # A flag as well as cancel(): on Python 3.11 a cancellation that meets a timeout inside the client can
        # come out as a TimeoutError, which the loops survive; the flag ends them at their next turn.
        self._closed = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        self._tasks = []
        if self.up:
            with contextlib.suppress(Exception):
                await self.flush()
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    def down(self, exc: BaseException) -> None:
        if self.up:
            log.warning(
                "state: Redis at %s unreachable (%s: %s); local state for %s until it is back",
                self._where(), type(exc).__name__, exc, self.what,
            )  # fmt: skip
        self.up = False

    def _where(self) -> str:
        url = self.cfg.url or ""
        return url.rpartition("@")[2]  # never the password

    async def check(self) -> bool:
        try:
            pong: Any = self.redis.ping()  # redis' stubs type the sync and async clients alike
            await pong
        except Exception as exc:
            if self.up or not self._tasks:
                self.up = True  # log the first failure too
                self.down(exc)
            return False
        if not self.up:
            level = logging.WARNING if self._tasks else logging.INFO  # back after an outage, or at start
            log.log(level, "state: Redis at %s answers; shared state for %s", self._where(), self.what)
            if self._reconnect is not None:
                try:
                    await self._reconnect()
                except Exception as exc:
                    self.up = True
                    self.down(exc)
                    return False
        self.up = True
        return True

    def queue(self, script: Any, keys: list[str], args: list[Any]) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.pending.popleft()
            self._dropped += 1
            if self._dropped in (1, 100, 10_000):
                log.error("state: %d queued Redis writes dropped (Redis away too long)", self._dropped)
        self.pending.append((script, keys, args))
        self._wake.set()

    async def flush(self) -> None:
        """Send the queued writes in one pipeline; on failure they stay queued (in order). One flush at a
        time (the flusher and the refresher both flush)."""
        async with self._flushing:
            batch = list(self.pending)
            if not batch:
                return
            async with self.redis.pipeline(transaction=False) as pipe:
                for script, keys, args in batch:
                    await script(keys=keys, args=args, client=pipe)  # queued on the pipeline
                await pipe.execute()
            for _ in batch:
                self.pending.popleft()

    async def _flusher(self) -> None:
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if not self.up:
                continue
            try:
                await self.flush()
            except Exception as exc:
                self.down(exc)

    async def _refresher(self, refresh: Any) -> None:
        while not self._closed:
            await asyncio.sleep(self.cfg.refresh_ms / 1000)
            if not self.up and not await self.check():
                continue
            try:
                if self.pending:
                    await self.flush()
                await refresh()
            except Exception as exc:
                self.down(exc)


class PluginLink:
    """A plugin's handle on the state's Redis (:meth:`RedisState.plugin_link`), for components that keep
    fleet-wide state of their own (the online learner): keys under ``<prefix>:plugin:<name>:``, Lua scripts,
    writes queued in order and pipelined in the background (kept while Redis is away, sent when it is back),
    a call that waits for its answer (off the decision path), and a callback run after every refresh of the
    state's snapshot (each ``state.refresh_ms``)."""

    def __init__(self, link: _Link, name: str, refreshers: list[Callable[[], Awaitable[None]]]) -> None:
        self._link, self.name, self._refreshers = link, name, refreshers

    @property
    def up(self) -> bool:
        """Whether Redis answered at the last check."""
        return self._link.up

    @property
    def redis(self) -> Any:
        """The asyncio Redis client (``decode_responses=True``: strings in, strings out)."""
        return self._link.redis

    def key(self, *parts: str) -> str:
        return self._link.key("plugin", self.name, *parts)

    def script(self, lua: str) -> Any:
        """A registered Lua script, for :meth:`queue` and :meth:`call`."""
        return self._link.redis.register_script(lua)

    def queue(self, script: Any, keys: list[str], args: list[Any]) -> None:
        """Run ``script`` in the background, in order with every other queued write (never blocks)."""
        self._link.queue(script, keys, args)

    async def call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run ``script`` now (after the writes queued so far) and return its answer."""
        if self._link.pending:
            await self._link.flush()
        return await script(keys=keys, args=args)

    def on_refresh(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` after each refresh (while Redis is up); an exception there is logged, not raised."""
        self._refreshers.append(callback)


class RedisState:
    """:class:`~llm_router.state.StateStore` shared on Redis, read from a local snapshot."""

    def __init__(self, cfg: StatePolicy, failure_threshold: int = 5, cooldown_s: float = 30.0, alpha: float = 0.2):
        self.local = MemoryState(failure_threshold, cooldown_s, alpha)
        self.link = _Link(cfg, "the router (circuits, latency)")
        self._instance = f"{time.time_ns()}-{id(self)}"
        self._started = False
        self._failure: Any = self.link.redis.register_script(_FAILURE)
        self._success: Any = self.link.redis.register_script(_SUCCESS)
        self._window_add: Any = self.link.redis.register_script(_WINDOW_ADD)
        self._cool: Any = self.link.redis.register_script(_COOL)
        self._window_read: Any = self.link.redis.register_script(_WINDOW_READ)
        self._watched: list[str] = []
        self._fleet: dict[str, FleetWindow] = {}
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    def plugin_link(self, name: str) -> PluginLink:
        """A handle on this state's Redis for the component ``name`` (see :class:`PluginLink`)."""
        return PluginLink(self.link, name, self._refreshers)

    @property
    def up(self) -> bool:
        return self.link.up

    async def start(self) -> None:
        link = self.link
        self._started = True
        await link.start(self.refresh)
        if link.up:
            with contextlib.suppress(Exception):
                await self.refresh()

    async def close(self) -> None:
        await self.link.close()

    # writes: local at once, Redis in the background

    def record_success(self, model_id: str, ttft_ms: float | None, tokens_per_second: float | None) -> None:
        self.local.record_success(model_id, ttft_ms, tokens_per_second)
        if self._started:
            link = self.link
            parent = self.local.parent.get(model_id)  # a deployment's sample is also its model's
            for key in (model_id,) if parent is None else (model_id, parent):
                keys = [link.key("circuits"), link.key("probe", key), link.key("latency")]
                args = [key, "" if ttft_ms is None else ttft_ms, tokens_per_second or "", self.local.alpha]
                link.queue(self._success, keys, args)

    @property
    def transition_listeners(self) -> list[TransitionListener]:
        """Called on each circuit transition this instance makes or sees in the fleet's state."""
        return self.local.transition_listeners

    def set_deployments(self, model_id: str, keys: list[str]) -> None:
        self.local.set_deployments(model_id, keys)

    # deployments' windows and cooldowns, fleet-wide (deployments.SharedWindows)

    def _window_keys(self, key: str) -> list[str]:
        tag = "{" + key + "}"  # one hash slot per deployment (Redis Cluster)
        return [self.link.key("deployment", tag, "window"), self.link.key("deployment", tag, "cool")]

    def watch_deployments(self, keys: Iterable[str]) -> None:
        self._watched += [k for k in keys if k not in self._watched]

    def fleet_window(self, key: str) -> FleetWindow | None:
        return self._fleet.get(key) if self.link.up else None

    def add_to_window(
        self, key: str, requests: int, tokens: int, ended: int = 0, latency_ms: float | None = None
    ) -> None:
        if self._started:
            args = [int(time.time()), requests, tokens, ended, "" if latency_ms is None else latency_ms]
            self.link.queue(self._window_add, self._window_keys(key)[:1], args)

    def cool_deployment(self, key: str, until: float) -> None:
        if self._started:
            self.link.queue(self._cool, self._window_keys(key)[1:], [int(time.time() * 1000), int(until * 1000)])

    async def _refresh_windows(self) -> None:
        """Take the fleet's window and cooldown of every watched deployment into the local snapshot."""
        if not self._watched:
            return
        read_at, sec = time.monotonic(), int(time.time())
        async with self.link.redis.pipeline(transaction=False) as pipe:
            for key in self._watched:
                await self._window_read(keys=self._window_keys(key), args=[sec], client=pipe)
            values = await pipe.execute()
        self._fleet = {
            key: FleetWindow(int(r), int(t), int(cool) / 1000, read_at, max(0, int(r) - int(e)), _mean(lat, n))
            for key, (r, t, cool, e, lat, n) in zip(self._watched, values, strict=True)
        }

    def record_failure(self, model_id: str, kind: str) -> None:
        self.local.record_failure(model_id, kind)
        if self._started:
            link = self.link
            keys = [link.key("circuits"), link.key("probe", model_id)]
            link.queue(self._failure, keys, [model_id, int(time.time() * 1000), self.local.failure_threshold])

    # reads: the local snapshot

    def open_circuit_reason(self, model_id: str) -> str | None:
        return self.local.open_circuit_reason(model_id)

    def latency(self, model_id: str) -> tuple[float, float] | None:
        return self.local.latency(model_id)

    def latency_table(self) -> dict[str, LiveLatency]:
        return self.local.latency_table()  # type: ignore[return-value]

    def has_open_circuits(self) -> bool:
        return self.local.has_open_circuits()

    async def refresh(self) -> None:
        """Take the fleet's circuits and latency into the local snapshot; claim the probe of a circuit whose
        cooldown is over (one instance of the fleet wins it and lets calls through until the first result)."""
        link = self.link
        async with link.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(link.key("circuits"))
            pipe.hgetall(link.key("latency"))
            circuits_raw, latency_raw = await pipe.execute()
        now, mono = time.time(), time.monotonic()
        cooldown = self.local.cooldown_s
        circuits: dict[str, tuple[int, float | None]] = {}
        for model_id, value in circuits_raw.items():
            failures_s, _, opened_s = value.partition(":")
            failures, opened = int(failures_s), int(opened_s) / 1000
            if not opened:
                circuits[model_id] = (failures, None)
                continue
            if now - opened >= cooldown:
                won = await link.redis.set(
                    link.key("probe", model_id), self._instance, nx=True, px=int(cooldown * 1000)
                )
                mine = won or await link.redis.get(link.key("probe", model_id)) == self._instance
                circuits[model_id] = (failures, None if mine else mono)  # lost: open here until the probe ends
            else:
                circuits[model_id] = (failures, mono - (now - opened))
        latency = {}
        for model_id, value in latency_raw.items():
            a, b, c, d = value.split(":")
            latency[model_id] = LiveLatency(float(a) if a else None, int(b), float(c) if c else None, int(d))
        self.local.replace(circuits, latency)
        await self._refresh_windows()
        for callback in self._refreshers:
            try:
                await callback()
            except Exception as exc:  # a plugin's failure is not the state's
                log.warning("state: a plugin's refresh failed: %s: %s", type(exc).__name__, exc)


class RedisBook:
    """:class:`~llm_router.limits.KeyBook` shared on Redis: one Lua script checks and holds atomically."""

    backend = "redis"

    def __init__(self, cfg: StatePolicy, local: MemoryBook, spend: SpendCache, keys: Sequence[GatewayKey]) -> None:
        self.cfg = cfg
        self.local = local
        self.spend = spend
        self.keys = [k for k in keys if k.limited]
        self.link = _Link(cfg, "the gateway's budgets and rate limits")
        self._admit: Any = self.link.redis.register_script(_ADMIT)
        self._settle: Any = self.link.redis.register_script(_SETTLE)
        self._started = False
        self._snapshot: dict[str, tuple[float, float, float]] = {}

    @property
    def up(self) -> bool:
        return self.link.up

    def _keys(self, key_id: str) -> list[str]:
        tag = "{" + key_id + "}"  # one hash slot per key (Redis Cluster)
        return [self.link.key(tag, "spend"), self.link.key(tag, "held"), self.link.key(tag, "window")]

    async def start(self) -> None:
        link = self.link
        self._started = True
        await link.start(self.refresh, self.reconnect)
        if link.up:
            with contextlib.suppress(Exception):
                await self.refresh()

    async def close(self) -> None:
        await self.link.close()

    async def reconnect(self) -> None:
        """Redis answers (at start, or after an outage). A Redis without the ``seeded`` marker is fresh or lost
        its data: its spend is seeded from this process's totals (the ledger's, plus what it spent since, the
        outage included), and the queued settlements are dropped, their spend being in those totals."""
        if await self.link.redis.set(self.link.key("seeded"), "1", nx=True):
            self.link.pending.clear()
            await self.seed()

    async def seed(self) -> None:
        """Today's and this month's spend from the ledger, for keys Redis knows nothing of yet (a fresh or
        emptied Redis): ``HSETNX``, so a running fleet's numbers are never overwritten."""
        link = self.link
        now = time.time()
        async with link.redis.pipeline(transaction=False) as pipe:
            for key in self.keys:
                day, month, _ = self.spend.totals(key.id, now)
                spend = self._keys(key.id)[0]
                pipe.hsetnx(spend, _day_field(now), str(_nano(day)))
                pipe.hsetnx(spend, _month_field(now), str(_nano(month)))
            await pipe.execute()

    async def refresh(self) -> None:
        link = self.link
        now = time.time()
        day_f, month_f = _day_field(now), _month_field(now)
        async with link.redis.pipeline(transaction=False) as pipe:
            for key in self.keys:
                spend, held, _ = self._keys(key.id)
                pipe.hmget(spend, [day_f, month_f])
                pipe.hvals(held)
            values = await pipe.execute()
        now_ms = now * 1000
        for i, key in enumerate(self.keys):
            day, month = (int(v or 0) / NANO for v in values[2 * i])
            reserved = (
                sum(int(c) for c, _, exp in (v.partition(":") for v in values[2 * i + 1]) if int(exp) >= now_ms) / NANO
            )
            self._snapshot[key.id] = (day, month, reserved)

    def remaining(self, key: GatewayKey, now: float) -> float | None:
        if key.budget_usd_per_day is None and key.budget_usd_per_month is None:
            return None
        if not self.link.up:
            return self.local.remaining(key, now)
        return remaining_of(key, *self.spent(key.id, now))

    def spent(self, key_id: str, now: float) -> tuple[float, float, float]:
        if not self.link.up:
            return self.local.spent(key_id, now)
        return self._snapshot.get(key_id) or self.local.spent(key_id, now)

    async def admit(self, key: GatewayKey, request_id: str, cost: float, tokens: int, now: float) -> Hold:
        if self.link.up and self._started:
            try:
                return await self._admit_shared(key, request_id, cost, tokens, now)
            except LimitRefused:
                raise
            except Exception as exc:
                self._outage(exc)
        if self.cfg.on_outage == "refuse":
            raise LimitRefused(
                "state",
                f"the shared state store (Redis) is unreachable and state.on_outage is refuse: requests of key "
                f"{key.id!r}, which has a budget or rate limit, are refused until it is back",
            )
        return self.local.admit_now(key, request_id, cost, tokens, now)

    def _outage(self, exc: BaseException) -> None:
        """Redis went away: the local book continues from the fleet's last known spend."""
        self.link.down(exc)
        for key_id, (day, month, reserved) in self._snapshot.items():
            self.spend.raise_to(key_id, day, month, reserved)

    async def _admit_shared(self, key: GatewayKey, request_id: str, cost: float, tokens: int, now: float) -> Hold:
        def limit(value: float | int | None, nano: bool) -> int:
            return -1 if value is None else (_nano(value) if nano else int(value))

        args = [
            _day_field(now), _month_field(now), _nano(cost),
            limit(key.budget_usd_per_day, True), limit(key.budget_usd_per_month, True),
            limit(key.rpm, False), limit(key.tpm, False), tokens,
            int(now * 1000), request_id, int(self.cfg.hold_s * 1000),
        ]  # fmt: skip
        status, a, b, c, _ = await self._admit(keys=self._keys(key.id), args=args)
        if status == "ok":
            self._snapshot[key.id] = (int(a) / NANO, int(b) / NANO, int(c) / NANO)
            return Hold(key.id, request_id, cost, tokens, now, shared=True)
        if status in ("day", "month"):
            day, month, reserved = int(a) / NANO, int(b) / NANO, int(c) / NANO
            self._snapshot[key.id] = (day, month, reserved)
            check_budgets(key, day, month, reserved, cost)
            raise LimitRefused("budget", f"budget of key {key.id!r} exceeded")  # check_budgets raised already
        used, oldest = int(a), int(b)
        retry = max(1.0, oldest + WINDOW_S - now)
        if status == "rpm":
            assert key.rpm is not None
            raise LimitRefused("rpm", rate_message(key.id, "requests-per-minute", key.rpm, used, 1), retry)
        assert key.tpm is not None
        raise LimitRefused("tpm", rate_message(key.id, "tokens-per-minute", key.tpm, used, tokens), retry)

    def settle(self, hold: Hold, cost: float, tokens: int, now: float) -> None:
        if hold.settled:
            return
        if not hold.shared:
            self.local.settle(hold, cost, tokens, now)  # its spend reaches Redis below, when it is back
        else:
            hold.settled = True
            self.spend.settle(hold.key_id, 0.0, cost, now)  # this process's own view, for an outage
        if not self._started:
            return
        spend, held, window = self._keys(hold.key_id)
        bucket = f"t:{int(hold.at)}"
        delta = tokens - hold.tokens if hold.shared else 0
        args = [hold.request_id, _nano(cost), _day_field(hold.at), _month_field(hold.at), delta, bucket]
        done = self.link.key("{" + hold.key_id + "}", "settled", hold.request_id)  # a replay is applied once
        self.link.queue(self._settle, [spend, held, window, done], args)
