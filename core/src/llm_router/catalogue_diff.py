"""``llm-router catalogue diff FILE``: what a newer catalogue data file or a newer genai-prices data file would
change in the built-in catalogue (models added or removed; prices, limits, capabilities and lifecycle dates),
so that updating either is a reviewed step.

``FILE`` is either

- a catalogue data file in the format of ``llm_router/data/catalogue.yaml`` (``.yaml`` / ``.yml``): its models,
  priced as the router would price them (genai-prices where the entry refers to it), against the built-in ones;
- a genai-prices data file (``.json``: the provider array genai-prices publishes as ``prices/data.json`` and its
  auto-update fetches): the built-in models re-priced with it, against their prices today. A model the file
  does not price keeps its price and is listed as ``unpriced``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .catalogue import _model_from_entry, builtin_models
from .errors import ConfigurationError
from .types import ModelInfo, ModelPrice

__all__ = ["CatalogueDiff", "Change", "diff_file", "diff_models"]

FIELDS = (
    "price.input_per_mtok",
    "price.output_per_mtok",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "released",
    "deprecated_on",
    "retires_on",
    "successor",
)


@dataclass(frozen=True)
class Change:
    model_id: str
    field: str
    old: Any
    new: Any


@dataclass
class CatalogueDiff:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unpriced: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.unpriced)

    def as_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": [{"model": c.model_id, "field": c.field, "old": c.old, "new": c.new} for c in self.changed],
            "unpriced": self.unpriced,
        }


def _value(model: ModelInfo, name: str) -> Any:
    if name.startswith("price."):
        return getattr(model.price, name.partition(".")[2])
    value = getattr(model, name)
    if name == "capabilities":
        return ",".join(n for n in ("tools", "vision", "json_mode", "streaming") if value.has(n))
    return value.isoformat() if hasattr(value, "isoformat") else value


def diff_models(old: Sequence[ModelInfo], new: Sequence[ModelInfo]) -> CatalogueDiff:
    """What changes from ``old`` to ``new`` (by model id)."""
    before, after = {m.id: m for m in old}, {m.id: m for m in new}
    out = CatalogueDiff(
        added=sorted(after.keys() - before.keys()),
        removed=sorted(before.keys() - after.keys()),
    )
    for model_id in sorted(before.keys() & after.keys()):
        for name in FIELDS:
            a, b = _value(before[model_id], name), _value(after[model_id], name)
            if a != b:
                out.changed.append(Change(model_id, name, a, b))
    return out


def _from_catalogue_file(path: Path) -> list[ModelInfo]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"{path}: cannot read the catalogue file: {exc}") from None
    entries = data.get("models") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigurationError(f"{path}: not a catalogue data file (no `models:` list)")
    models = []
    for i, entry in enumerate(entries):
        try:
            models.append(_model_from_entry(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{path}: models[{i}]: {type(exc).__name__}: {exc}") from None
    return models


def _builtin_refs() -> dict[str, tuple[str, str]]:
    from .catalogue import _builtin_data

    refs = {}
    for entry in _builtin_data()["models"]:
        ref = (entry.get("prices") or {}).get("genai_prices")
        if ref:
            refs[entry["id"]] = (ref["provider_id"], ref["model_ref"])
    return refs


def _repriced(path: Path) -> tuple[list[ModelInfo], list[str]]:
    """The built-in models priced by the genai-prices data file ``path``, and those it does not price."""
    from genai_prices import Usage, types
    from genai_prices.data_snapshot import DataSnapshot

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        providers = types._providers_from_raw(raw)  # the parser genai-prices' own auto-update uses
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{path}: not a genai-prices data file: {exc}") from None
    snapshot = DataSnapshot(providers=providers, from_auto_update=True)
    refs, models, unpriced = _builtin_refs(), [], []
    for model in builtin_models():
        ref = refs.get(model.id)
        try:
            if ref is None:
                raise LookupError(model.id)
            calc = snapshot.calc(Usage(input_tokens=1000, output_tokens=1000), ref[1], ref[0], None, None)
        except LookupError:
            unpriced.append(model.id)
            models.append(model)
            continue
        price = ModelPrice(
            input_per_mtok=round(float(calc.input_price) * 1000, 6),
            output_per_mtok=round(float(calc.output_price) * 1000, 6),
            source=f"genai-prices file {path.name} ({ref[0]}/{ref[1]})",
        )
        models.append(model.model_copy(update={"price": price}))
    return models, unpriced


def diff_file(path: str | Path) -> CatalogueDiff:
    """The diff between the built-in catalogue and what ``path`` (a catalogue YAML or genai-prices JSON) gives."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such file")
    if path.suffix.lower() == ".json":
        models, unpriced = _repriced(path)
        out = diff_models(builtin_models(), models)
        out.unpriced = unpriced
        return out
    return diff_models(builtin_models(), _from_catalogue_file(path))
