"""Built-in prices come from genai-prices: one calculation per model gives both per-token prices."""

from __future__ import annotations

from genai_prices import Usage, calc_price
from llm_router.catalogue import _builtin_data, genai_price


def test_each_price_is_what_genai_prices_charges_for_input_alone_and_output_alone() -> None:
    refs = [e["prices"]["genai_prices"] for e in _builtin_data()["models"] if "genai_prices" in e.get("prices", {})]
    assert refs
    for ref in refs:
        provider, model = ref["provider_id"], ref["model_ref"]
        alone_in = calc_price(Usage(input_tokens=1000, output_tokens=0), model, provider_id=provider).total_price
        alone_out = calc_price(Usage(input_tokens=0, output_tokens=1000), model, provider_id=provider).total_price
        assert genai_price(provider, model) == (float(alone_in) * 1000, float(alone_out) * 1000), ref


def test_an_unknown_model_has_no_price() -> None:
    assert genai_price("openai", "no-such-model-xyz") is None
