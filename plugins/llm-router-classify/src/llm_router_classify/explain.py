"""``llm-router classify "PROMPT" [--policy P]``: the label, its confidence, and the nearest examples (why).

The label and confidence are the cascade's (a real Router's ``route``, no model called unless the policy's
cascade has an ``llm`` stage). The nearest support texts come from the policy's first ``fewshot`` stage; a
policy without one is explained by a ``fewshot`` model built over its taxonomy (label names, descriptions,
keywords and examples), which is said in the output.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from llm_router.errors import NoCandidatesError, PluginError, PolicyError
from llm_router.types import RouteRequest

from .commands import EXIT_BAD_INPUT, JsonOpt, PolicyOpt, err, out


def classify_prompt(
    prompt: Annotated[str, typer.Argument(help="the prompt to classify")],
    policy: PolicyOpt = None,
    neighbours: Annotated[int, typer.Option("--neighbours", "-n", help="nearest examples to show", min=0)] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Classify a prompt: label, confidence and the nearest examples of the taxonomy."""
    from llm_router import Router

    from .fewshot import FewShotConfig, build_model

    try:
        router = Router.from_policy(policy) if policy is not None else Router()
    except (PolicyError, PluginError, OSError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(EXIT_BAD_INPUT) from exc
    with router:
        try:
            c = router.route(prompt).classification
        except NoCandidatesError as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(3) from exc
        source = None
        explained = None
        for stage in router.stages:
            explain = getattr(stage.classifier, "explain", None)
            if callable(explain):
                explained, source = explain(RouteRequest(messages=prompt), neighbours), f"stage {stage.name}"
                break
        if explained is None:
            model = build_model(dict(router.taxonomy.tasks), FewShotConfig())
            explained, source = model.predict(prompt, neighbours), "a fewshot model over the taxonomy"
    near = explained[1] if explained else []
    result: dict[str, Any] = {
        "version": 1,
        "task": c.task,
        "confidence": c.confidence,
        "method": c.method,
        "scores": dict(sorted(c.scores.items(), key=lambda kv: -kv[1])),
        "nearest": [{"label": n.label, "similarity": n.similarity, "example": n.example, "text": n.text} for n in near],
        "nearest_from": source,
    }
    if as_json:
        print(json.dumps(result))
        return
    out.print(f"[bold]task {c.task}[/]  confidence {c.confidence:.2f}  (by {c.method})")
    top = list(result["scores"].items())[:5]
    out.print("scores  " + "  ".join(f"{label} {p:.2f}" for label, p in top))
    if near:
        out.print(f"nearest examples (from {source}):")
        for n in near:
            kind = "example" if n.example else "label text"
            text = " ".join(n.text.split())
            out.print(f"  {n.label:<20} {n.similarity:5.2f}  {kind:<10} {text[:100]}", markup=False)
