"""Bridge LiveBench leaderboard tables onto the catalogue's quality scale (a maintenance tool, not run by CI).

The built-in catalogue's quality priors are LiveBench per-task scores from the 2025-05-30 release, mapped to
the router's 12 tasks and divided by 100 (``core/src/llm_router/data/CATALOGUE-PROVENANCE.md``). Later
releases changed their questions, so a newer row is put on the 2025-05-30 scale with one least-squares line
per router task, fitted on the models present in both tables (the "anchors"); a release with too few
anchors in common with 2025-05-30 is chained through an intermediate release (line after line).

The tables come from the GitHub repository ``LiveBench/livebench.github.io`` (``public/table_<release>.csv``
and ``public/categories_<release>.json``); give the directory holding them::

    git -C LIVEBENCH show COMMIT:public/table_2026_01_08.csv > DIR/table_2026_01_08.csv   # and so on
    python benchmarks/bridge_livebench.py DIR --chain 2026_01_08 2025_11_25 2025_05_30 \\
        --row gpt-5.5-medium --row claude-sonnet-4-6-thinking-auto-medium-effort

It prints each link's fit per task (slope, intercept, anchors, Pearson r) and the bridged 12-task values of
each ``--row``, rounded to 2 decimals and clipped to [0, 1] as in the catalogue.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TASKS = (
    "code",
    "math",
    "reasoning",
    "creative_writing",
    "summarization",
    "information_extraction",
    "classification",
    "closed_qa",
    "open_qa",
    "brainstorming",
    "translation",
    "chat",
)
SIX = ("Reasoning", "Coding", "Mathematics", "Data Analysis", "Language", "IF")
"""The categories every row is compared on (Agentic Coding is left out: older rows lack it)."""

# The same configuration under two names in different releases (old name -> new name).
ALIASES = {
    "gemini-2.5-pro-preview-06-05-highthinking": "gemini-2.5-pro-06-05-highthinking",
    "gpt-5-2025-08-07": "gpt-5",
    "gpt-5-chat-latest": "gpt-5-chat",
    "gpt-5-2025-08-07-high": "gpt-5-high",
    "gpt-5-2025-08-07-low": "gpt-5-low",
    "gpt-5-2025-08-07-minimal": "gpt-5-minimal",
    "gpt-5-mini-2025-08-07": "gpt-5-mini",
    "gpt-5-mini-2025-08-07-high": "gpt-5-mini-high",
    "gpt-5-nano-2025-08-07": "gpt-5-nano",
    "gpt-5-nano-2025-08-07-high": "gpt-5-nano-high",
    "gpt-5-nano-2025-08-07-low": "gpt-5-nano-low",
    "gpt-5-nano-2025-08-07-minimal": "gpt-5-nano-minimal",
}

Row = Mapping[str, float]


@dataclass(frozen=True)
class Fit:
    slope: float
    intercept: float
    anchors: int
    r: float

    def __call__(self, x: float) -> float:
        return self.slope * x + self.intercept


def load(directory: Path, release: str) -> dict[str, dict[str, float]]:
    """Router-task scores in [0, 1] per model row of one release (rows missing a needed task are skipped)."""
    categories: dict[str, list[str]] = json.loads((directory / f"categories_{release}.json").read_text())
    categories = {("Data Analysis" if k == "DataAnalysis" else k): v for k, v in categories.items()}
    out: dict[str, dict[str, float]] = {}
    with (directory / f"table_{release}.csv").open(newline="") as fh:
        for raw in csv.DictReader(fh):
            try:
                scores = {k: float(v) / 100 for k, v in raw.items() if k != "model" and v not in ("", None)}
                out[raw["model"]] = tasks_of(scores, categories)
            except KeyError:
                continue
    return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def tasks_of(scores: Mapping[str, float], categories: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """The catalogue's mapping from LiveBench tasks and categories to the router's 12 tasks."""
    cat = {name: _mean([scores[t] for t in categories[name]]) for name in SIX}
    six = _mean(list(cat.values()))
    return {
        "code": cat["Coding"],
        "math": cat["Mathematics"],
        "reasoning": cat["Reasoning"],
        "creative_writing": _mean([scores["story_generation"], scores["plot_unscrambling"]]),
        "summarization": _mean([scores["summarize"], scores["simplify"]]),
        "information_extraction": cat["Data Analysis"],
        "classification": _mean([cat["Language"], cat["Data Analysis"]]),
        "closed_qa": _mean([cat["Data Analysis"], cat["IF"], cat["Reasoning"]]),
        "open_qa": six,
        "brainstorming": _mean([cat["IF"], cat["Language"]]),
        "translation": cat["Language"],
        "chat": six,
    }


def _canonical(name: str) -> str:
    return ALIASES.get(name, name)


def fit(new: Mapping[str, Row], old: Mapping[str, Row]) -> dict[str, Fit]:
    """Per task, ``old ≈ slope * new + intercept`` over the rows both tables hold."""
    old_c = {_canonical(k): v for k, v in old.items()}
    anchors = sorted(set(old_c) & {_canonical(k) for k in new})
    new_c = {_canonical(k): v for k, v in new.items()}
    if len(anchors) < 3:
        raise SystemExit(f"only {len(anchors)} rows in common: chain through another release")
    out = {}
    for task in TASKS:
        xs = [new_c[a][task] for a in anchors]
        ys = [old_c[a][task] for a in anchors]
        mx, my = _mean(xs), _mean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        syy = sum((y - my) ** 2 for y in ys)
        sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
        slope = sxy / sxx if sxx else 1.0
        r = sxy / math.sqrt(sxx * syy) if sxx and syy else 1.0
        out[task] = Fit(slope, my - slope * mx, len(anchors), r)
    return out


def anchors_of(new: Mapping[str, Row], old: Mapping[str, Row]) -> list[str]:
    return sorted({_canonical(k) for k in old} & {_canonical(k) for k in new})


def bridge(row: Row, links: Sequence[Mapping[str, Fit]]) -> dict[str, float]:
    """A row's values carried through each link in turn, rounded and clipped as in the catalogue."""
    out = {}
    for task in TASKS:
        value = row[task]
        for link in links:
            value = link[task](value)
        out[task] = round(min(1.0, max(0.0, value)), 2)
    return out


def _check_chain(chain: Sequence[str], tables: Sequence[Mapping[str, Row]], links: Sequence[Mapping[str, Fit]]) -> None:
    """How far the chained lines land from the true target values, on the rows the ends of the chain share."""
    first, last = tables[0], {_canonical(k): v for k, v in tables[-1].items()}
    shared = [k for k in first if _canonical(k) in last]
    if not shared:
        return
    errors = {t: [abs(bridge(first[k], links)[t] - last[_canonical(k)][t]) for k in shared] for t in TASKS}
    print(f"# check on the {len(shared)} rows {chain[0]} and {chain[-1]} share (mean / max abs error):")
    for task, errs in errors.items():
        print(f"  {task}: {_mean(errs):.3f} / {max(errs):.3f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="holds table_<release>.csv and categories_<release>.json")
    parser.add_argument("--chain", nargs="+", required=True, help="releases, newest first, ending at the target")
    parser.add_argument("--row", action="append", default=[], help="a row of the first release to bridge")
    args = parser.parse_args(argv)
    tables = [load(args.directory, release) for release in args.chain]
    links = []
    for (name_new, new), (name_old, old) in zip(
        zip(args.chain, tables, strict=True), zip(args.chain[1:], tables[1:], strict=True), strict=False
    ):
        link = fit(new, old)
        links.append(link)
        print(f"# {name_new} -> {name_old}: {link['code'].anchors} anchors: {', '.join(anchors_of(new, old))}")
        for task, f in link.items():
            print(f"  {task}: old={f.slope:.4f}*new{f.intercept:+.4f}, r={f.r:.3f}")
    if len(links) > 1:
        _check_chain(args.chain, tables, links)
    for name in args.row:
        if name not in tables[0]:
            raise SystemExit(f"no row {name!r} in table_{args.chain[0]}.csv")
        values = bridge(tables[0][name], links)
        print(f"{name}: {{{', '.join(f'{t}: {v:.2f}' for t, v in values.items())}}}")


if __name__ == "__main__":
    main()
