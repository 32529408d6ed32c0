"""The ``llm`` classifier: asks a cheap catalogue model for the task, as strict JSON.

The model gets the taxonomy's labels with their descriptions and the latest user turn (truncated: the first
``max_prompt_chars`` minus 300 characters and the last 300), and must answer ``{"label": ..., "confidence":
...}``. The answer is validated: JSON object, a label of the taxonomy, a confidence in [0, 1].

When the answer is not valid JSON, names an unknown label, times out (``timeout_s``) or the provider fails,
the stage has no opinion: it raises :class:`LLMClassifierError` with the reason, which the router records in
the stage's ``error`` and treats as no prediction, so the cascade keeps the best earlier guess, marked
``"<stage> (below threshold)"``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, ClassVar

import anyio
from llm_router import Classifier, ComponentContext, Prediction
from llm_router.types import CompletionRequest, Message, RouteRequest
from pydantic import BaseModel, ConfigDict, Field

TAIL_CHARS = 300
_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

SYSTEM_PROMPT = """You classify a user's request into exactly one task label for an LLM router.
Labels:
{labels}

Answer with one JSON object and nothing else: {{"label": "<one label above>", "confidence": <number 0..1>}}"""


class LLMClassifierError(RuntimeError):
    """The LLM stage has no valid answer (bad JSON, unknown label, timeout, provider error)."""


class LLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="openai/gpt-4o-mini", description="catalogue id of the model to ask")
    timeout_s: Annotated[float, Field(gt=0)] = 5.0
    max_tokens: Annotated[int, Field(gt=0)] = 50
    max_prompt_chars: Annotated[int, Field(ge=500)] = 2000


class LLMClassifier(Classifier):
    """Asks a catalogue model (through the router's provider layer) which task a request is."""

    name: ClassVar[str] = "llm"
    Config: ClassVar[type[BaseModel]] = LLMConfig
    is_async: ClassVar[bool] = True

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, LLMConfig)
        self.cfg = config
        lines = [
            f"- {label}: {spec.description}" if spec.description else f"- {label}"
            for label, spec in context.taxonomy.tasks.items()
        ]
        self.system = SYSTEM_PROMPT.format(labels="\n".join(lines))
        self._labels = {label.lower(): label for label in context.taxonomy.tasks}

    def build_request(self, request: RouteRequest) -> CompletionRequest | None:
        turns = [m.text() for m in request.messages if m.role == "user" and m.text().strip()]
        if not turns:
            return None
        text = turns[-1]
        limit = self.cfg.max_prompt_chars
        if len(text) > limit:
            text = text[: limit - TAIL_CHARS] + "\n[…]\n" + text[-TAIL_CHARS:]
        return CompletionRequest(
            model=self.cfg.model,
            messages=(Message(role="system", content=self.system), Message(role="user", content=text)),
            max_tokens=self.cfg.max_tokens,
            temperature=0.0,
            response_format={"type": "json_object"},
            timeout_s=self.cfg.timeout_s,
        )

    def parse(self, text: str) -> Prediction:
        """Validate the model's answer; raise :class:`LLMClassifierError` with the reason when it is not valid."""
        m = _FENCE_RE.match(text)
        body = m.group(1) if m else text.strip()
        try:
            data: Any = json.loads(body)
        except ValueError as exc:
            raise LLMClassifierError(f"invalid JSON from the model: {text[:80]!r}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("label"), str):
            raise LLMClassifierError(f"answer lacks a string 'label': {text[:80]!r}")
        label = self._labels.get(data["label"].strip().lower())
        if label is None:
            raise LLMClassifierError(f"unknown label {data['label']!r}")
        confidence = data.get("confidence", 0.5)
        if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
            raise LLMClassifierError(f"confidence must be a number in [0, 1] (got {confidence!r})")
        return Prediction(task=label, confidence=float(confidence), scores={label: float(confidence)})

    async def aclassify(self, request: RouteRequest) -> Prediction | None:
        if self.context.complete is None:
            raise LLMClassifierError("this router gives classifiers no model access")
        completion = self.build_request(request)
        if completion is None:
            return None
        try:
            with anyio.fail_after(self.cfg.timeout_s):
                response = await self.context.complete(self.cfg.model, completion)
        except TimeoutError as exc:
            raise LLMClassifierError(f"timeout after {self.cfg.timeout_s:g} s asking {self.cfg.model}") from exc
        except LLMClassifierError:
            raise
        except Exception as exc:
            raise LLMClassifierError(f"{self.cfg.model} failed: {type(exc).__name__}: {exc}") from exc
        return self.parse(response.text)
