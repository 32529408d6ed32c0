"""The ``llm-router`` command line.

Exit codes: 0 success; 1 the model call failed (every candidate); 2 bad input (policy, options);
3 no model can serve the request (every candidate rejected); 4 a plugin failed in strict mode.
``--json`` output is documented in docs/cli.md and versioned by its ``"version"`` field.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import ConfigurationError, NoCandidatesError, PluginError, PolicyError, ProviderError, RouterError
from .types import JSON_VERSION, RoutingDecision, RoutingResult

EXIT_OK, EXIT_CALL_FAILED, EXIT_BAD_INPUT, EXIT_NO_CANDIDATES, EXIT_PLUGIN = 0, 1, 2, 3, 4

out = Console(width=200) if not sys.stdout.isatty() else Console()
err = Console(stderr=True, soft_wrap=True)

PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy", "-p", help="routing policy YAML (default: the built-in policy)", envvar="LLM_ROUTER_POLICY"
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout")]
PreferOpt = Annotated[
    list[str] | None,
    typer.Option("--prefer", help="scorer weight, e.g. --prefer cost=0.5 (repeatable)", metavar="NAME=WEIGHT"),
]
RequireOpt = Annotated[
    list[str] | None, typer.Option("--require", help="capability: tools, vision, json_mode, streaming (repeatable)")
]


def _fail(code: int, message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True)
    raise typer.Exit(code)


def _since(since: str | None) -> float | None:
    """``--since`` (an ISO date or time, read as UTC) as a timestamp; ``None`` when not given."""
    from datetime import UTC, datetime

    if not since:
        return None
    try:
        return datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp()
    except ValueError:
        _fail(EXIT_BAD_INPUT, f"--since must be a date like 2026-11-01, got {since!r}")


def _router(policy: Path | None) -> Any:
    from .router import Router

    try:
        return Router(policy)
    except PolicyError as exc:
        _fail(EXIT_BAD_INPUT, str(exc))
    except PluginError as exc:
        _fail(EXIT_PLUGIN, str(exc))


def _preferences(items: list[str] | None) -> dict[str, float] | None:
    if not items:
        return None
    prefs: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            weight = float(value)
        except ValueError:
            _fail(EXIT_BAD_INPUT, f"--prefer takes NAME=WEIGHT (e.g. cost=0.5), got {item!r}")
        if not math.isfinite(weight) or weight < 0:
            _fail(EXIT_BAD_INPUT, f"--prefer {item!r}: the weight must be a finite number >= 0")
        prefs[name.strip()] = weight
    return prefs


def _finite(option: str, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        _fail(EXIT_BAD_INPUT, f"{option} must be a finite number, got {value}")
    return value


def _constraints(
    max_cost_per_1k: float | None, max_latency_ms: float | None, require: list[str] | None, providers: list[str] | None
) -> dict[str, Any] | None:
    c: dict[str, Any] = {}
    if _finite("--max-cost-per-1k", max_cost_per_1k) is not None:
        c["max_cost_per_1k_tokens"] = max_cost_per_1k
    if _finite("--max-latency-ms", max_latency_ms) is not None:
        c["max_latency_ms"] = max_latency_ms
    if require:
        c["required_capabilities"] = require
    if providers:
        c["allowed_providers"] = providers
    return c or None


def _prompt(prompt: str) -> str:
    """PROMPT, or stdin when it is ``-``: UTF-8 text that is not blank (checked before anything is routed)."""
    text = _read_stdin() if prompt == "-" else prompt
    where = "the prompt on stdin" if prompt == "-" else "PROMPT"
    _utf8(where, text)
    if not text.strip():
        blank = "only whitespace" if text else "empty"
        _fail(EXIT_BAD_INPUT, f"{where} is {blank}: give the text to route")
    return text


def _read_stdin() -> str:
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text-only stream (an embedder's): its own decoder has run
        return sys.stdin.read()
    data = buffer.read()
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        _fail(EXIT_BAD_INPUT, f"the prompt on stdin is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}")


def _utf8(where: str, text: str) -> None:
    """Refuse text that cannot be sent as UTF-8: bytes of a command-line argument that are not UTF-8 reach
    Python as lone surrogates (U+DC80..U+DCFF, the byte + 0xDC00)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        what = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X} (a lone surrogate)"
        _fail(EXIT_BAD_INPUT, f"{where} is not UTF-8: {what} at character {exc.start}")


def decision_json(decision: RoutingDecision) -> dict[str, Any]:
    """The stable JSON form of a decision (:meth:`RoutingDecision.to_json`; documented in docs/cli.md)."""
    return decision.to_json()


def result_json(result: RoutingResult) -> dict[str, Any]:
    """The stable JSON form of a result (:meth:`RoutingResult.to_json`)."""
    return result.to_json()


def _print_decision(decision: RoutingDecision, limit: int, not_ready: str | None = None) -> None:
    cls = decision.classification
    out.print(f"[bold]task[/] {escape(cls.task)}  [dim](by {escape(cls.method)}, confidence {cls.confidence:.2f})[/]")
    out.print(
        f"[bold]route[/] {escape(decision.route)}  [bold]weights[/] "
        + ", ".join(f"{escape(k)} {v:.2f}" for k, v in decision.weights.items())
    )
    out.print(f"[bold]tokens[/] {decision.input_tokens} in, ~{decision.expected_output_tokens} out expected")
    table = Table(
        title=f"ranking (top {min(limit, len(decision.ranking))} of {len(decision.ranking)})", title_justify="left"
    )
    table.add_column("#", justify="right")
    table.add_column("model", no_wrap=True)
    table.add_column("score", justify="right")
    for name in decision.weights:
        table.add_column(name, justify="right")
    table.add_column("est. cost", justify="right")
    table.add_column("est. latency", justify="right")
    for i, c in enumerate(decision.ranking[:limit], 1):
        table.add_row(
            str(i),
            c.model.id,
            f"{c.score:.3f}",
            *(f"{c.breakdown.get(n, 0):.2f}" for n in decision.weights),
            f"${c.estimated_cost:.6f}",
            f"{c.estimated_latency_ms:,.0f} ms",
            style="bold green" if i == 1 else None,
        )
    out.print(table)
    if decision.rejected:
        rej = Table(title=f"rejected ({len(decision.rejected)})", title_justify="left")
        rej.add_column("model", no_wrap=True)
        rej.add_column("constraint")
        rej.add_column("reason")
        for r in decision.rejected[:limit]:
            rej.add_row(r.model_id, r.constraint, r.reason)
        out.print(rej)
    out.print(
        f"[bold green]selected[/] {escape(decision.selected.id)}   [dim]decided in {decision.routing_time_ms:.3f} ms[/]"
    )
    if not_ready:
        out.print(f"[yellow]note:[/] to run it, {escape(not_ready)} (`llm-router run` skips models it cannot call)")


def route(
    prompt: Annotated[str, typer.Argument(help="the prompt ('-' reads stdin)")],
    policy: PolicyOpt = None,
    json_: JsonOpt = False,
    prefer: PreferOpt = None,
    max_cost_per_1k: Annotated[float | None, typer.Option(help="USD per 1k tokens")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="estimated ms to the last token")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="output tokens the call will ask for")] = None,
    require: RequireOpt = None,
    provider: Annotated[list[str] | None, typer.Option(help="only these providers (repeatable)")] = None,
    top: Annotated[int, typer.Option(min=1, help="rows of the ranking to show")] = 8,
) -> None:
    """Decide which model should answer PROMPT, and show why. Calls no model."""
    text = _prompt(prompt)  # bad input is refused before the policy is loaded
    preferences = _preferences(prefer)
    constraints = _constraints(max_cost_per_1k, max_latency_ms, require, provider)
    router = _router(policy)
    try:
        decision = router.route(text, preferences=preferences, constraints=constraints, max_tokens=max_tokens)
    except NoCandidatesError as exc:
        if json_:
            out.print_json(
                data={
                    "version": JSON_VERSION,
                    "error": "no_candidates",
                    "message": str(exc),
                    "rejected": [r.model_dump(mode="json") for r in exc.rejected],
                }
            )
        _fail(EXIT_NO_CANDIDATES, str(exc))
    except RouterError as exc:
        _fail(EXIT_BAD_INPUT, str(exc))
    if json_:
        sys.stdout.write(json.dumps(decision_json(decision), indent=2) + "\n")
    else:
        _print_decision(decision, top, router.provider_status(decision.selected.provider))


def run(
    prompt: Annotated[str, typer.Argument(help="the prompt ('-' reads stdin)")],
    policy: PolicyOpt = None,
    json_: JsonOpt = False,
    stream: Annotated[bool, typer.Option("--stream", help="print the answer as it arrives")] = False,
    prefer: PreferOpt = None,
    max_cost_per_1k: Annotated[float | None, typer.Option(help="USD per 1k tokens")] = None,
    max_latency_ms: Annotated[float | None, typer.Option(help="estimated ms to the last token")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="maximum output tokens")] = None,
    require: RequireOpt = None,
    provider: Annotated[list[str] | None, typer.Option(help="only these providers (repeatable)")] = None,
    system: Annotated[str | None, typer.Option(help="a system prompt")] = None,
) -> None:
    """Route PROMPT, call the chosen model (falling back on failure) and print the answer."""
    messages: list[dict[str, Any]] = []
    if system:
        _utf8("--system", system)
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": _prompt(prompt)})
    kwargs: dict[str, Any] = {
        "preferences": _preferences(prefer),
        "constraints": _constraints(max_cost_per_1k, max_latency_ms, require, provider),
        "max_tokens": max_tokens,
    }
    router = _router(policy)
    router.warm_up()  # the providers' SDKs load now, not inside the first call's timeout
    try:
        if stream and not json_:
            gen = router.stream(messages, **kwargs)
            while True:
                try:
                    chunk = next(gen)
                except StopIteration as stop:
                    result: RoutingResult = stop.value
                    break
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
            sys.stdout.write("\n")
        else:
            result = router.route_and_execute(messages, **kwargs)
            if json_:
                sys.stdout.write(json.dumps(result_json(result), indent=2) + "\n")
                return
            out.print(result.response.text, highlight=False, markup=False)
    except NoCandidatesError as exc:
        _fail(EXIT_NO_CANDIDATES, str(exc))
    except ProviderError as exc:
        attempts = exc.attempts
        detail = "".join(f"\n  attempt {i}: {a.error}" for i, a in enumerate(attempts, 1))
        _fail(EXIT_CALL_FAILED, f"every candidate failed; the last error: {exc}{detail}")
    except RouterError as exc:
        _fail(EXIT_BAD_INPUT, str(exc))
    finally:
        router.close()
    err.print(
        f"[dim]{escape(result.selected_model.id)} · {result.usage.input_tokens}+{result.usage.output_tokens} tokens · "
        f"${result.cost:.6f} · {result.latency_ms:.0f} ms · routing {result.routing_time_ms:.2f} ms · "
        f"{len(result.attempts)} attempt(s)" + (f" · cache {result.cache}" if result.cache is not None else "") + "[/]"
    )


def models(policy: PolicyOpt = None, json_: JsonOpt = False) -> None:
    """List the models the policy lets the router pick, with prices, limits and capabilities."""
    router = _router(policy)
    rows = sorted(router.catalogue, key=lambda m: m.id)
    if json_:
        sys.stdout.write(
            json.dumps({"version": JSON_VERSION, "models": [m.model_dump(mode="json") for m in rows]}, indent=2) + "\n"
        )
        return
    table = Table(title=f"{len(rows)} models", title_justify="left")
    for col in (
        "model",
        "in $/Mtok",
        "out $/Mtok",
        "context",
        "max out",
        "capabilities",
        "ttft",
        "tok/s",
        "provider ready",
        "lifecycle",
    ):
        table.add_column(
            col, justify="right" if col not in ("model", "capabilities", "provider ready", "lifecycle") else "left"
        )
    from .model_lifecycle import mark, today
    from .model_lifecycle import status as lifecycle_status

    on = today()
    status: dict[str, str | None] = {}
    for m in rows:
        if m.provider not in status:
            status[m.provider] = router.provider_status(m.provider)
        caps = ",".join(n for n in ("tools", "vision", "json_mode", "streaming") if m.capabilities.has(n))
        ready = "yes" if status[m.provider] is None else f"no: {status[m.provider]}"
        table.add_row(
            m.id,
            f"{m.price.input_per_mtok:g}",
            f"{m.price.output_per_mtok:g}",
            f"{m.context_window:,}",
            f"{m.max_output_tokens:,}",
            caps,
            f"{m.ttft_ms:,.0f}",
            f"{m.tokens_per_second:g}",
            ready,
            mark(m, on) or "-",
            style={"retired": "dim", "deprecated": "yellow"}.get(lifecycle_status(m, on)),
        )
    out.print(table)


def plugins(
    all_: Annotated[bool, typer.Option("--all", help="include built-in (essential) plugins")] = False,
    json_: JsonOpt = False,
) -> None:
    """List plugins: loaded, failed (with the error), blocked or disabled, with distribution and version."""
    from .plugins import PluginHost

    host = PluginHost()
    records = [r for r in host.records if all_ or not r.essential]
    if json_:
        sys.stdout.write(
            json.dumps({"version": JSON_VERSION, "plugins": [r.as_dict() for r in records]}, indent=2) + "\n"
        )
        return
    if not records:
        out.print("no third-party plugins installed (use --all to include the built-in ones)")
        return
    table = Table(title_justify="left")
    for col in ("plugin", "distribution", "version", "status", "components / error"):
        table.add_column(col)
    for r in records:
        detail = r.error if r.status == "failed" else ", ".join(sorted(r.components)) or ", ".join(r.hooks)
        style = {"failed": "red", "blocked": "yellow", "disabled": "yellow"}.get(r.status)
        table.add_row(
            r.name + (" (built-in)" if r.essential else ""),
            r.distribution or "-",
            r.version or "-",
            r.status,
            detail or "-",
            style=style,
        )
    out.print(table)
    if any(r.status == "failed" for r in records):
        raise typer.Exit(EXIT_PLUGIN if host.strict else EXIT_OK)


def _drop_collected(record: logging.LogRecord) -> bool:
    """A logging filter: False for a record whose message is also in ``Router.warnings``."""
    from .assembly import COLLECTED

    return not getattr(record, COLLECTED, False)


def policy_validate(file: Annotated[Path, typer.Argument(help="the policy YAML")], json_: JsonOpt = False) -> None:
    """Check a policy file: syntax, fields, components, models, environment variables."""
    from .router import Router

    logger = logging.getLogger("llm_router")
    logger.addFilter(_drop_collected)  # printed below as `warning:` lines, once each
    try:
        router = Router(file)
    except PolicyError as exc:
        if json_:
            sys.stdout.write(
                json.dumps(
                    {
                        "version": JSON_VERSION,
                        "valid": False,
                        "problems": [
                            {"file": i.file, "line": i.line, "column": i.column, "field": i.field, "message": i.message}
                            for i in exc.issues
                        ],
                    },
                    indent=2,
                )
                + "\n"
            )
            raise typer.Exit(EXIT_BAD_INPUT) from None
        _fail(EXIT_BAD_INPUT, str(exc))
    except PluginError as exc:
        _fail(EXIT_PLUGIN, str(exc))
    finally:
        logger.removeFilter(_drop_collected)
    warnings = [
        f"provider {name!r}: {reason}"
        for name in router.policy.providers
        if (reason := router.provider_status(name)) is not None
    ] + list(router.warnings)
    if json_:
        sys.stdout.write(
            json.dumps(
                {"version": JSON_VERSION, "valid": True, "models": len(router.catalogue), "warnings": warnings},
                indent=2,
            )
            + "\n"
        )
        return
    out.print(
        f"[green]valid[/]: {file} ({len(router.catalogue)} models, classify: "
        f"{', '.join(s.name for s in router.stages)})"
    )
    for w in warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)


def policy_schema() -> None:
    """Print the policy's JSON Schema (with every installed component's parameters), for editors."""
    from .plugins import PluginHost
    from .policy import policy_json_schema

    host = PluginHost()
    configs: dict[str, dict[str, Any]] = {}
    for reg in host.registry.all():
        configs.setdefault(reg.kind, {})[reg.name] = reg.cls.Config
    sys.stdout.write(json.dumps(policy_json_schema(configs), indent=2) + "\n")


def catalogue_diff(
    file: Annotated[Path, typer.Argument(help="a newer catalogue.yaml, or a genai-prices data.json")],
    json_: JsonOpt = False,
) -> None:
    """Show what FILE would change in the built-in catalogue: models added or removed, prices, limits,
    capabilities and lifecycle dates (review it before updating the data file or genai-prices)."""
    from .catalogue_diff import diff_file

    try:
        changes = diff_file(file)
    except ConfigurationError as exc:
        _fail(EXIT_BAD_INPUT, str(exc))
    if json_:
        sys.stdout.write(json.dumps({"version": JSON_VERSION, **changes.as_dict()}, indent=2) + "\n")
        return
    if changes.empty:
        out.print(f"no changes: {file} gives the built-in catalogue as it is")
        return
    for model_id in changes.added:
        out.print(f"[green]+ {escape(model_id)}[/]", highlight=False)
    for model_id in changes.removed:
        out.print(f"[red]- {escape(model_id)}[/]", highlight=False)
    if changes.changed:
        table = Table(title=f"{len(changes.changed)} changed fields", title_justify="left")
        for col in ("model", "field", "now", "with the file"):
            table.add_column(col)
        for c in changes.changed:
            table.add_row(c.model_id, c.field, str(c.old), str(c.new))
        out.print(table)
    for model_id in changes.unpriced:
        out.print(f"[yellow]unpriced by the file (keeps its price):[/] {escape(model_id)}", highlight=False)


def policy_show() -> None:
    """Print the built-in default policy (a starting point for your own)."""
    from .policy import default_policy_text

    sys.stdout.write(default_policy_text())


def serve(
    policy: PolicyOpt = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="TCP port (0: a free port, chosen by the system and logged)")
    ] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="worker processes (budgets are per process between ledger reads)")
    ] = 1,
    ledger: Annotated[
        str | None, typer.Option(help="usage ledger: a SQLite file or a postgresql:// URL (default: gateway.ledger)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    log_format: Annotated[
        str, typer.Option(help="json: every log record one JSON object a line (the per-request lines too); text")
    ] = "text",
    graceful_timeout: Annotated[
        float, typer.Option(help="seconds to let in-flight requests finish on shutdown")
    ] = 30.0,
) -> None:
    r"""Run the OpenAI-compatible gateway (needs the gateway extra: `pip install './core\[gateway-fast]'` from a
    source checkout, `pip install 'llm-router\[gateway]'` from a package index)."""
    import importlib.util
    import os

    try:
        import uvicorn

        from .gateway import create_app
    except ImportError as exc:
        _fail(
            EXIT_BAD_INPUT,
            f"the gateway needs its extra: pip install './core[gateway-fast]' from a source checkout, "
            f"pip install 'llm-router[gateway]' from a package index ({exc})",
        )
    from .gateway.requestlog import configure_logging

    if log_format not in ("json", "text"):
        _fail(EXIT_BAD_INPUT, f"--log-format must be json or text, got {log_format!r}")
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    configure_logging(log_level, log_format)
    os.environ["LLM_ROUTER_LOG_FORMAT"] = log_format  # worker processes (--workers N) set up the same
    os.environ["LLM_ROUTER_LOG_LEVEL"] = log_level
    router = _router(policy)  # policy errors are reported here, before binding the port
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": loop,
        "http": http,
        "log_level": log_level,
        "timeout_graceful_shutdown": graceful_timeout,
        "access_log": False,
        "server_header": False,  # one header less to build per answer; and no server banner to fingerprint
    }
    if log_format == "json":
        common["log_config"] = None  # uvicorn's loggers propagate to the JSON handler
    if workers > 1:
        if not router.policy.gateway.keys:  # worker processes log through uvicorn's loggers only
            err.print("[yellow]warning:[/] no API keys in the policy's gateway.keys: this gateway is OPEN")
        if router.policy.state.backend == "memory" and any(k.limited for k in router.policy.gateway.keys):
            err.print(
                f"[yellow]warning:[/] state is in memory: each of the {workers} workers enforces the keys' budgets "
                "and rate limits on its own (a burst may spend up to that many times a budget); "
                "`state: {backend: redis}` shares them (docs/reliability.md)"
            )
        router.close()
        if policy is not None:
            os.environ["LLM_ROUTER_POLICY"] = str(policy.resolve())
        if ledger is not None:
            os.environ["LLM_ROUTER_LEDGER"] = ledger if "://" in ledger else str(Path(ledger).resolve())
        uvicorn.run("llm_router.gateway.app:app_from_env", factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(router, ledger_path=ledger), **common)


def usage(
    ledger: Annotated[
        str,
        typer.Option(help="the gateway's usage ledger: a SQLite file or postgresql:// URL", envvar="LLM_ROUTER_LEDGER"),
    ] = "llm-router-usage.sqlite3",
    since: Annotated[str | None, typer.Option(help="from this date (YYYY-MM-DD, UTC) on")] = None,
    by: Annotated[str, typer.Option(help="group by model, key, task, day, outcome or cache")] = "model",
    json_: JsonOpt = False,
) -> None:
    """Report requests, tokens, cost and latency from the gateway's usage ledger."""
    from .gateway.ledger import GROUPS, usage_report
    from .gateway.pg_ledger import redact

    if by not in GROUPS:
        _fail(EXIT_BAD_INPUT, f"--by must be one of {', '.join(GROUPS)}")
    start = _since(since)
    try:
        report = usage_report(ledger, since=start, by=by)
    except (FileNotFoundError, ValueError) as exc:
        _fail(EXIT_BAD_INPUT, f"--ledger: {exc}")
    if json_:
        sys.stdout.write(
            json.dumps({"version": JSON_VERSION, "ledger": redact(ledger), "since": since, "by": by, "rows": report})
            + "\n"
        )
        return
    table = Table(title=f"usage by {by}" + (f" since {since}" if since else ""), title_justify="left")
    for col in (by, "requests", "ok", "errors", "input tokens", "output tokens", "cost", "avg latency", "fallbacks"):
        table.add_column(col, justify="left" if col == by else "right")
    for row in report:
        table.add_row(
            str(row[by]),
            str(row["requests"]),
            str(row["ok"]),
            str(row["errors"]),
            f"{row['input_tokens']:,}",
            f"{row['output_tokens']:,}",
            f"${row['cost_usd']:.6f}",
            f"{row['avg_latency_ms']:,.1f} ms",
            str(row["fallbacks"]),
        )
    out.print(table)
    total = sum(r["cost_usd"] for r in report)
    out.print(f"[bold]total[/] {sum(r['requests'] for r in report)} requests, ${total:.6f}")


def _cache_call(policy: Path | None, what: str) -> Any:
    """Run the router's ``acache_stats`` or ``acache_clear`` (and close the router) in one event loop."""
    import anyio

    router = _router(policy)
    if router.cache is None:
        _fail(EXIT_BAD_INPUT, "the policy has no response cache (set cache: {exact: true} or cache.semantic)")

    async def go() -> Any:
        try:
            return await (router.acache_stats() if what == "stats" else router.acache_clear())
        finally:
            await router.aclose()

    return anyio.run(go)


def cache_stats(policy: PolicyOpt = None, json_: JsonOpt = False) -> None:
    """Entries, size and hit counts of the policy's response cache (the shared Redis back-end's; an in-memory
    cache lives in the gateway's process: see its /metrics)."""
    stats = _cache_call(policy, "stats")
    if json_:
        sys.stdout.write(json.dumps({"version": JSON_VERSION, **stats}, indent=2) + "\n")
        return
    for name, value in stats.items():
        out.print(f"[bold]{escape(str(name))}[/] {escape(str(value))}")
    if stats.get("backend") == "memory":
        out.print("[yellow]note:[/] the memory back-end lives in each gateway process; this one is new and empty")


def cache_clear(policy: PolicyOpt = None) -> None:
    """Remove every answer from the policy's response cache (the shared Redis back-end's)."""
    removed = _cache_call(policy, "clear")
    out.print(f"removed {removed} cached answers")


def calibrate_cache(
    data: Annotated[
        Path, typer.Option(help="labelled paraphrase pairs: JSONL text1/text2/label, or MRPC/PAWS/QQP TSV")
    ],
    embedder: Annotated[str, typer.Option(help="embedding back-end registered by a plugin")] = "e5",
    target_false_hit: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="the highest acceptable false-hit rate")
    ] = 0.01,
    limit: Annotated[int | None, typer.Option(min=4, help="use the first N pairs only")] = None,
    threads: Annotated[int, typer.Option(min=1, help="embedding threads")] = 1,
    json_: JsonOpt = False,
) -> None:
    """Pick the semantic cache's similarity threshold for a target false-hit rate, from labelled paraphrase pairs
    (half calibrates, the other half is held out and reported)."""
    from .cache.calibrate import calibrate, load_pairs
    from .cache.semantic import resolve_embedder
    from .plugins import PluginHost

    try:
        pairs = load_pairs(data)[:limit]
        embed = resolve_embedder(embedder, PluginHost().embedders(), threads)
        found = calibrate(pairs, embed, target_false_hit)
    except (ValueError, ImportError) as exc:
        _fail(EXIT_BAD_INPUT, str(exc))
    if json_:
        data_out = {"version": JSON_VERSION, "embedder": embedder, **found.to_json()}
        sys.stdout.write(json.dumps(data_out, indent=2) + "\n")
        return
    table = Table(title=f"held-out half ({found.holdout_pairs} pairs)", title_justify="left")
    for col in ("threshold", "hit rate", "false-hit rate"):
        table.add_column(col, justify="right")
    for t, hit, false in found.sweep:
        table.add_row(f"{t:.2f}", f"{hit:.1%}", f"{false:.1%}")
    out.print(table)
    (ch, cf), (hh, hf) = found.calibration, found.holdout
    out.print(
        f"[bold green]threshold {found.threshold:.4f}[/] for a false-hit rate <= {target_false_hit:.1%}: "
        f"calibration half hit {ch:.1%} / false {cf:.1%}; held-out half hit {hh:.1%} / false {hf:.1%}"
    )
    out.print(f"policy: cache: {{semantic: {{embedder: {embedder}, threshold: {found.threshold:.4f}}}}}")


_COMMANDS: tuple[tuple[str, Callable[..., None]], ...] = (
    ("route", route),
    ("run", run),
    ("models", models),
    ("plugins", plugins),
    ("serve", serve),
    ("usage", usage),
)


def build_app(*, plugins: bool = True) -> typer.Typer:
    """A new ``llm-router`` command line: the core's commands and, with ``plugins``, the commands the installed
    plugins add through their ``register_commands`` hook (:class:`~llm_router.commands.CommandGroups`).

    Every call builds fresh Typer applications, so tests and embedders each get their own and nothing is added
    to a module global."""
    app = typer.Typer(
        name="llm-router",
        help="Pick the right LLM for every prompt, run it, and say why.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name, command in _COMMANDS:
        app.command(name)(command)
    policy_app = typer.Typer(help="Validate, inspect and document routing policies.", no_args_is_help=True)
    policy_app.command("validate")(policy_validate)
    policy_app.command("schema")(policy_schema)
    policy_app.command("show")(policy_show)
    app.add_typer(policy_app, name="policy")
    catalogue_app = typer.Typer(help="Review the built-in model catalogue's data.", no_args_is_help=True)
    catalogue_app.command("diff")(catalogue_diff)
    app.add_typer(catalogue_app, name="catalogue")
    cache_app = typer.Typer(help="Inspect and clear the response cache.", no_args_is_help=True)
    cache_app.command("stats")(cache_stats)
    cache_app.command("clear")(cache_clear)
    app.add_typer(cache_app, name="cache")
    from .abtest_cli import ab_app

    app.add_typer(ab_app(), name="ab")
    if plugins:
        _add_plugin_commands(app)
    return app


def _add_plugin_commands(app: typer.Typer) -> None:
    """Hand the plugins the ``train``, ``eval`` and ``calibrate`` groups (and the root); add the groups that
    received a command."""
    from .commands import CommandGroups
    from .plugins import PluginHost

    try:
        host = PluginHost()
    except PluginError as exc:  # strict mode and a broken plugin: say so, keep the core commands
        err.print(f"[yellow]warning:[/] plugin commands not loaded: {escape(str(exc))}", highlight=False)
        return
    groups = CommandGroups(
        root=app,
        train=typer.Typer(
            help="Train components (added by plugins: `train router`, `train classifier`, …).", no_args_is_help=True
        ),
        eval=typer.Typer(
            help="Evaluate routing and classification on labelled data (added by plugins).", no_args_is_help=True
        ),
        calibrate=typer.Typer(
            help="Pick operating points and thresholds from data (added by plugins).", no_args_is_help=True
        ),
    )
    groups.calibrate.command("cache")(calibrate_cache)
    host.add_commands(groups)
    for name, group in (("train", groups.train), ("eval", groups.eval), ("calibrate", groups.calibrate)):
        if group.registered_commands or group.registered_groups:
            app.add_typer(group, name=name)


def main() -> None:
    """Entry point of the ``llm-router`` script. A core command (``route``, ``run``, ``serve``, …) is run
    without loading the plugins' commands: it creates its router, which loads the plugins it needs."""
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    core = {name for name, _ in _COMMANDS} | {"policy", "catalogue", "cache", "ab"}
    build_app(plugins=first not in core)()


if __name__ == "__main__":  # pragma: no cover
    main()
