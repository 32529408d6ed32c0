"""Development sessions. `nox -s tests` is the default test run (what CI and the README run).

Sessions:
  tests          core + every plugin distribution + the test plugin packages, whole suite
  plugin-<name>  one plugin distribution's own tests, with only the core and that plugin installed
  lint           ruff
  types          mypy --strict on core
  bench          benchmarks (decision latency, …); prints figures
  bench_gateway  gateway overhead vs. direct upstream, LiteLLM's proxy and a bare pass-through (wrk); not default
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"

ROOT = Path(__file__).parent
PLUGINS = (
    sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists())
    if (ROOT / "plugins").exists()
    else []
)
TEST_PLUGINS = sorted(str(p) for p in (ROOT / "tests" / "plugins").iterdir() if (p / "pyproject.toml").exists())
TEST_DEPS = [
    "pytest>=8.2,<10",
    "anyio>=4.4,<5",
    "pytest-timeout>=2.3,<3",
    "openai>=1.40,<4",  # the gateway tests drive it with the official SDK
    "httpx>=0.27,<1",
]


def _install_core(session: nox.Session, *extra: str) -> None:
    session.install("-e", "./core", *extra)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite: core, all plugin distributions, integration tests with real plugin packages."""
    session.install("-e", "./core[gateway-fast]")
    for name in PLUGINS:
        session.install("-e", f"./plugins/{name}")
    session.install(*TEST_PLUGINS)
    session.install(*TEST_DEPS)
    session.run("pytest", "-q", "-p", "no:cacheprovider", *session.posargs)


for _name in PLUGINS:

    @nox.session(name=f"plugin-{_name}")
    def plugin_session(session: nox.Session, _plugin: str = _name) -> None:
        """One plugin distribution's tests against only the core and that plugin."""
        _install_core(session)
        session.install("-e", f"./plugins/{_plugin}")
        session.install(*TEST_DEPS)
        session.run("pytest", "-q", "-p", "no:cacheprovider", f"plugins/{_plugin}/tests", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6,<1")
    session.run("ruff", "check", "core", "plugins", "tests", "benchmarks", "noxfile.py")


@nox.session
def types(session: nox.Session) -> None:
    _install_core(session)
    session.install("mypy>=1.11,<3", "types-PyYAML>=6.0,<7", "types-jsonschema", "pytest>=8.2,<10")
    session.run("mypy", "--strict", "core/src/llm_router")


@nox.session
def bench(session: nox.Session) -> None:
    """Decision latency of route() (p50/p99), in-process, after warm-up, pinned to one core."""
    _install_core(session)
    session.run("python", "benchmarks/bench_route.py", *session.posargs)


@nox.session
def bench_gateway(session: nox.Session) -> None:
    """Added latency and req/s of `llm-router serve` vs. a direct upstream, a bare pass-through proxy and
    LiteLLM's proxy, under wrk (needs `apt-get install wrk` and `taskset`). Options: see --help."""
    session.install("-e", "./core[gateway-fast]", "aiohttp>=3.9,<4")
    session.run("python", "benchmarks/bench_gateway.py", *session.posargs)
