"""The fleet soak (issue 16 item 6): two gateways, Redis, PostgreSQL, three fault-injecting upstreams, many
requests; then kill Redis and PostgreSQL mid-run. Prints a report and exits 1 when a target is missed.

    nox -s soak                                   # both matrices: the soak's own upstreams, then fakellm
    python tests/soak/soak.py --upstream own --requests 10000 --concurrency 50 --seed 0 [--json report.json]

What runs: ``redis-server`` and a PostgreSQL cluster (``tests/services.py``), three upstreams (``--upstream own``:
``faulty_upstream.py``, every fault kind, each billing what it answered; ``--upstream fakellm``: the ``fakellm``
package from PyPI as a third-party host, faults by its per-rule status codes), two ``llm-router serve``
processes sharing ``state: {backend: redis}`` (``on_outage: refuse``) and a ``postgresql://`` ledger. The
load: ``--requests`` at ``--concurrency``, a third streamed, spread over 4 keys (``k4`` has a daily budget that
runs out midway) and both gateways (round-robin, as a load balancer would). Upstream ``u3`` goes down twice
(every request 503 for a few seconds); Redis is killed for 10 s at 35 % of the run and PostgreSQL at 60 %.

Targets (the issue's): every request answered (a success, or a typed OpenAI-format error, in the body or in
the stream); ledger rows = requests sent, one per request id; ledger cost = what the upstreams billed, to the
cent; no budget overspent; no 5xx during the kills beyond requests in flight at the kill; circuit breakers
open and close around the upstream outages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from services import PostgresServer, RedisServer, _postgres_bin, free_port  # noqa: E402

PRICES = {"alpha": (2.0, 8.0), "beta": (5.0, 15.0), "gamma": (0.5, 1.5)}  # per million tokens: input, output
KEYS = ["k1", "k2", "k3", "k4"]
COOLDOWN_S = 4  # fallback.circuit_cooldown_s
PROMPTS = {
    "chat": ["Hi! How are you doing today? Tell me something nice about autumn.",
             "What is a good name for a grey cat that likes to sleep on keyboards?"],
    "code": ["Write a Python function that returns the n-th Fibonacci number iteratively.",
             "Fix this bug: def add(a, b): return a - b  # should add the numbers"],
    "summarization": ["Summarize in two sentences: The committee met on Tuesday to discuss the budget. After "
                      "a long debate it approved the plan with minor changes to the travel allowance."],
}  # fmt: skip

POLICY = """
providers:
  u1: {type: openai_compatible, base_url: "%(u1)s/v1", api_key: soak}
  u2: {type: openai_compatible, base_url: "%(u2)s/v1", api_key: soak}
  u3: {type: openai_compatible, base_url: "%(u3)s/v1", api_key: soak}
models:
  - {id: u1/alpha, price: {input_per_mtok: 2, output_per_mtok: 8}, context_window: 128000, max_output_tokens: 4096,
     quality: {chat: 0.9, code: 0.8, summarization: 0.7}}
  - {id: u3/beta, price: {input_per_mtok: 5, output_per_mtok: 15}, context_window: 128000, max_output_tokens: 4096,
     quality: {chat: 0.8, code: 0.97, summarization: 0.8}}
  - {id: u2/gamma, price: {input_per_mtok: 0.5, output_per_mtok: 1.5}, context_window: 128000,
     max_output_tokens: 4096, quality: {chat: 0.6, code: 0.5, summarization: 0.9}}
deployments:
  u1/alpha: {strategy: least-busy, targets: [{provider: u1}, {provider: u2}]}
classify: [rules]
preferences: {quality: 0.8, cost: 0.2}
fallback: {retries: 1, backoff_ms: 50, max_backoff_ms: 1000, max_models: 3, timeout_s: 3,
           circuit_failures: 5, circuit_cooldown_s: %(cooldown)s}
gateway:
  ledger_spool: "%(spool)s"
  keys:
    - {id: k1, key: sk-soak-k1}
    - {id: k2, key: sk-soak-k2}
    - {id: k3, key: sk-soak-k3}
    - {id: k4, key: sk-soak-k4, budget_usd_per_day: %(budget)s}
state: {backend: redis, url: "%(redis)s", refresh_ms: 100, on_outage: %(on_outage)s}
"""


@dataclass
class Outcome:
    """What the client saw for one request."""

    rid: str
    key: str
    stream: bool
    t0: float
    t1: float = 0.0
    status: int = 0
    kind: str = ""  # ok | typed | untyped
    detail: str = ""
    usage: tuple[int, int] | None = None
    code: str = ""  # the typed error's code
    message: str = ""  # and its message


@dataclass
class Run:
    args: argparse.Namespace
    work: Path
    gateways: list[str] = field(default_factory=list)
    upstreams: list[str] = field(default_factory=list)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    serving: list[subprocess.Popen[bytes]] = field(default_factory=list)  # the two gateways
    in_flight: set[str] = field(default_factory=set)
    kills: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


# -- the services ------------------------------------------------------------------------------------------


def start(run: Run, cmd: list[str], log: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    out = (run.work / log).open("wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    run.procs.append(proc)
    return proc


def wait_up(url: str, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start at {url}")


def start_upstreams(run: Run) -> None:
    for i, name in enumerate(("u1", "u2", "u3")):
        port = free_port()
        if run.args.upstream == "own":
            cmd = [sys.executable, str(HERE / "faulty_upstream.py"), "--port", str(port), "--name", name,
                   "--seed", str(run.args.seed * 10 + i), "--fault-rate", str(run.args.fault_rate)]  # fmt: skip
            start(run, cmd, f"{name}.log")
            wait_up(f"http://127.0.0.1:{port}/_soak/stats", name)
        else:
            config = run.work / f"{name}-fakellm.yaml"
            config.write_text(fakellm_config(name, down=False), encoding="utf-8")
            exe = shutil.which("fakellm") or str(Path(sys.executable).with_name("fakellm"))
            cmd = [exe, "serve", "--port", str(port), "--config", str(config)]
            start(run, cmd, f"{name}.log", env={"FAKELLM_CONFIG": str(config)})
            wait_up(f"http://127.0.0.1:{port}/_fakellm/stats", name)
        run.upstreams.append(f"http://127.0.0.1:{port}")


FAKELLM_FAULTS = {"rate_limit": 429, "server": 500, "overloaded": 503}


def fakellm_config(name: str, down: bool) -> str:
    """fakellm's rules: a prompt carrying ``[soak-fault <name> <kind>]`` fails here with that status; when
    ``down``, every request answers 503 (an outage, by fakellm's hot reload)."""
    outage = {"name": "outage", "when": {"messages_contain": ""}, "respond": {"status": 503, "error": "down"}}
    rules = [outage] if down else []
    for kind, status in FAKELLM_FAULTS.items():
        rules.append({"name": f"fault-{kind}", "when": {"messages_contain": f"[soak-fault {name} {kind}]"},
                      "respond": {"status": status, "error": f"injected {kind}"}})  # fmt: skip
    return json.dumps({"version": 1, "defaults": {"fallback": "deterministic_echo"}, "rules": rules})


def start_gateways(run: Run, redis: RedisServer, pg: PostgresServer, budget: float) -> None:
    policy = run.work / "policy.yaml"
    spool = run.work / "spool"
    spool.mkdir()
    urls = dict(zip(("u1", "u2", "u3"), run.upstreams))
    values = {**urls, "spool": spool, "budget": budget, "redis": redis.url, "cooldown": COOLDOWN_S,
              "on_outage": run.args.on_outage}  # fmt: skip
    policy.write_text(textwrap.dedent(POLICY % values), encoding="utf-8")
    cli = shutil.which("llm-router") or str(Path(sys.executable).with_name("llm-router"))
    for i in range(2):
        port = free_port()
        cmd = [cli, "serve", "--policy", str(policy), "--port", str(port), "--ledger", pg.url,
               "--log-level", "warning"]  # fmt: skip
        run.serving.append(start(run, cmd, f"gateway-{i + 1}.log", env={"LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD": ""}))
        run.gateways.append(f"http://127.0.0.1:{port}")
    for url in run.gateways:
        wait_up(f"{url}/health", "llm-router serve")


# -- the load ----------------------------------------------------------------------------------------------


def plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every request, drawn from ``--seed``: key, stream, prompt, max_tokens, gateway, injected marker."""
    rng = random.Random(args.seed)
    out = []
    for n in range(args.requests):
        task = rng.choice(list(PROMPTS))
        prompt = rng.choice(PROMPTS[task])
        if args.upstream == "fakellm" and rng.random() < args.fault_rate:
            prompt += f" [soak-fault {rng.choice(('u1', 'u2', 'u3'))} {rng.choice(list(FAKELLM_FAULTS))}]"
        out.append({
            "rid": f"soak-{args.seed}-{n:06d}", "key": KEYS[n % 4], "stream": rng.random() < 1 / 3,
            "prompt": prompt, "max_tokens": rng.randint(16, 128), "gateway": n % 2,
        })  # fmt: skip
    return out


async def one(run: Run, client: httpx.AsyncClient, spec: dict[str, Any]) -> Outcome:
    body: dict[str, Any] = {
        "model": "auto",
        "messages": [{"role": "user", "content": spec["prompt"]}],
        "max_tokens": spec["max_tokens"],
    }
    if spec["stream"]:
        body["stream"], body["stream_options"] = True, {"include_usage": True}
    headers = {"authorization": f"Bearer sk-soak-{spec['key']}", "x-request-id": spec["rid"]}
    url = f"{run.gateways[spec['gateway']]}/v1/chat/completions"
    out = Outcome(spec["rid"], spec["key"], spec["stream"], time.monotonic())
    run.in_flight.add(out.rid)
    try:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            out.status = response.status_code
            if response.status_code == 200 and spec["stream"]:
                await read_stream(response, out)
            else:
                read_body(await response.aread(), out)
    except httpx.HTTPError as exc:
        out.kind, out.detail = "untyped", f"{type(exc).__name__}: {exc}"
    finally:
        out.t1 = time.monotonic()
        run.in_flight.discard(out.rid)
    return out


def read_body(raw: bytes, out: Outcome) -> None:
    try:
        data = json.loads(raw)
    except ValueError:
        out.kind, out.detail = "untyped", f"{out.status}: not JSON: {raw[:120]!r}"
        return
    if out.status == 200 and data.get("object") == "chat.completion":
        out.kind = "ok"
        usage = data.get("usage") or {}
        out.usage = (usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    elif isinstance(data.get("error"), dict) and data["error"].get("message") and data["error"].get("type"):
        out.kind, out.detail = "typed", f"{out.status} {data['error'].get('type')}: {data['error']['message'][:160]}"
        out.code, out.message = str(data["error"].get("code") or ""), str(data["error"]["message"])
    else:
        out.kind, out.detail = "untyped", f"{out.status}: {raw[:160]!r}"


async def read_stream(response: httpx.Response, out: Outcome) -> None:
    done = False
    async for line in response.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            done = True
            continue
        event = json.loads(data)
        if isinstance(event.get("error"), dict):
            out.kind, out.detail = "typed", f"in-stream {event['error'].get('type')}: {event['error'].get('message')}"
            out.code, out.message = str(event["error"].get("code") or ""), str(event["error"].get("message"))
            return
        if event.get("usage"):
            out.usage = (event["usage"]["prompt_tokens"], event["usage"]["completion_tokens"])
    out.kind = "ok" if done else "untyped"
    if not done:
        out.detail = "stream ended without [DONE] or an error event"


async def load(run: Run, specs: list[dict[str, Any]]) -> None:
    """The plan at ``--concurrency`` with the faults, then, after the breakers' cooldown, its last 2 % (at least
    20 requests) at concurrency 5: the traffic that lets a breaker opened by the last outage probe and close."""
    tail = max(20, len(specs) // 50)
    limits = httpx.Limits(max_connections=run.args.concurrency * 2, max_keepalive_connections=run.args.concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0), limits=limits) as client:
        await asyncio.gather(send(run, client, specs[:-tail], run.args.concurrency), faults(run, specs[:-tail]))
        await asyncio.sleep(COOLDOWN_S + 1)
        await send(run, client, specs[-tail:], 5)


async def send(run: Run, client: httpx.AsyncClient, specs: list[dict[str, Any]], concurrency: int) -> None:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for spec in specs:
        queue.put_nowait(spec)

    async def worker() -> None:
        while not queue.empty():
            run.outcomes.append(await one(run, client, queue.get_nowait()))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def faults(run: Run, specs: list[dict[str, Any]]) -> None:
    """Upstream u3's outages (at 20 % and 75 % of the run) and the kills (Redis at 35 %, PostgreSQL at 60 %)."""
    total = len(specs)

    async def at(share: float) -> bool:
        while len(run.outcomes) < share * total:  # noqa: ASYNC110 - polled: the workers stay untouched
            await asyncio.sleep(0.05)
        return len(run.outcomes) < total  # False: the main load is over, nothing left to disturb

    async def outages() -> None:
        for share in (0.20, 0.75):
            if await at(share):
                await outage(run, 4.0)

    async def kills() -> None:  # one after the other: each kill's window is its own
        for share, what in ((0.35, "redis"), (0.60, "postgres")):
            if run.args.kill and await at(share):
                await kill(run, what, run.args.kill_s)

    await asyncio.gather(outages(), kills())


async def outage(run: Run, seconds: float) -> None:
    u3 = run.upstreams[2]
    if run.args.upstream == "own":
        async with httpx.AsyncClient() as client:
            await client.post(f"{u3}/_soak/outage", params={"seconds": seconds})
        run.kills.append({"what": "u3 outage", "at": time.monotonic(), "seconds": seconds})
        return
    config = run.work / "u3-fakellm.yaml"
    async with httpx.AsyncClient() as client:
        config.write_text(fakellm_config("u3", down=True), encoding="utf-8")
        await client.post(f"{u3}/_fakellm/reload")
        run.kills.append({"what": "u3 outage", "at": time.monotonic(), "seconds": seconds})
        await asyncio.sleep(seconds)
        config.write_text(fakellm_config("u3", down=False), encoding="utf-8")
        await client.post(f"{u3}/_fakellm/reload")


async def kill(run: Run, what: str, seconds: float) -> None:
    server = run.args.services[what]
    record = {"what": what, "at": time.monotonic(), "seconds": seconds, "in_flight": sorted(run.in_flight)}
    run.kills.append(record)
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(server.start)
    record["back"] = time.monotonic()


# -- after the run -----------------------------------------------------------------------------------------


def breaker_events(run: Run) -> dict[str, dict[str, float]]:
    """``llm_router_circuit_transitions_total`` of each gateway: {gateway: {"<deployment> -> <state>": n}}."""
    out: dict[str, dict[str, float]] = {}
    for i, url in enumerate(run.gateways):
        text = httpx.get(f"{url}/metrics", timeout=10).text
        seen: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("llm_router_circuit_transitions_total{"):
                labels, value = line[len("llm_router_circuit_transitions_total{") :].rsplit("} ", 1)
                parts = dict(p.split("=", 1) for p in labels.split(","))
                seen[f"{parts['deployment'].strip(chr(34))} -> {parts['to_state'].strip(chr(34))}"] = float(value)
        out[f"gateway-{i + 1}"] = seen
    return out


def stop_gateways(run: Run) -> list[int]:
    """SIGTERM (in-flight requests finish, the ledger drains), then wait."""
    for proc in run.serving:
        proc.send_signal(signal.SIGTERM)
    return [proc.wait(120) for proc in run.serving]


def ledger(pg: PostgresServer) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(pg.url) as conn:
        rows = conn.execute("SELECT request_id, key_id, cost_usd, ts, status, outcome FROM usage").fetchall()
    return rows


def upstream_billed(run: Run) -> dict[str, Any]:
    """What the soak's upstreams billed, in USD, by model (answers finished, and streams cut midway)."""
    stats = [httpx.get(f"{u}/_soak/stats", timeout=10).json() for u in run.upstreams]
    usd = {"billed": 0.0, "cut": 0.0, "stalled": 0.0, "abandoned": 0.0}
    for s in stats:
        for part in usd:
            for model, b in s[part].items():
                p_in, p_out = PRICES[model]
                usd[part] += (b["prompt"] * p_in + b["completion"] * p_out) / 1e6
    return {"usd": usd, "stats": stats}


def report(run: Run, pg: PostgresServer, budget: float, breakers: dict[str, Any], codes: list[int]) -> dict[str, Any]:
    out = run.outcomes
    kinds = Counter(o.kind for o in out)
    rows = ledger(pg)
    ids = Counter(r[0] for r in rows)
    sent = {o.rid for o in out}
    cost = sum(r[2] for r in rows)
    k4_days: dict[str, float] = {}
    for r in rows:
        if r[1] == "k4":
            day = time.strftime("%Y-%m-%d", time.gmtime(r[3]))
            k4_days[day] = k4_days.get(day, 0.0) + r[2]
    result: dict[str, Any] = {
        "requests": len(out),
        "answered": {"ok": kinds["ok"], "typed_error": kinds["typed"], "untyped": kinds["untyped"]},
        "statuses": dict(Counter(o.status for o in out)),
        "untyped_examples": [o.detail for o in out if o.kind == "untyped"][:10],
        "typed_errors": dict(Counter(o.detail[:110] for o in out if o.kind == "typed").most_common(12)),
        "error_codes": dict(Counter(f"{o.status} {o.code} ({cause(o)})" for o in out if o.kind == "typed")),
        "ledger_rows": len(rows),
        "ledger_distinct_request_ids": len(ids),
        "ledger_duplicates": sum(n - 1 for n in ids.values() if n > 1),
        "requests_without_row": len(sent - set(ids)),
        "ledger_cost_usd": round(cost, 6),
        "k4_budget_usd_per_day": budget,
        "k4_spend_by_day": {d: round(v, 6) for d, v in k4_days.items()},
        "k4_overspend_usd": round(max([0.0, *(v - budget for v in k4_days.values())]), 9),
        "k4_refused": sum(1 for o in out if o.key == "k4" and o.status == 429),
        "breaker_transitions": breakers,
        "gateway_exit_codes": codes,
        "events": [
            {k: v for k, v in e.items() if k != "in_flight"} | {"in_flight": len(e.get("in_flight", []))}
            for e in run.kills
        ],
        "five_xx_during_kills": kill_5xx(run),
        "five_xx_total": sum(1 for o in out if o.status >= 500),
    }
    if run.args.upstream == "own":
        billed = upstream_billed(run)
        by_rid = {o.rid: o for o in out}
        part = Counter()
        for r in rows:
            o = by_rid.get(r[0])
            part[kind_of(o)] += r[2]
        result["cost_usd"] = {  # ledger vs upstream, by what the request became
            "answered": {"ledger": round(part["ok"], 6), "upstream": round(billed["usd"]["billed"], 6)},
            "streams_stalled_midway": {
                "ledger": round(part["stalled"], 6),
                "upstream": round(billed["usd"]["stalled"], 6),
            },
            "streams_reset_midway": {"ledger": round(part["cut"], 6), "upstream": round(billed["usd"]["cut"], 6)},
            "errors_before_any_text": {"ledger": round(part["error"], 6), "upstream": 0.0},
            "abandoned_by_the_gateway": {"ledger": 0.0, "upstream": round(billed["usd"]["abandoned"], 6)},
        }
        result["upstreams"] = billed["stats"]
    else:  # fakellm reports no usage in streams: compare with the usage the client was answered with
        told = [o for o in out if o.kind == "ok" and o.usage is not None]
        result["client_told_tokens"] = [sum(o.usage[0] for o in told), sum(o.usage[1] for o in told)]  # type: ignore[index]
    return result


def cause(o: Outcome) -> str:
    """Why a request got an error: ``upstream`` (every candidate failed: an ``upstream_*`` or rate-limit code,
    the message naming the model and what its upstream did), ``refused`` (``state.on_outage: refuse``, by
    design), ``budget`` (the key's budget is spent), or ``other`` (the gateway's own)."""
    if o.code == "state_unavailable":
        return "refused"
    if o.code in ("budget_exceeded", "insufficient_quota"):
        return "budget"
    return "upstream" if o.code.startswith("upstream_") or o.code == "rate_limit_exceeded" else "other"


def kind_of(o: Outcome | None) -> str:
    """What a request became: ``ok``; a stream that ``stalled`` or was ``cut`` after its first text; ``error``."""
    if o is not None and o.kind == "ok":
        return "ok"
    if o is not None and o.detail.startswith("in-stream"):
        return "stalled" if ": timeout: " in o.message else "cut"
    return "error"


def kill_5xx(run: Run) -> dict[str, Any]:
    """5xx answers to requests that started during a kill (or were in flight at it), per kill."""
    out = {}
    for event in run.kills:
        if "back" not in event:
            continue
        flying = set(event["in_flight"])
        started = [o for o in run.outcomes if event["at"] <= o.t0 <= event["back"] + 1.0]
        refused = [o for o in started if o.code == "state_unavailable"]  # state.on_outage: refuse, by design
        bad = [o for o in started if o.status >= 500 and o.rid not in flying and cause(o) == "other"]
        out[event["what"]] = {
            "requests_started": len(started),
            "in_flight_at_kill": len(flying),
            "5xx_in_flight": sum(1 for o in run.outcomes if o.rid in flying and o.status >= 500),
            "5xx_in_flight_codes": dict(Counter(o.code for o in run.outcomes if o.rid in flying and o.status >= 500)),
            "5xx_upstream": sum(1 for o in started if o.status >= 500 and cause(o) == "upstream"),
            "5xx_others": len(bad),
            "refused_by_on_outage_refuse": len(refused),
            "5xx_examples": [f"{o.detail} (code {o.code!r})" for o in bad[:5]],
        }
    return out


def verdicts(r: dict[str, Any], upstream: str) -> list[tuple[str, bool, str]]:
    answered = r["answered"]["ok"] + r["answered"]["typed_error"]
    checks = [
        ("every request answered (success or typed error)", answered == r["requests"],
         f"{answered}/{r['requests']} ({100 * answered / max(1, r['requests']):.2f} %)"),
        ("ledger rows = requests sent, one per request id",
         r["ledger_rows"] == r["requests"] and not r["ledger_duplicates"] and not r["requests_without_row"],
         f"{r['ledger_rows']} rows, {r['ledger_duplicates']} duplicates, {r['requests_without_row']} missing"),
        ("no budget overspent", r["k4_overspend_usd"] <= 0,
         f"k4 spent {r['k4_spend_by_day']} of {r['k4_budget_usd_per_day']}/day; {r['k4_refused']} refused"),
        ("no 5xx during the kills beyond those in flight",
         all(v["5xx_others"] == 0 for v in r["five_xx_during_kills"].values()),
         "; ".join(f"{k}: {v['5xx_others']} caused by it, {v['5xx_in_flight']} of {v['in_flight_at_kill']} in "
                   f"flight (and {v['5xx_upstream']} from upstream faults, {v['refused_by_on_outage_refuse']} of k4 "
                   "refused by on_outage: refuse)" for k, v in r["five_xx_during_kills"].items()) or "no kills"),
        ("gateways exited cleanly after SIGTERM (uvicorn re-raises it: -15)",
         all(c in (0, -signal.SIGTERM) for c in r["gateway_exit_codes"]), str(r["gateway_exit_codes"])),
    ]  # fmt: skip
    if upstream == "own":
        c = r["cost_usd"]
        diff = c["answered"]["ledger"] - c["answered"]["upstream"]
        detail = "; ".join(f"{k}: ledger ${v['ledger']:.6f}, upstream ${v['upstream']:.6f}" for k, v in c.items())
        checks.append(("ledger cost = upstream-reported usage, to the cent", abs(diff) < 0.005, detail))
    opened = sum(v for g in r["breaker_transitions"].values() for k, v in g.items() if k.endswith("-> open"))
    closed = sum(v for g in r["breaker_transitions"].values() for k, v in g.items() if k.endswith("-> closed"))
    outages = sum(1 for e in r["events"] if e["what"] == "u3 outage")
    checks.append(("breakers open and close around the upstream outages", opened >= 1 and closed >= 1,
                   f"{outages} outages injected; breaker transitions seen: {int(opened)} to open, "
                   f"{int(closed)} to closed"))  # fmt: skip
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", choices=["own", "fakellm"], default="own")
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=None, help="k4's daily budget (default: ~40 %% of its load)")
    parser.add_argument("--kill-s", type=float, default=10.0)
    parser.add_argument("--on-outage", choices=["refuse", "local"], default="refuse", help="state.on_outage")
    parser.add_argument("--no-kill", dest="kill", action="store_false")
    parser.add_argument("--json", type=Path, default=None, help="write the report here too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, policy)")
    args = parser.parse_args()
    per_call = 0.0002 if args.upstream == "own" else 0.0001  # fakellm's echoes are shorter
    budget = args.budget if args.budget is not None else round(args.requests / 4 * per_call, 4)
    run = Run(args, Path(tempfile.mkdtemp(prefix="llmr-soak-")))
    bindir = _postgres_bin()
    if shutil.which("redis-server") is None or bindir is None:
        sys.exit("the soak needs redis-server and PostgreSQL (apt-get install -y redis-server postgresql)")
    run.work.chmod(0o755)  # PostgreSQL runs as its own user (when this is root) and must reach its directory
    (run.work / "pg").mkdir()
    (run.work / "redis").mkdir()
    redis = RedisServer(run.work / "redis").start()
    pg = PostgresServer(bindir, run.work / "pg").init().start()
    args.services = {"redis": redis, "postgres": pg}
    try:
        start_upstreams(run)
        start_gateways(run, redis, pg, budget)
        t0 = time.monotonic()
        asyncio.run(load(run, plan(args)))
        elapsed = time.monotonic() - t0
        breakers = breaker_events(run)
        codes = stop_gateways(run)
        result = report(run, pg, budget, breakers, codes) | {"seconds": round(elapsed, 1)}
    finally:
        for proc in run.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for server in (redis, pg):
            with contextlib.suppress(Exception):  # already down
                server.stop()
        if not args.keep:
            shutil.rmtree(run.work, ignore_errors=True)
    return print_report(result, args)


def print_report(result: dict[str, Any], args: argparse.Namespace) -> int:
    print(f"soak ({args.upstream} upstreams): {result['requests']} requests at concurrency {args.concurrency}, "
          f"{args.fault_rate:.0%} faults, seed {args.seed}, {result['seconds']} s")  # fmt: skip
    print(f"  answered: {result['answered']}; statuses {result['statuses']}")
    for example in result["untyped_examples"]:
        print(f"    untyped: {example}")
    for detail, n in result["typed_errors"].items():
        print(f"    {n:5d} x {detail}")
    print(f"  events: {result['events']}")
    print(f"  breaker transitions: {result['breaker_transitions']}")
    if "upstreams" in result:
        for u in result["upstreams"]:
            print(f"  {u['name']}: {u['requests']} requests, faults {u['faults']}")
    missed = 0
    for name, ok, detail in verdicts(result, args.upstream):
        missed += not ok
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {detail}")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
