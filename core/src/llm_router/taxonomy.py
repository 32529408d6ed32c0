"""The task taxonomy: the labels a request can be classified as, and what each one means.

The built-in taxonomy has twelve tasks. A policy can extend it or replace it with a team's own labels
(``taxonomy:`` in the policy); every label carries a description, optional keywords and regular
expressions (used by the rule classifier), example prompts (used by trainable classifiers) and the number of
output tokens to expect (used for cost and latency estimates before the call).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_TASKS", "TaskSpec", "Taxonomy"]


class TaskSpec(BaseModel):
    """One task label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    keywords: tuple[str, ...] = Field(
        default=(), description="words or phrases, matched case-insensitively on word boundaries (weight 1 each)"
    )
    patterns: tuple[str, ...] = Field(
        default=(), description="regular expressions, matched case-insensitively (weight 2 each)"
    )
    examples: tuple[str, ...] = Field(default=(), description="example prompts for trainable classifiers")
    expected_output_tokens: Annotated[int, Field(gt=0)] = 250


class Taxonomy(BaseModel):
    """The labels in force, and the one to use when nothing is known."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tasks: dict[str, TaskSpec]
    default_task: str = "chat"

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.tasks)

    def expected_output_tokens(self, task: str) -> int:
        spec = self.tasks.get(task)
        return spec.expected_output_tokens if spec else 250


_LANGS = (
    "english|french|spanish|german|italian|portuguese|dutch|russian|chinese|mandarin|japanese|korean|"
    "arabic|hindi|turkish|polish|swedish|greek|hebrew|vietnamese|thai|indonesian|latin"
)

DEFAULT_TASKS: dict[str, TaskSpec] = {
    "code": TaskSpec(
        description="write, explain, review, debug or translate source code",
        keywords=(
            "python",
            "javascript",
            "typescript",
            "java",
            "c++",
            "c#",
            "golang",
            "rust",
            "sql",
            "bash",
            "function",
            "algorithm",
            "code",
            "script",
            "program",
            "compile",
            "debug",
            "refactor",
            "unit test",
            "regex",
            "api",
            "class",
            "method",
            "bug",
            "stack trace",
            "snippet",
            "implement",
        ),
        patterns=(
            r"```",
            r"\bdef \w+\(",
            r"^\s*(import|from) \w+",
            r"\b(print|return|console\.log)\(",
            r"write (a|an|me a) (python|js|javascript|java|rust|go|sql|bash|shell|c\+\+)? ?"
            r"(function|program|script|class|query)",
            r"\b(traceback|syntaxerror|typeerror|nullpointerexception|segfault)\b",
        ),
        expected_output_tokens=500,
    ),
    "math": TaskSpec(
        description="arithmetic, algebra, calculus, probability and word problems with a numeric answer",
        keywords=(
            "solve",
            "calculate",
            "compute",
            "equation",
            "integral",
            "derivative",
            "probability",
            "percent",
            "percentage",
            "sum of",
            "how many",
            "how much",
            "theorem",
            "prove",
            "average",
        ),
        patterns=(
            r"\d+\s*[-+*/×÷^]\s*\d+",
            r"\bx\s*[=^]",
            r"\\frac|\\sqrt|\$.+\$",
            r"\bwhat is \d",
            r"\b(square root|factorial|prime number|fraction)s?\b",
        ),
        expected_output_tokens=400,
    ),
    "reasoning": TaskSpec(
        description="logic, multi-step reasoning, multiple-choice and commonsense questions",
        keywords=("explain why", "step by step", "logic", "puzzle", "riddle", "deduce", "infer", "true or false"),
        patterns=(r"\n\s*\(?[A-D][).]\s", r"\banswer:\s*$", r"\bwhich (statement|option|choice)\b"),
        expected_output_tokens=300,
    ),
    "creative_writing": TaskSpec(
        description="stories, poems, lyrics, letters and other imaginative writing",
        keywords=("poem", "story", "haiku", "limerick", "lyrics", "song", "fiction", "imagine", "essay", "letter"),
        patterns=(
            r"\bwrite (a|an|me a|me an|me) (\w+ )?(poem|story|song|haiku|essay|letter|tweet|blog|speech|script)",
        ),
        expected_output_tokens=600,
    ),
    "summarization": TaskSpec(
        description="condense a given text",
        keywords=("summarize", "summarise", "summary", "tl;dr", "tldr", "key points", "main points", "condense"),
        patterns=(r"\b(in|into) (a few|one|two|three|\d+) (sentences?|bullet points|words)\b",),
        expected_output_tokens=200,
    ),
    "information_extraction": TaskSpec(
        description="pull specific facts, entities or lists out of a given text",
        keywords=("extract", "pull out", "find all", "list all", "identify all"),
        patterns=(
            r"\b(from|in) (the|this) (passage|text|paragraph|article|reference text)[, ]+"
            r"(list|extract|give|identify|find)",
            r"\b(list|extract) (the|all)\b.*\b(mentioned|from the)\b",
        ),
        expected_output_tokens=200,
    ),
    "classification": TaskSpec(
        description="assign items to given categories, label sentiment, pick which group something belongs to",
        keywords=("classify", "categorize", "categorise", "sentiment", "label each"),
        patterns=(
            r"\b(identify|tell me|decide) (which|whether)\b",
            r"\beach of the following as\b",
            r"\bwhich (of these|one|of the following) (is|are)\b",
            r"\b(is|are) (each|these|the following) (a|an)\b",
        ),
        expected_output_tokens=60,
    ),
    "closed_qa": TaskSpec(
        description="answer a question from a given reference text",
        keywords=("according to", "based on the", "given the", "given this", "reference text"),
        patterns=(
            r"\n\n[^\n](?=[\s\S]{200})",
            r"\b(based on|using|given|from) (the|this) (passage|text|paragraph|reference)",
        ),
        expected_output_tokens=150,
    ),
    "open_qa": TaskSpec(
        description="factual questions answered from general knowledge",
        keywords=(),
        patterns=(r"^\s*(what|who|when|where|why|how|which|is|are|was|were|does|do|did|can)\b[^\n]*\?\s*$",),
        expected_output_tokens=250,
    ),
    "brainstorming": TaskSpec(
        description="generate ideas, options, suggestions or lists",
        keywords=("ideas", "brainstorm", "suggest", "suggestions", "ways to", "tips", "recommend", "options for"),
        patterns=(
            r"\b(give|list|name|tell) me (some|a list|a few|\d+|two|three|four|five|ten)\b",
            r"\bwhat are some\b",
        ),
        expected_output_tokens=400,
    ),
    "translation": TaskSpec(
        description="translate text between languages",
        keywords=("translate", "translation"),
        patterns=(rf"\b(in|into|to) ({_LANGS})\b", rf"\bfrom ({_LANGS}) (to|into)\b"),
        expected_output_tokens=250,
    ),
    "chat": TaskSpec(
        description="greetings, small talk and conversation",
        keywords=("hello", "hi", "hey", "thanks", "thank you", "how are you", "good morning"),
        patterns=(r"^\s*(hi|hello|hey|yo|thanks|thank you)\b[!. ]*$",),
        expected_output_tokens=200,
    ),
}
"""The built-in taxonomy. Keywords and patterns here feed the rule classifier."""
