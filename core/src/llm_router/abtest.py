"""``llm-router ab report``: compare an experiment's variants from the gateway's usage ledger.

Per variant: requests; cost per request (mean, 95 % CI by the normal approximation to the mean); latency p50
and p95 (95 % CIs from the binomial order statistics: distribution-free); error rate (outcome ≠ ok; Wilson
95 % interval); mean feedback rating (the ``feedback`` table, one rating per request: the last; normal CI).

Verdicts compare each variant with the control (``--control``; default: the alphabetically first variant).
Means (cost, rating) use Welch's z test, proportions
(error rate) a two-proportion z test, quantiles whether the two CIs are disjoint; a difference is called at
p < 0.05 (two-sided). "Not yet significant" comes with how many more requests per variant would detect the
difference seen so far with 80 % power: n = (z₀.₉₇₅ + z₀.₈)² · (s₁² + s₂²) / Δ² per variant, minus those
already there. Several measures are tested at once; each verdict is at its own 5 % level (no correction).
"""

from __future__ import annotations

import math
import sqlite3
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["MEASURES", "ab_report", "ledger_rows"]

Z95 = 1.959963984540054
Z80 = 0.8416212335729143
MEASURES = ("cost_per_request", "latency_p50_ms", "latency_p95_ms", "error_rate", "rating")
LOWER_IS_BETTER = {"cost_per_request": True, "latency_p50_ms": True, "latency_p95_ms": True, "error_rate": True}


def ledger_rows(path: str | Path, since: float | None = None) -> list[dict[str, Any]]:
    """The ledger's rows that carry a variant (from ``since`` on), each with its last feedback rating."""
    if not Path(path).exists():
        raise FileNotFoundError(f"no ledger at {path}")
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        have = {r[1] for r in conn.execute("PRAGMA table_info(usage)")}
        if "variant" not in have:
            return []
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rating = (
            "(SELECT f.rating FROM feedback f WHERE f.request_id = u.request_id AND f.rating IS NOT NULL "
            "ORDER BY f.ts DESC LIMIT 1)"
            if "feedback" in tables
            else "NULL"
        )
        sql = (
            f"SELECT u.variant, u.cost_usd, u.latency_ms, u.outcome, {rating} AS rating "  # noqa: S608 (constants)
            "FROM usage u WHERE u.variant IS NOT NULL AND u.ts >= ? ORDER BY u.ts"
        )
        return [dict(r) for r in conn.execute(sql, (since or 0.0,))]
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{path} is not a usage ledger of llm-router serve ({exc})") from None
    finally:
        conn.close()


def _mean_ci(xs: Sequence[float]) -> dict[str, Any]:
    n = len(xs)
    if n == 0:
        return {"n": 0, "value": None, "ci95": None}
    m = statistics.fmean(xs)
    sd = statistics.stdev(xs) if n > 1 else 0.0
    h = Z95 * sd / math.sqrt(n) if n > 1 else math.inf
    return {"n": n, "value": m, "ci95": [m - h, m + h], "sd": sd}


def _wilson(k: int, n: int) -> dict[str, Any]:
    if n == 0:
        return {"n": 0, "value": None, "ci95": None}
    p = k / n
    d = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / d
    h = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / d
    return {"n": n, "value": p, "ci95": [max(0.0, centre - h), min(1.0, centre + h)], "sd": math.sqrt(p * (1 - p))}


def _quantile_ci(xs: Sequence[float], q: float) -> dict[str, Any]:
    """The q-quantile with a distribution-free 95 % CI: order statistics at n·q ± z·√(n·q·(1 − q))."""
    n = len(xs)
    if n == 0:
        return {"n": 0, "value": None, "ci95": None}
    s = sorted(xs)
    value = s[min(n - 1, max(0, math.ceil(n * q) - 1))]
    h = Z95 * math.sqrt(n * q * (1 - q))
    lo, hi = math.floor(n * q - h), math.ceil(n * q + h)
    ci = [s[lo - 1] if lo >= 1 else -math.inf, s[hi - 1] if hi <= n else math.inf]
    return {"n": n, "value": value, "ci95": ci}


def _normal_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


def _needed(sd1: float, sd2: float, delta: float, have: int) -> int | None:
    if delta == 0:
        return None
    n = (Z95 + Z80) ** 2 * (sd1**2 + sd2**2) / delta**2
    return max(0, math.ceil(n) - have)


def _verdict(measure: str, a: dict[str, Any], b: dict[str, Any], names: tuple[str, str]) -> dict[str, Any]:
    """Is ``b`` (a variant) different from ``a`` (the control) on ``measure``?"""
    if a["value"] is None or b["value"] is None:
        return {"measure": measure, "verdict": "no data"}
    delta = b["value"] - a["value"]
    out: dict[str, Any] = {"measure": measure, "difference": delta}
    if measure.startswith("latency"):
        significant = a["ci95"][1] < b["ci95"][0] or b["ci95"][1] < a["ci95"][0]
        p = None
    else:
        se = math.sqrt(a["sd"] ** 2 / a["n"] + b["sd"] ** 2 / b["n"]) if a["n"] and b["n"] else 0.0
        if se == 0:
            significant, p = delta != 0 and min(a["n"], b["n"]) > 1, 0.0 if delta else 1.0
        else:
            p = _normal_p(delta / se)
            significant = p < 0.05
        out["p_value"] = p
    if significant and delta != 0:
        lower = LOWER_IS_BETTER.get(measure, False)
        better = names[1] if (delta < 0) == lower else names[0]
        out["verdict"] = f"{better} is better"
        out["better"] = better
    else:
        out["verdict"] = "not yet significant"
        if p is not None:
            out["more_requests_needed_per_variant"] = _needed(a["sd"], b["sd"], delta, min(a["n"], b["n"]))
    return out


def _stats(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    rows = list(rows)
    costs = [float(r["cost_usd"]) for r in rows]
    lat = [float(r["latency_ms"]) for r in rows]
    errors = sum(r["outcome"] != "ok" for r in rows)
    ratings = [float(r["rating"]) for r in rows if r["rating"] is not None]
    return {
        "requests": len(rows),
        "cost_per_request": _mean_ci(costs),
        "latency_p50_ms": _quantile_ci(lat, 0.5),
        "latency_p95_ms": _quantile_ci(lat, 0.95),
        "error_rate": _wilson(errors, len(rows)),
        "rating": _mean_ci(ratings),
    }


def ab_report(
    rows: Sequence[dict[str, Any]], experiment: str | None = None, control: str | None = None
) -> dict[str, Any]:
    """Per-variant statistics and verdicts for ``experiment`` (the only one in the rows when ``None``)."""
    split: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in rows:
        for part in str(r["variant"]).split(";"):
            exp, _, variant = part.partition("=")
            split.setdefault(exp, {}).setdefault(variant, []).append(r)
    if not split:
        raise ValueError("the ledger has no requests with a variant (is an experiment in the policy?)")
    if experiment is None:
        if len(split) > 1:
            raise ValueError(f"the ledger holds several experiments ({', '.join(sorted(split))}): name one")
        experiment = next(iter(split))
    if experiment not in split:
        raise ValueError(f"no requests of experiment {experiment!r} (experiments: {', '.join(sorted(split))})")
    groups = split[experiment]
    names = sorted(groups)
    if control is not None:
        if control not in groups:
            raise ValueError(f"no requests of variant {control!r} in {experiment!r} (variants: {', '.join(names)})")
        names = [control] + [n for n in names if n != control]
    stats = {name: _stats(groups[name]) for name in names}
    control = names[0]
    verdicts = {
        name: [_verdict(m, stats[control][m], stats[name][m], (control, name)) for m in MEASURES] for name in names[1:]
    }
    return {"experiment": experiment, "control": control, "variants": stats, "verdicts": verdicts}
