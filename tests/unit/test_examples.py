"""The runnable examples run, and say what the docs say they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"LLM_ROUTER_DISABLE_PLUGIN_AUTOLOAD": "1", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_embed_app_walks_the_public_api() -> None:
    out = _run("embed_app.py")
    assert "'Write a Python function to sort a list': echo/small for task 'code'" in out
    assert "answer: '[small] Write a Python function to sort a list'" in out
    assert "streamed: '[small] Tell me a story about a lighthouse'  by echo/small" in out
    assert "completed True" in out
    assert "refused: invalid request:" in out and "the prompt is empty" in out
    assert "no candidate: 2 models rejected" in out


def test_route_basic_explains_each_decision() -> None:
    out = _run("route_basic.py")
    assert out.count(" for task ") >= 5 and "cost-leaning:" in out
