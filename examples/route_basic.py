"""Route a few prompts with the built-in policy and print why each model was chosen.

Run:  python examples/route_basic.py

No model is called and no API key is needed: ``Router.route()`` only decides.
"""

from llm_router import Router

PROMPTS = [
    "Write a Python function to calculate fibonacci numbers",
    "Summarize this article in three sentences: ...",
    "Translate 'good morning' into French",
    "hello!",
]


def main() -> None:
    with Router() as router:
        for prompt in PROMPTS:
            decision = router.route(prompt)
            print(prompt)
            print("  ", decision.explain())
            print(f"   route: {decision.route}; decided in {decision.routing_time_ms:.2f} ms")
        # Per-request preferences are merged over the policy's weights, name by name, for that request.
        cheap = router.route(PROMPTS[0], preferences={"quality": 0.3, "cost_weight": 0.7})
        print("cost-leaning:", cheap.explain())


if __name__ == "__main__":
    main()
