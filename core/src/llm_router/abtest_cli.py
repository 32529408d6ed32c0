"""``llm-router ab report``: the command line of :mod:`llm_router.abtest`."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["ab_app"]


def _fmt(block: dict[str, Any], digits: int) -> str:
    if block.get("value") is None:
        return "-"
    lo, hi = block["ci95"]
    return f"{block['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def ab_report_command(
    ledger: Annotated[
        str,
        typer.Option(help="the gateway's usage ledger: a SQLite file or postgresql:// URL", envvar="LLM_ROUTER_LEDGER"),
    ] = "llm-router-usage.sqlite3",
    since: Annotated[str | None, typer.Option(help="from this date (YYYY-MM-DD, UTC) on")] = None,
    experiment: Annotated[str | None, typer.Option(help="the experiment (default: the only one)")] = None,
    control: Annotated[str | None, typer.Option(help="the control variant (default: the first by name)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Per variant: requests, cost per request, latency p50/p95, error rate, mean rating, with 95 % CIs and
    verdicts."""
    from .abtest import ab_report, ledger_rows
    from .cli import EXIT_BAD_INPUT, _fail, _since
    from .errors import ConfigurationError
    from .gateway.pg_ledger import redact

    start = _since(since)
    try:
        rep = ab_report(ledger_rows(ledger, start), experiment, control)
    except (FileNotFoundError, ValueError, ConfigurationError) as exc:
        _fail(EXIT_BAD_INPUT, f"--ledger {redact(ledger)}: {exc}")
    if json_:
        sys.stdout.write(
            json.dumps({"version": 1, "ledger": redact(ledger), "since": since, **rep}, default=str) + "\n"
        )
        return
    out = Console()
    table = Table(title=f"experiment {rep['experiment']} (95 % CIs)", title_justify="left")
    for col in (
        "variant",
        "requests",
        "cost / request USD",
        "latency p50 ms",
        "latency p95 ms",
        "error rate",
        "rating",
    ):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for name, s in rep["variants"].items():
        table.add_row(
            name,
            str(s["requests"]),
            _fmt(s["cost_per_request"], 6),
            _fmt(s["latency_p50_ms"], 0),
            _fmt(s["latency_p95_ms"], 0),
            _fmt(s["error_rate"], 3),
            _fmt(s["rating"], 3),
        )
    out.print(table)
    for name, verdicts in rep["verdicts"].items():
        for v in verdicts:
            more = v.get("more_requests_needed_per_variant")
            tail = f" (about {more} more requests per variant)" if more is not None else ""
            out.print(f"{name} vs {rep['control']}, {v['measure']}: {v['verdict']}{tail}")


def ab_app() -> typer.Typer:
    app = typer.Typer(help="A/B tests of policies (the policy's `experiments:`).", no_args_is_help=True)
    app.command("report")(ab_report_command)
    return app
