"""The model catalogue: every model the router may pick, with price, limits, capabilities, quality and
latency priors, and where each number comes from.

Sources, in order (later ones override earlier ones field by field):

1. the built-in data file ``llm_router/data/catalogue.yaml`` (specs, quality and latency priors, each with
   its cited source; see ``CATALOGUE-PROVENANCE.md`` beside it);
2. prices from the maintained ``genai-prices`` library where it covers the model (else the file's own
   cited price);
3. models that provider plugins contribute (``Provider.models()``);
4. the policy's ``models:`` section (additions and overrides, e.g. a local OpenAI-compatible model).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from .errors import ConfigurationError
from .types import Capabilities, ModelInfo, ModelPrice

__all__ = ["Catalogue", "builtin_models", "genai_price"]


@lru_cache(maxsize=256)
def genai_price(provider_id: str, model_ref: str) -> tuple[float, float] | None:
    """USD per million input and output tokens from genai-prices (base tier), or ``None`` if unknown.

    One calculation gives both (its ``input_price`` and ``output_price``; tiers depend on the input tokens, and
    1,000 stays in the base tier)."""
    try:
        from genai_prices import Usage, calc_price

        per_k = calc_price(Usage(input_tokens=1000, output_tokens=1000), model_ref, provider_id=provider_id)
    except Exception:  # unknown model or provider: the caller falls back to the file's price
        return None
    return float(per_k.input_price) * 1000, float(per_k.output_price) * 1000


def _price(entry: Mapping[str, Any], model_id: str) -> ModelPrice:
    prices = entry.get("prices") or {}
    ref = prices.get("genai_prices")
    if ref:
        found = genai_price(ref["provider_id"], ref["model_ref"])
        if found is not None:
            return ModelPrice(
                input_per_mtok=round(found[0], 6),
                output_per_mtok=round(found[1], 6),
                source=f"genai-prices ({ref['provider_id']}/{ref['model_ref']})",
            )
    if "input_per_mtok" in prices:
        return ModelPrice(
            input_per_mtok=prices["input_per_mtok"],
            output_per_mtok=prices["output_per_mtok"],
            source=str(prices.get("source", "catalogue.yaml")),
        )
    raise ConfigurationError(f"catalogue.yaml: model {model_id} has no price genai-prices knows and no literal price")


def _model_from_entry(entry: Mapping[str, Any]) -> ModelInfo:
    latency = entry.get("latency") or {}
    return ModelInfo(
        id=entry["id"],
        provider=entry["provider"],
        model=entry["model"],
        display_name=entry.get("display_name"),
        price=_price(entry, entry["id"]),
        context_window=entry["context_window"],
        max_output_tokens=entry["max_output_tokens"],
        capabilities=Capabilities(**(entry.get("capabilities") or {})),
        quality=dict(entry.get("quality") or {}),
        quality_source=entry.get("quality_source"),
        ttft_ms=latency.get("ttft_ms", 800.0),
        tokens_per_second=latency.get("tokens_per_second", 60.0),
        latency_source=entry.get("latency_source"),
        tokenizer_exact=bool(entry.get("tokenizer_exact", False)),
        **_lifecycle(entry),
    )


def _lifecycle(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The ``lifecycle`` block of a catalogue entry (``released``, ``deprecated_on``, ``retires_on``,
    ``successor``, ``source``) as :class:`ModelInfo` fields."""
    block = entry.get("lifecycle") or {}
    out = {k: block[k] for k in ("released", "deprecated_on", "retires_on", "successor") if block.get(k) is not None}
    if block.get("source"):
        out["lifecycle_source"] = block["source"]
    return out


@lru_cache(maxsize=1)
def _builtin_data() -> dict[str, Any]:
    text = resources.files("llm_router").joinpath("data/catalogue.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    return data


@lru_cache(maxsize=1)
def builtin_models() -> tuple[ModelInfo, ...]:
    """The built-in catalogue's models, priced."""
    return tuple(_model_from_entry(entry) for entry in _builtin_data()["models"])


def builtin_sources() -> dict[str, Any]:
    """The sources the built-in catalogue cites, by key."""
    return dict(_builtin_data().get("sources") or {})


class Catalogue:
    """The models in force for one router, by id (``provider/model``)."""

    def __init__(self, models: Iterable[ModelInfo] = ()) -> None:
        self._models: dict[str, ModelInfo] = {}
        for model in models:
            self._models[model.id] = model

    @classmethod
    def builtin(cls) -> Catalogue:
        return cls(builtin_models())

    def add(self, model: ModelInfo) -> None:
        self._models[model.id] = model

    def remove(self, model_id: str) -> None:
        self._models.pop(model_id, None)

    def override(self, model_id: str, **fields: Any) -> ModelInfo:
        """Replace fields of an existing model; validated like a new one."""
        current = self._models[model_id]
        data = current.model_dump()
        data.update(fields)
        model = ModelInfo.model_validate(data)
        self._models[model_id] = model
        return model

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def ids(self) -> list[str]:
        return list(self._models)

    def match(self, patterns: Sequence[str]) -> list[ModelInfo]:
        """Models matching any of ``patterns`` (ids or globs like ``openai/*``), in pattern order."""
        out: dict[str, ModelInfo] = {}
        for pattern in patterns:
            if pattern in self._models:
                out.setdefault(pattern, self._models[pattern])
                continue
            for model_id, model in self._models.items():
                if fnmatch.fnmatchcase(model_id, pattern):
                    out.setdefault(model_id, model)
        return list(out.values())
