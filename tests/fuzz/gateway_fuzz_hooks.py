"""Schemathesis hooks of ``nox -s fuzz`` (loaded through ``SCHEMATHESIS_HOOKS``): steer generated request bodies
past the first checks, so that the fuzzer reaches routing, the provider call and the answer.

Bodies generated from the schema alone almost never name a model the gateway knows (404) or hold a message with
text (422: a blank prompt). For about half of the chat and route bodies, the hook names a known model (`auto`,
the alias, or a catalogue id, one of them outside latin-1) and/or appends a user message with text; the rest
go as generated, so the 404 and 422 paths stay fuzzed too.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

MODELS = [None, "auto", "cheap", "up/small", "up/模型"]  # None: keep the generated one


def _steer(body: dict[str, Any], model: str | None, prompt: bool) -> dict[str, Any]:
    body = dict(body)
    if model is not None:
        body["model"] = model
    if prompt:
        body["messages"] = [*body["messages"], {"role": "user", "content": "Summarise the fuzzing run in a line."}]
    return body


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return st.just(body)
    return st.tuples(st.sampled_from(MODELS), st.booleans()).map(lambda choice: _steer(body, *choice))
