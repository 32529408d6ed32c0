"""The built-in rule classifier: keywords and regular expressions from the taxonomy, with a calibrated
confidence.

Each task of the taxonomy scores the sum of its matched keywords (weight 1 each, on word boundaries) and
patterns (weight 2 each) over the latest user turn (earlier turns count half). The raw confidence is
``top / (top + runner_up + 1)``; it is mapped to a calibrated probability through an isotonic table fitted
on labelled data (``data/rules_calibration.json``, see its ``provenance``), so that a confidence of 0.8
means the rule classifier is right about 80 % of the time on that data. With a custom taxonomy, or
``calibration: none``, the raw confidence is used as it is.

Long prompts are cut deliberately: the first ``max_chars`` characters of a turn (default 4,000) and its
last 1,000 are scanned, so the cost stays bounded however long the prompt is.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..components import Classifier, ComponentContext, Prediction
from ..hookspecs import hookimpl
from ..taxonomy import DEFAULT_TASKS
from ..types import RouteRequest

TAIL_CHARS = 1000


class RulesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calibration: Literal["builtin", "none"] = "builtin"
    max_chars: Annotated[int, Field(ge=100)] = 4000
    history_turns: Annotated[int, Field(ge=0)] = 2


def _keyword_regex(keyword: str) -> str:
    escaped = re.escape(keyword.lower())
    left = r"\b" if keyword[:1].isalnum() else ""
    right = r"\b" if keyword[-1:].isalnum() else ""
    return f"{left}{escaped}{right}"


class _TaskRules:
    __slots__ = ("keywords", "patterns", "task")

    def __init__(self, task: str, keywords: tuple[str, ...], patterns: tuple[str, ...]) -> None:
        self.task = task
        self.keywords = re.compile("|".join(_keyword_regex(k) for k in keywords)) if keywords else None
        self.patterns = [re.compile(p, re.IGNORECASE | re.MULTILINE) for p in patterns]

    def score(self, text: str, lowered: str) -> float:
        total = 0.0
        if self.keywords is not None:
            total += len(set(self.keywords.findall(lowered)))
        for pattern in self.patterns:
            if pattern.search(text):
                total += 2.0
        return total


class Calibration:
    """A monotone map from raw confidence to probability (piecewise linear between fitted points)."""

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        self.xs, self.ys = xs, ys

    def __call__(self, raw: float) -> float:
        xs, ys = self.xs, self.ys
        if not xs:
            return raw
        if raw <= xs[0]:
            return ys[0]
        if raw >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, raw)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (raw - x0) / (x1 - x0) if x1 > x0 else y1

    @classmethod
    def builtin(cls) -> Calibration:
        text = resources.files("llm_router").joinpath("data/rules_calibration.json").read_text(encoding="utf-8")
        data = json.loads(text)
        return cls([float(x) for x in data["x"]], [float(y) for y in data["y"]])


class RuleClassifier(Classifier):
    """Keywords and patterns of the taxonomy; cheap (tens of microseconds) and explainable."""

    name = "rules"
    Config: ClassVar[type[BaseModel]] = RulesConfig

    def __init__(self, config: BaseModel, context: ComponentContext) -> None:
        super().__init__(config, context)
        assert isinstance(config, RulesConfig)
        self.cfg = config
        taxonomy = context.taxonomy
        self.rules = [_TaskRules(name, spec.keywords, spec.patterns) for name, spec in taxonomy.tasks.items()]
        self.default_task = taxonomy.default_task
        builtin_taxonomy = set(taxonomy.tasks) == set(DEFAULT_TASKS) and all(
            taxonomy.tasks[k] == DEFAULT_TASKS[k] for k in DEFAULT_TASKS
        )
        self.calibrate: Callable[[float], float] = (
            Calibration.builtin() if config.calibration == "builtin" and builtin_taxonomy else (lambda raw: raw)
        )

    def _cut(self, text: str) -> str:
        limit = self.cfg.max_chars
        if len(text) <= limit + TAIL_CHARS:
            return text
        return text[:limit] + "\n" + text[-TAIL_CHARS:]

    def raw_scores(self, request: RouteRequest) -> dict[str, float]:
        scores = dict.fromkeys((r.task for r in self.rules), 0.0)
        user_turns = [m.text() for m in request.messages if m.role == "user"]
        if not user_turns:
            user_turns = [request.messages[-1].text()]
        latest = self._cut(user_turns[-1])
        lowered = latest.lower()
        for rules in self.rules:
            scores[rules.task] += rules.score(latest, lowered)
        for earlier in user_turns[-1 - self.cfg.history_turns : -1]:
            text = self._cut(earlier)
            low = text.lower()
            for rules in self.rules:
                scores[rules.task] += 0.5 * rules.score(text, low)
        return scores

    def classify(self, request: RouteRequest) -> Prediction:
        scores = self.raw_scores(request)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        top_task, top = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        if top <= 0:
            return Prediction(self.default_task, self.calibrate(0.0), scores)
        raw = top / (top + second + 1.0)
        return Prediction(top_task, self.calibrate(raw), scores)


@hookimpl
def register_classifiers(register: Callable[[type[Classifier]], None]) -> None:
    register(RuleClassifier)
