"""Hook specifications: the whole contract between the router and its plugins.

A plugin is a module (or any object) with functions named like the hooks below, marked with
:data:`llm_router.hookimpl`, and advertised through the ``llm_router`` entry-point group::

    # pyproject.toml of a plugin distribution
    [project.entry-points.llm_router]
    my_plugin = "my_package.plugin"

    # my_package/plugin.py
    import llm_router

    @llm_router.hookimpl
    def register_scorers(register):
        register(FreshnessScorer)

There are two kinds of hooks.

*Registration hooks* (``register_*``) are called once, when a :class:`~llm_router.Router` starts, with a
``register`` callback. Each call of ``register(cls)`` makes a component class available under
``cls.name`` (or ``register(cls, name="other")``). Registering does not switch anything on: **the
routing policy picks components by name, orders them and passes their parameters**, which are validated
by the class's ``Config`` pydantic model. Two components of one kind under one name are an error that names
both plugins.

*Event hooks* (``on_*``) are broadcast to every plugin that implements them, after the fact. They observe;
they cannot change the request. An event hook may be a plain function or return an awaitable (the async
router awaits it). An event hook that raises is logged with its plugin's name and does not affect the
request (unless strict mode is on). Event hooks run on the event loop: they must not block; hand slow work
(files, network) to a thread or a queue.

Every hook documented here has a section in ``docs/hooks.md``; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .commands import CommandGroups
    from .components import Classifier, Constraint, PostProcessor, Provider, Scorer
    from .errors import RouterError
    from .types import Feedback, RouteRequest, RoutingDecision, RoutingResult

PROJECT_NAME = "llm_router"
"""The pluggy project name, which is also the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

RegisterCallback = Callable[..., None]


# --------------------------------------------------------------------------------------------------
# Registration hooks
# --------------------------------------------------------------------------------------------------


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider types: the classes that talk to an LLM API.

    :param register: call ``register(ProviderClass)`` for each provider type; the type's name is the
        class attribute ``name`` (``register(cls, name="x")`` overrides it). A policy entry
        ``providers: {work: {type: <name>, ...}}`` creates one instance of that class per entry, its
        parameters validated by ``ProviderClass.Config``.

    Called once per Router at start-up. A provider class implements :class:`llm_router.Provider`: it lists
    the models it contributes to the catalogue, completes and streams chat requests, and maps every failure
    to the core's :class:`~llm_router.errors.ProviderError` kinds.
    """


@hookspec
def register_classifiers(register: Callable[[type[Classifier]], None]) -> None:
    """Register classifier types: stages of the classification cascade.

    :param register: call ``register(ClassifierClass)`` for each type (named by its ``name`` attribute).

    Called once per Router at start-up. The policy's ``classify:`` list names the stages to run, cheapest
    first, each with a confidence ``threshold``; the first stage whose confidence clears its threshold
    decides the request's task. A classifier implements :class:`llm_router.Classifier`.
    """


@hookspec
def register_scorers(register: Callable[[type[Scorer]], None]) -> None:
    """Register scorer types: each rates every surviving candidate in [0, 1].

    :param register: call ``register(ScorerClass)`` for each type (named by its ``name`` attribute).

    Called once per Router at start-up. The policy's ``score:`` list names the scorers to use; a
    candidate's rank is the weighted sum of their scores, weighted by the ``preferences`` entry of the same
    name. A scorer implements :class:`llm_router.Scorer`.
    """


@hookspec
def register_constraints(register: Callable[[type[Constraint]], None]) -> None:
    """Register constraint types: each keeps or rejects every candidate, with a reason.

    :param register: call ``register(ConstraintClass)`` for each type (named by its ``name`` attribute).

    Called once per Router at start-up. The policy's ``constrain:`` list names the constraints to apply
    (all built-in ones by default); their limits come from the ``constraints:`` values of the policy and of
    the request. A constraint implements :class:`llm_router.Constraint`.
    """


@hookspec
def register_postprocessors(register: Callable[[type[PostProcessor]], None]) -> None:
    """Register post-processor types: each may check or transform a model's response.

    :param register: call ``register(PostProcessorClass)`` for each type (named by its ``name``).

    Called once per Router at start-up. The policy's ``postprocess:`` list names them, in order. A
    post-processor implements :class:`llm_router.PostProcessor`; raising
    :class:`~llm_router.errors.PostprocessError` rejects the response, and the router falls back to the
    next candidate.
    """


@hookspec
def register_commands(cli: CommandGroups) -> None:
    """Add commands to the ``llm-router`` command line.

    :param cli: a :class:`llm_router.commands.CommandGroups`: ``cli.train``, ``cli.eval`` and
        ``cli.calibrate`` are the groups kept for plugins (``llm-router train router`` is
        ``@cli.train.command("router")``); ``cli.command()`` and ``cli.add_typer(group, name=...)`` add to the
        root. Use only the groups handed here: each command line built by
        :func:`llm_router.cli.build_app` is new, so a command added to a module global would be lost.

    Called once per command line, when it is built (before it parses its arguments; not when a Router is
    created). Import heavy libraries inside the commands, not in the hook: the hook runs for every
    ``llm-router`` invocation, including a plain ``route``. A plugin whose hook raises is reported and its
    commands are missing; the rest work.
    """


@hookspec
def register_embedders(register: Callable[[str, Callable[[int], Callable[..., Any]]], None]) -> None:
    """Register text-embedding back-ends by name (the semantic response cache uses them).

    :param register: call ``register(name, factory)`` for each back-end; ``factory(threads)`` loads the model
        and returns a function mapping a list of texts to an ``(n, d)`` array of embeddings. It is called once,
        when the first semantic lookup needs it (in a worker thread), not at registration.

    Called once per Router whose policy sets ``cache.semantic`` (``cache.semantic.embedder`` names the
    back-end). The classify plugin registers its back-ends (``e5``, …) here. Two plugins registering one name:
    the first loaded wins, and the other is logged.
    """


# --------------------------------------------------------------------------------------------------
# Event hooks
# --------------------------------------------------------------------------------------------------


@hookspec
def on_decision(decision: RoutingDecision, request: RouteRequest) -> Any:
    """A routing decision was made.

    :param decision: the ranking, rejections, classification and decision time.
    :param request: the request it was made for.

    Called after every successful ``route()`` and before execution in ``route_and_execute()``. Not called
    when no candidate survived (``on_error`` is, with :class:`~llm_router.errors.NoCandidatesError`).
    The return value is ignored (an awaitable is awaited by the async router).
    """


@hookspec
def on_result(result: RoutingResult, request: RouteRequest) -> Any:
    """A request was executed and answered, possibly after fallbacks.

    :param result: the decision, the response, usage, estimated and actual cost, latency and every attempt.
    :param request: the request.

    Called once per answered request, after post-processing; for a streamed request, when the stream ends.
    This is where a usage ledger, metrics or a learner records what happened.
    """


@hookspec
def on_error(error: RouterError, request: RouteRequest, decision: RoutingDecision | None) -> Any:
    """A request failed (nothing could be routed, or every candidate failed), or a component failed
    during a decision that went on without it.

    :param error: the error raised to the caller (for provider failures, the last provider's typed error,
        with ``attempts``); or a :class:`~llm_router.errors.ComponentError` for a scorer or constraint that
        raised and was skipped for this request (nothing is raised to the caller then).
    :param request: the request.
    :param decision: the decision, when one was made before the failure, else ``None`` (for a
        ``ComponentError``, the decision made without the component).
    """


@hookspec
def on_feedback(feedback: Feedback) -> Any:
    """A caller rated or reported the outcome of a past request (``Router.feedback()`` or the gateway).

    :param feedback: the request id, optional model id, rating in [0, 1], outcome and free-form metadata.

    Raise :class:`~llm_router.FeedbackError` to refuse feedback meant for you that you cannot use (an unknown
    or expired request id): it reaches the caller, where any other exception from an event hook is logged.
    """
