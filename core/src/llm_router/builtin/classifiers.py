"""The built-in rule classifier: keywords and regular expressions from the taxonomy, with a calibrated
confidence.

Each task of the taxonomy scores the sum of its matched keywords (weight 1 each, on word boundaries) and
patterns (weight 2 each) over the latest user turn (earlier turns count half). The raw confidence is
``top / (top + runner_up + 1)``; it is mapped to a calibrated probability through an isotonic table fitted
on labelled data (``data/rules_calibration.json``, see its ``provenance``), so that a confidence of 0.8
means the rule classifier is right about 80 % of the time on that data. With a custom taxonomy, or
``calibration: none``, the raw confidence is used as it is.

Long prompts are cut deliberately, so the cost stays bounded however long the prompt is: a turn longer than
``head_chars + tail_chars`` (default 400 + 250) is scanned as its first paragraph (at most ``head_chars``)
and its last ``tail_chars`` characters, joined by a blank line when the turn has paragraphs. The instruction
sits at the start or the end of a prompt; a long middle is the material it is about.
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


class RulesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    calibration: Literal["builtin", "none"] = "builtin"
    head_chars: Annotated[int, Field(ge=50)] = 400
    tail_chars: Annotated[int, Field(ge=0)] = 250
    history_turns: Annotated[int, Field(ge=0)] = 2


_WORD = re.compile(r"\w+")


def _keyword_regex(keyword: str) -> str:
    escaped = re.escape(keyword.lower())
    left = r"\b" if keyword[:1].isalnum() else ""
    right = r"\b" if keyword[-1:].isalnum() else ""
    return f"{left}{escaped}{right}"


def _literal_triggers(pattern: str) -> tuple[str, ...] | None:
    """Lower-case literal strings one of which must occur in any text ``pattern`` matches, or ``None``
    when they cannot be worked out (the pattern then always runs).

    Looks at the pattern's first element after any ``^``/``\\b`` anchors: a literal run, or a group of
    alternatives that each start with a literal run."""
    try:
        import re._parser as sre  # type: ignore[import-not-found,unused-ignore]
        from re._constants import AT, BRANCH, IN, LITERAL, SUBPATTERN  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # pragma: no cover - Python < 3.11
        return None
    try:
        items = list(sre.parse(pattern))
    except Exception:
        return None

    def literal_prefix(seq: list[tuple[object, object]]) -> str:
        chars = []
        for op, arg in seq:
            if op is AT:
                continue
            if op is LITERAL and isinstance(arg, int):
                chars.append(chr(arg))
                continue
            break
        return "".join(chars).lower()

    while items and items[0][0] is AT:
        items.pop(0)
    if not items:
        return None
    op, arg = items[0]
    if op is LITERAL:
        prefix = literal_prefix(items)
        return (prefix,) if len(prefix) >= 2 else None
    if op is SUBPATTERN:
        body = list(arg[-1])
        if len(body) == 1 and body[0][0] is BRANCH:
            triggers = []
            for branch in body[0][1][1]:
                prefix = literal_prefix(list(branch))
                if len(prefix) < 2:
                    return None
                triggers.append(prefix)
            return tuple(triggers)
        prefix = literal_prefix(body)
        return (prefix,) if len(prefix) >= 2 else None
    if op is IN:
        return None
    return None


class _CompiledRules:
    """Every task's keywords and patterns, compiled for speed.

    One-word keywords are found by one scan of the prompt's words; longer ones by substring, then checked. Each
    pattern is its own regular expression (one big alternation is slower in Python's engine), guarded by
    the literal words one of which it needs: a pattern whose words do not occur is not run at all. A keyword
    or pattern counts once per prompt however often it matches."""

    def __init__(self, tasks: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
        self.tasks = list(tasks)
        self.keyword_tasks: dict[str, list[str]] = {}
        self.patterns: list[tuple[str, re.Pattern[str], frozenset[str] | None]] = []
        for task, (keywords, patterns) in tasks.items():
            for keyword in keywords:
                self.keyword_tasks.setdefault(keyword.lower(), []).append(task)
            for pattern in patterns:
                try:
                    compiled = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
                except re.error as exc:
                    raise ValueError(f"task {task!r}: invalid pattern {pattern!r}: {exc}") from None
                triggers = _literal_triggers(pattern)
                self.patterns.append((task, compiled, frozenset(triggers) if triggers is not None else None))
        # Keywords that are one word match as a word of the prompt (a set lookup: one scan of the prompt for
        # all of them); the others (several words, or symbols such as "c++") are looked for as substrings
        # first and confirmed on word boundaries only when present.
        self.word_keywords = {k for k in self.keyword_tasks if _WORD.fullmatch(k)}
        self.other_keywords = {
            k: re.compile(_keyword_regex(k)) for k in sorted(self.keyword_tasks) if k not in self.word_keywords
        }
        # Every literal string worth a substring test (pattern triggers and the other keywords), once each,
        # and which patterns each trigger lets run; patterns without triggers always run.
        self.always = frozenset(i for i, (_, _, ts) in enumerate(self.patterns) if ts is None)
        self.by_trigger: dict[str, frozenset[int]] = {}
        for i, (_, _, ts) in enumerate(self.patterns):
            for t in ts or ():
                self.by_trigger[t] = self.by_trigger.get(t, frozenset()) | {i}
        self.literals = sorted(set(self.by_trigger) | set(self.other_keywords))

    def add_scores(self, scores: dict[str, float], text: str, weight: float) -> None:
        lowered = text.lower()
        found = self.word_keywords.intersection(_WORD.findall(lowered)) if self.word_keywords else set()
        run = self.always
        for literal in [t for t in self.literals if t in lowered]:
            patterns = self.by_trigger.get(literal)
            if patterns is not None:
                run = run | patterns
            confirm = self.other_keywords.get(literal)
            if confirm is not None and confirm.search(lowered):
                found.add(literal)
        for i in run:
            task, compiled, _ = self.patterns[i]
            if compiled.search(text):
                scores[task] += 2.0 * weight
        for keyword in found:
            for task in self.keyword_tasks[keyword]:
                scores[task] += weight


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
        self.rules = _CompiledRules({name: (spec.keywords, spec.patterns) for name, spec in taxonomy.tasks.items()})
        self.default_task = taxonomy.default_task
        builtin_taxonomy = set(taxonomy.tasks) == set(DEFAULT_TASKS) and all(
            taxonomy.tasks[k] == DEFAULT_TASKS[k] for k in DEFAULT_TASKS
        )
        self.calibrate: Callable[[float], float] = (
            Calibration.builtin() if config.calibration == "builtin" and builtin_taxonomy else (lambda raw: raw)
        )

    def _cut(self, text: str) -> str:
        head_chars, tail_chars = self.cfg.head_chars, self.cfg.tail_chars
        if len(text) <= head_chars + tail_chars:
            return text
        paragraph = text.find("\n\n", 0, head_chars)
        head = text[:paragraph] if paragraph > 0 else text[:head_chars]
        tail = text[-tail_chars:] if tail_chars else ""
        return head + ("\n\n" if paragraph > 0 or "\n\n" in text else "\n") + tail

    def raw_scores(self, request: RouteRequest) -> dict[str, float]:
        scores = dict.fromkeys(self.rules.tasks, 0.0)
        user_turns = [m.text() for m in request.messages if m.role == "user"]
        if not user_turns:
            user_turns = [request.messages[-1].text()]
        self.rules.add_scores(scores, self._cut(user_turns[-1]), 1.0)
        for earlier in user_turns[-1 - self.cfg.history_turns : -1]:
            self.rules.add_scores(scores, self._cut(earlier), 0.5)
        return scores

    def classify(self, request: RouteRequest) -> Prediction:
        scores = self.raw_scores(request)
        top_task, top, second = _top_two(scores)
        if top <= 0:
            return Prediction(self.default_task, self.calibrate(0.0), scores)
        raw = top / (top + second + 1.0)
        return Prediction(top_task, self.calibrate(raw), scores)


def _top_two(scores: dict[str, float]) -> tuple[str, float, float]:
    """The best task (ties to the smaller name), its score and the runner-up's score (0 without one): the head of
    ``sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))`` without sorting every task."""
    top = max(scores.values())
    top_task = min(k for k, v in scores.items() if v == top)
    if len(scores) < 2:
        return top_task, top, 0.0
    second = max((v for k, v in scores.items() if k != top_task), default=0.0)
    return top_task, top, second


@hookimpl
def register_classifiers(register: Callable[[type[Classifier]], None]) -> None:
    register(RuleClassifier)
