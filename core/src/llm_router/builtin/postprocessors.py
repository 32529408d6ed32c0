"""Built-in post-processors.

* ``json_schema``: when the request asked for JSON (``response_format`` ``json_object`` or
  ``json_schema``) or the policy gives a ``schema``, the answer must parse as JSON and, with a schema,
  validate against it (JSON Schema draft 2020-12). Otherwise the response is rejected and the router tries the
  next candidate.
* ``redact``: replaces matches of regular expressions (by default e-mail addresses and strings shaped like
  API keys) in the answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..components import ComponentContext, PostProcessor
from ..errors import PostprocessError
from ..hookspecs import hookimpl
from ..types import CompletionResponse, ModelInfo, RouteRequest


class JsonSchemaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    always: bool = Field(default=False, description="check every response, not only those that asked for JSON")


def _strip_fence(text: str) -> str:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = re.sub(r"^```[a-zA-Z]*\n?", "", stripped)
        stripped = re.sub(r"\n?```$", "", stripped)
    return stripped


class JsonSchemaPostProcessor(PostProcessor):
    name = "json_schema"
    Config: ClassVar[type[BaseModel]] = JsonSchemaConfig

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, JsonSchemaConfig)
        self.cfg = config
        if config.schema_ is not None:
            import jsonschema

            jsonschema.Draft202012Validator.check_schema(config.schema_)

    def _schema_for(self, request: RouteRequest) -> tuple[bool, dict[str, Any] | None]:
        fmt = request.response_format or {}
        kind = fmt.get("type")
        schema = self.cfg.schema_
        if kind == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema", schema)
        wants = kind in ("json_object", "json_schema") or self.cfg.always or self.cfg.schema_ is not None
        return wants, schema

    async def process(
        self, response: CompletionResponse, request: RouteRequest, model: ModelInfo
    ) -> CompletionResponse:
        wants, schema = self._schema_for(request)
        if not wants or response.tool_calls:
            return response
        try:
            value = json.loads(_strip_fence(response.text))
        except json.JSONDecodeError as exc:
            raise PostprocessError(self.name, f"{model.id} answered with invalid JSON: {exc}") from None
        if schema is not None:
            import jsonschema

            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
            if errors:
                first = errors[0]
                where = "/".join(str(p) for p in first.path) or "(root)"
                raise PostprocessError(
                    self.name, f"{model.id}'s JSON does not match the schema at {where}: {first.message}"
                )
        return response


DEFAULT_REDACTIONS = (
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
    r"\b(sk|pk|rk)-[A-Za-z0-9_-]{16,}\b",
)


class RedactConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_REDACTIONS))
    replacement: str = "[REDACTED]"


class RedactPostProcessor(PostProcessor):
    name = "redact"
    Config: ClassVar[type[BaseModel]] = RedactConfig

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, RedactConfig)
        self.replacement = config.replacement
        self.regex = re.compile("|".join(f"(?:{p})" for p in config.patterns)) if config.patterns else None

    async def process(
        self, response: CompletionResponse, request: RouteRequest, model: ModelInfo
    ) -> CompletionResponse:
        if self.regex is None or not response.text:
            return response
        text = self.regex.sub(self.replacement, response.text)
        return response if text == response.text else response.model_copy(update={"text": text})


@hookimpl
def register_postprocessors(register: Callable[[type[PostProcessor]], None]) -> None:
    register(JsonSchemaPostProcessor)
    register(RedactPostProcessor)
