"""Gateway overhead: the same bounded load (wrk, fixed request count) sent to a fast fake OpenAI upstream
directly, through `llm-router serve`, through a bare pass-through proxy (the floor) and through LiteLLM's proxy.

    python benchmarks/bench_gateway.py [--requests 5000] [--concurrency 1 10 50] [--litellm /tmp/litellm-venv]

Proxies run pinned to CPU 0, the upstream and wrk to CPU 1 (taskset). Reports p50/p99 latency, the latency
each proxy adds over the direct call, req/s, and ratios against the pass-through floor. Needs `wrk` (Debian:
`apt-get install -y wrk`), uvicorn + uvloop + httptools + starlette + aiohttp in this interpreter, and for the
LiteLLM row a separate venv with `pip install 'litellm[proxy]'` (skipped when absent).

llm-router routes with `model: auto` and the rules classifier to an `openai_compatible` provider. When no
installed plugin registers that provider type, the minimal pass-through provider below is registered in the
gateway process (it is benchmark scaffolding, not a provider plugin).

Internal sub-commands (run by the benchmark itself): `_upstream PORT`, `_passthrough PORT UPSTREAM`,
`_gateway PORT POLICY`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
MODEL = "fake-model"
PROMPT = "Summarise this paragraph in one sentence: the quick brown fox jumps over the lazy dog."
ANSWER = {
    "id": "chatcmpl-bench",
    "object": "chat.completion",
    "created": 1700000000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "A fox jumps over a dog.", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 25, "completion_tokens": 8, "total_tokens": 33},
    "system_fingerprint": None,
}


# ------------------------------------------------------------------------------------------------
# the fake upstream: raw ASGI, a fixed answer


def run_upstream(port: int) -> None:
    import uvicorn

    body = json.dumps(ANSWER).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while True:  # read the request body
            message = await receive()
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="error",
        access_log=False,
        lifespan="off",
    )


# ------------------------------------------------------------------------------------------------
# the floor: a bare pass-through proxy (Starlette on uvicorn + uvloop + httptools, one aiohttp client)


def run_passthrough(port: int, upstream: str) -> None:
    import uvicorn

    app = passthrough_app(upstream)
    uvicorn.run(app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="error", access_log=False)


def passthrough_app(upstream: str) -> Any:
    """The floor's ASGI app: Starlette, one aiohttp client, each request's body POSTed to ``upstream``."""
    from contextlib import asynccontextmanager

    import aiohttp
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        nonlocal session
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await session.close()

    async def proxy(request: Request) -> Response:
        assert session is not None
        async with session.post(
            f"{upstream}/v1/chat/completions", data=await request.body(), headers={"content-type": "application/json"}
        ) as r:
            return Response(await r.read(), r.status, media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", proxy, methods=["POST"])], lifespan=lifespan)


# ------------------------------------------------------------------------------------------------
# llm-router serve, with a minimal openai_compatible provider when none is installed


def _bench_provider_plugin() -> Any:
    import aiohttp
    import llm_router
    from llm_router import errors
    from llm_router.types import CompletionRequest, CompletionResponse, Usage
    from pydantic import BaseModel, ConfigDict

    class PassThroughConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        base_url: str
        api_key: str = "unused"

    class PassThroughProvider(llm_router.Provider):
        """One aiohttp session; POST /chat/completions; no retries (the router does those)."""

        name = "openai_compatible"
        Config = PassThroughConfig

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self._session: aiohttp.ClientSession | None = None

        async def complete(self, request: CompletionRequest) -> CompletionResponse:
            if self._session is None:
                self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
            payload: dict[str, Any] = {
                "model": request.model,
                "messages": [m.model_dump(exclude_none=True) for m in request.messages],
            }
            if request.max_tokens is not None:
                payload["max_tokens"] = request.max_tokens
            if request.temperature is not None:
                payload["temperature"] = request.temperature
            try:
                async with self._session.post(
                    f"{self.config.base_url}/chat/completions",
                    json=payload,  # type: ignore[attr-defined]
                    headers={"authorization": f"Bearer {self.config.api_key}"},  # type: ignore[attr-defined]
                ) as r:
                    data = await r.json()
                    if r.status >= 400:
                        raise errors.ServerError(
                            str(data)[:200], provider=self.context.name, model=request.model, status_code=r.status
                        )
            except aiohttp.ClientError as exc:
                raise errors.ConnectionError(str(exc), provider=self.context.name, model=request.model) from None
            choice = data["choices"][0]
            usage = data.get("usage") or {}
            return CompletionResponse(
                text=choice["message"].get("content") or "",
                model=data.get("model", request.model),
                finish_reason=choice.get("finish_reason"),
                usage=Usage(
                    input_tokens=usage.get("prompt_tokens", 0), output_tokens=usage.get("completion_tokens", 0)
                ),
                request_id=data.get("id"),
            )

        async def aclose(self) -> None:
            if self._session is not None:
                await self._session.close()

    class Plugin:
        @llm_router.hookimpl
        def register_providers(self, register: Any) -> None:
            register(PassThroughProvider)

    return Plugin()


def run_gateway(port: int, policy: str, ledger: str) -> None:
    import uvicorn
    from llm_router import Router
    from llm_router.gateway import create_app

    router = Router(policy)
    if router.plugins.registry.get("provider", "openai_compatible") is None:
        router = Router(policy, plugins=[_bench_provider_plugin()])
        print(
            "bench: openai_compatible provider not installed; using the benchmark's pass-through provider",
            file=sys.stderr,
        )
    uvicorn.run(  # as `llm-router serve` runs it
        create_app(router, ledger_path=ledger),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="error",
        access_log=False,
        server_header=False,
    )


GATEWAY_POLICY = """
providers:
  upstream: {type: openai_compatible, base_url: "%(upstream)s/v1", api_key: bench%(client)s}
models:
  - id: upstream/%(model)s
    price: {input_per_mtok: 0.15, output_per_mtok: 0.6}
    context_window: 128000
    max_output_tokens: 16384
    quality: {summarization: 0.8, chat: 0.8}
classify: [rules]
fallback: {retries: 0}
"""


# ------------------------------------------------------------------------------------------------
# the load


LUA = """
local body = [[%(body)s]]
local limit = %(limit)d
local count = 0
local non200 = 0
local marker = "%(marker)s"
wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
%(auth)s
response = function(status, headers, body)
  count = count + 1
  if status ~= 200 then non200 = non200 + 1 end
  if count == limit then
    local f = io.open(marker, "w")
    f:write("done")
    f:close()
    wrk.thread:stop()
  end
end
done = function(summary, latency, requests)
  io.write(string.format('BENCHJSON {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"mean_us": %%f, "errors": %%d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), latency.mean, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


PROCS: list[subprocess.Popen[bytes]] = []


def wait_http(url: str, payload: bytes, headers: dict[str, str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        dead = [p for p in PROCS if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a benchmark process exited early: {dead[0].args}")
        try:
            req = urllib.request.Request(url, data=payload, headers={"content-type": "application/json", **headers})
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer 200 within {timeout}s: {last}")


def wait_chat(url: str, model: str = MODEL, key: str | None = None) -> None:
    """:func:`wait_http` with a one-line chat completion for ``model`` (and ``key`` as the bearer)."""
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    wait_http(url, body, {"authorization": f"Bearer {key}"} if key else {})


def start(cmd: list[str], cpu: int | None, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``cmd`` in its own session, pinned to ``cpu`` when taskset exists (``None``: not pinned)."""
    pinned = ["taskset", "-c", str(cpu), *cmd] if cpu is not None and shutil.which("taskset") else cmd
    return subprocess.Popen(pinned, env={**os.environ, **(env or {})}, start_new_session=True)


def start_upstream(cpu: int | None = 1) -> str:
    """The fake upstream in a process of its own (kept in PROCS, pinned to ``cpu``); its URL once it answers."""
    port = free_port()
    PROCS.append(start([sys.executable, str(HERE), "_upstream", str(port)], cpu=cpu))
    upstream = f"http://127.0.0.1:{port}"
    wait_chat(f"{upstream}/v1/chat/completions")
    return upstream


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_wrk(
    url: str, model: str, key: str | None, requests: int, concurrency: int, workdir: Path, pin: bool = True
) -> dict[str, Any]:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}]})
    per_conn = max(1, requests // concurrency)
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    script = workdir / f"post-{concurrency}.lua"
    marker = workdir / "wrk-done"
    marker.unlink(missing_ok=True)
    # wrk has no request-count option: the script counts responses (one thread: the whole run), writes a
    # marker at the limit, and we interrupt wrk (SIGINT ends its run early and prints the summary)
    script.write_text(LUA % {"body": body, "limit": per_conn * concurrency, "auth": auth, "marker": marker})
    cmd = ["wrk", "-t1", f"-c{concurrency}", "-d600s", "--timeout", "30s", "-s", str(script), url]
    if pin and shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not marker.exists() and proc.poll() is None:
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(60)
    if "BENCHJSON" not in out:
        raise RuntimeError(f"wrk failed: {err or out}")
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCHJSON "))
    data: dict[str, Any] = json.loads(line[len("BENCHJSON ") :])
    data["rps"] = data["requests"] / (data["duration_us"] / 1e6)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="requests per run (fixed count)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--warmup", type=int, default=500, help="requests sent to each target before measuring")
    parser.add_argument("--litellm", default="/tmp/litellm-venv", help="venv with litellm[proxy] ('' to skip)")
    parser.add_argument("--targets", nargs="+", default=["direct", "passthrough", "llm-router", "litellm"])
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--http-client",
        choices=["httpx", "aiohttp", "direct"],
        nargs="+",
        default=None,
        help="the OpenAI provider plugin's http_client for the llm-router target; several give one llm-router "
        "target each, measured side by side (default: the plugin's default)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    procs = PROCS
    try:
        upstream = start_upstream(cpu=1)

        targets: dict[str, tuple[str, str, str | None]] = {"direct": (f"{upstream}/v1/chat/completions", MODEL, None)}
        if "passthrough" in args.targets:
            port = free_port()
            procs.append(start([sys.executable, str(HERE), "_passthrough", str(port), upstream], cpu=0))
            targets["passthrough"] = (f"http://127.0.0.1:{port}/v1/chat/completions", MODEL, None)
        if "llm-router" in args.targets:
            for http_client in args.http_client or [None]:
                port = free_port()
                name = f"llm-router[{http_client}]" if http_client else "llm-router"
                policy = workdir / f"policy-{http_client}.yaml"
                ledger = os.environ.get("BENCH_LEDGER", str(workdir / f"usage-{http_client}.sqlite3"))  # /dev/shm?
                client = f", http_client: {http_client}" if http_client else ""
                policy.write_text(
                    textwrap.dedent(GATEWAY_POLICY % {"upstream": upstream, "model": MODEL, "client": client})
                )
                procs.append(start([sys.executable, str(HERE), "_gateway", str(port), str(policy), ledger], cpu=0))
                targets[name] = (f"http://127.0.0.1:{port}/v1/chat/completions", "auto", None)
        litellm_bin = Path(args.litellm) / "bin" / "litellm" if args.litellm else None
        if "litellm" in args.targets and litellm_bin is not None and litellm_bin.exists():
            port = free_port()
            cfg = workdir / "litellm.yaml"
            cfg.write_text(
                textwrap.dedent(f"""
                model_list:
                  - model_name: {MODEL}
                    litellm_params: {{model: openai/{MODEL}, api_base: "{upstream}/v1", api_key: bench}}
                litellm_settings: {{drop_params: true, telemetry: false}}
                general_settings: {{master_key: sk-bench-master}}
            """)
            )
            procs.append(
                start(
                    [
                        str(litellm_bin),
                        "--config",
                        str(cfg),
                        "--port",
                        str(port),
                        "--host",
                        "127.0.0.1",
                        "--num_workers",
                        "1",
                    ],
                    cpu=0,
                    env={"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR", "LITELLM_TELEMETRY": "False"},
                )
            )
            targets["litellm"] = (f"http://127.0.0.1:{port}/v1/chat/completions", MODEL, "sk-bench-master")
        elif "litellm" in args.targets:
            print(f"litellm: skipped ({litellm_bin} not found)", file=sys.stderr)

        for _name, (url, model, key) in targets.items():
            wait_chat(url, model, key)
            run_wrk(url, model, key, args.warmup, 10, workdir)

        results: dict[str, dict[int, dict[str, Any]]] = {}
        for c in args.concurrency:
            for name, (url, model, key) in targets.items():
                results.setdefault(name, {})[c] = run_wrk(url, model, key, args.requests, c, workdir)
                r = results[name][c]
                print(
                    f"  {name:20s} c={c:<3d} p50 {r['p50_us'] / 1000:8.2f} ms  p99 {r['p99_us'] / 1000:8.2f} ms  "
                    f"{r['rps']:9.0f} req/s  errors {r['errors']}",
                    file=sys.stderr,
                )
        report(results, args.requests)
        if args.json:
            print(json.dumps(results, indent=2))
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


def report(results: dict[str, dict[int, dict[str, Any]]], requests: int) -> None:
    direct = results["direct"]
    print(f"\n{requests} requests per run; added latency = target - direct upstream (same concurrency)\n")
    print("| target | concurrency | p50 ms | p99 ms | added p50 ms | added p99 ms | req/s | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, runs in results.items():
        for c, r in runs.items():
            d = direct[c]
            print(
                f"| {name} | {c} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | "
                f"{(r['p50_us'] - d['p50_us']) / 1000:.2f} | {(r['p99_us'] - d['p99_us']) / 1000:.2f} | "
                f"{r['rps']:.0f} | {r['errors']} |"
            )
    floor = results.get("passthrough")
    routers = [name for name in results if name.startswith("llm-router")]
    if floor:
        print("\nratios against the pass-through floor (added p50 latency; req/s)")
        for name in [*routers, "litellm"]:
            if name not in results:
                continue
            for c, r in results[name].items():
                f, d = floor[c], direct[c]
                added_f = max(1.0, f["p50_us"] - d["p50_us"])
                print(
                    f"  {name} c={c}: added p50 x{(r['p50_us'] - d['p50_us']) / added_f:.1f}, "
                    f"req/s x{r['rps'] / f['rps']:.2f}"
                )
    if "litellm" in results:
        for name in routers:
            print(f"\n{name} vs litellm")
            for c, r in results[name].items():
                l_ = results["litellm"][c]
                print(
                    f"  c={c}: p50 {r['p50_us'] / l_['p50_us']:.2f}x, p99 {r['p99_us'] / l_['p99_us']:.2f}x, "
                    f"req/s {r['rps'] / l_['rps']:.2f}x"
                )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_upstream":
        run_upstream(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_passthrough":
        run_passthrough(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_gateway":
        run_gateway(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        main()
