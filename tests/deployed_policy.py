"""One model served by two deployments of the test plugin's scripted provider, ``eu`` and ``us`` (two
"regions"): the policy the deployment tests (integration, fleet on Redis) and
``benchmarks/bench_deployment_fleet.py`` share."""

from __future__ import annotations

POLICY = """
providers:
  eu: {{type: scripted, models: [small], price_in: 1, price_out: 2}}
  us: {{type: scripted, models: [small], price_in: 1, price_out: 2}}
routes:
  - models: [eu/small]
fallback: {{retries: 0, backoff_ms: 1, max_backoff_ms: 5, max_models: 1, timeout_s: 5{fallback}}}
deployments:
  eu/small:
    strategy: {strategy}
    cooldown_s: 300
    targets:
      - {{provider: eu{eu}}}
      - {{provider: us{us}}}
{extra}
"""


def deployed_policy(
    strategy: str = "least-busy", eu: str = "", us: str = "", fallback: str = "", extra: str = ""
) -> str:
    """The policy text: ``eu``/``us`` add to each target's mapping (``", rpm: 3"``), ``fallback`` to the
    fallback section's, ``extra`` is appended (a ``state:`` section)."""
    return POLICY.format(strategy=strategy, eu=eu, us=us, fallback=fallback, extra=extra)
