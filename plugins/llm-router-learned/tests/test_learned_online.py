"""The ``online_quality`` scorer: learning from feedback through the real Router, its errors and its state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from llm_router import FeedbackError, PolicyError, Router
from llm_router_learned.base import ArtifactError
from llm_router_learned.online import OnlineQualityScorer

MATH = "solve the integral of x squared and the derivative of the equation"
CHAT = "hello friend, what movie should we watch with coffee tonight"


def policy(**learner: Any) -> dict[str, Any]:
    model = {"price": {"input_per_mtok": 1, "output_per_mtok": 1}, "context_window": 100_000, "max_output_tokens": 1000}
    return {
        "version": 1,
        "models": [{"id": "data/a", **model}, {"id": "data/b", **model}],
        "score": [{"online_quality": {"seed": 1, **learner}}, "cost"],
        "preferences": {"online_quality": 1.0},
        "routes": [{"models": ["data/a", "data/b"]}],
    }


def learner_of(router: Router) -> OnlineQualityScorer:
    return next(s for _, s in router.scorers if isinstance(s, OnlineQualityScorer))


def teach(router: Router, n: int) -> None:
    """a is right on chat prompts only, b on math prompts only."""
    for i in range(n):
        prompt = MATH if i % 2 else CHAT
        d = router.route(prompt)
        right = "data/b" if prompt is MATH else "data/a"
        router.feedback({"request_id": d.request_id, "rating": float(d.selected.id == right)})


@pytest.mark.parametrize("algorithm", ["linucb", "thompson"])
def test_learns_which_model_is_right_for_which_prompt(algorithm: str) -> None:
    router = Router(policy(algorithm=algorithm, explore=0.2))
    learner_of(router).cfg.explore = 0.0
    before = {router.route(MATH).selected.id, router.route(CHAT).selected.id}
    assert len(before) == 1  # nothing learned: equal priors, the tie goes to the same model
    learner_of(router).cfg.explore = 0.2
    teach(router, 200)
    learner_of(router).cfg.explore = 0.0
    assert router.route(MATH).selected.id == "data/b"
    assert router.route(CHAT).selected.id == "data/a"
    top = router.route(MATH).top.breakdown["online_quality"]
    assert top > 0.8


def test_explore_share_is_bounded_by_the_policy() -> None:
    router = Router(policy(explore=0.1))
    learner = learner_of(router)
    teach(router, 100)
    assert learner.decided >= 100
    assert learner.explored <= 0.1 * learner.decided + 1
    assert learner.explored >= 0.1 * learner.decided - 1


def test_starts_from_the_catalogue_priors() -> None:
    pol = policy(explore=0.0)
    pol["models"][0]["quality"] = {"general": 0.3}
    pol["models"][1]["quality"] = {"general": 0.7}
    d = Router(pol).route(CHAT)
    assert d.selected.id == "data/b"
    assert {c.id: round(c.breakdown["online_quality"], 6) for c in d.ranking} == {"data/a": 0.3, "data/b": 0.7}


def test_unknown_expired_and_repeated_feedback_are_clear_errors() -> None:
    router = Router(policy(ttl_s=3600))
    with pytest.raises(FeedbackError, match=r"'nope'.*unknown to the online learner"):
        router.feedback({"request_id": "nope", "rating": 1.0})
    d = router.route(CHAT)
    router.feedback({"request_id": d.request_id, "rating": 1.0})
    with pytest.raises(FeedbackError, match="rated already"):
        router.feedback({"request_id": d.request_id, "rating": 1.0})
    d2 = router.route(CHAT)
    with pytest.raises(FeedbackError, match="was not a candidate"):
        router.feedback({"request_id": d2.request_id, "rating": 1.0, "model_id": "data/zzz"})
    d3 = router.route(CHAT)
    store = learner_of(router).store
    pending = store.take(d3.request_id, 0.0)
    assert not isinstance(pending, str)
    store.remember(d3.request_id, type(pending)(pending.features, pending.base, pending.model_id, at=0.0))
    with pytest.raises(FeedbackError, match="expired"):
        router.feedback({"request_id": d3.request_id, "rating": 1.0})


def test_the_model_that_answered_gets_the_update() -> None:
    router = Router(policy(explore=0.0))
    learner = learner_of(router)
    d = router.route(CHAT)
    other = next(c.id for c in d.ranking if c.id != d.selected.id)
    router.feedback({"request_id": d.request_id, "rating": 1.0, "model_id": other})
    assert learner.store.arm(other) is not None
    assert learner.store.arm(d.selected.id) is None


@pytest.mark.anyio
async def test_gateway_style_async_feedback_raises_too() -> None:
    router = Router(policy())
    with pytest.raises(FeedbackError):
        await router.afeedback({"request_id": "never", "rating": 0.5})
    d = await router.adecide(router.build_request(CHAT))
    await router.afeedback({"request_id": d.request_id, "rating": 0.5})


def test_export_import_and_reset(tmp_path: Path) -> None:
    router = Router(policy(explore=0.0))
    teach(router, 60)
    learner = learner_of(router)
    learned = learner.estimate("data/b", learner.features(MATH)[0], 0.5)
    path = learner.export(tmp_path / "arms.npz")

    fresh = Router(policy(explore=0.0, state_file=str(path)))  # imported at start-up
    assert learner_of(fresh).estimate("data/b", learner.features(MATH)[0], 0.5) == pytest.approx(learned)
    assert fresh.route(MATH).selected.id == "data/b"

    learner.reset()
    assert learner.store.arm("data/b") is None
    assert learner.estimate("data/b", learner.features(MATH)[0], 0.5)[0] == 0.5
    assert learner.import_file(path) == 2
    assert learner.estimate("data/b", learner.features(MATH)[0], 0.5) == pytest.approx(learned)


def test_state_file_is_saved_every_n_ratings(tmp_path: Path) -> None:
    path = tmp_path / "auto.npz"
    router = Router(policy(state_file=str(path), save_every=5))
    teach(router, 4)
    assert not path.exists()
    teach(router, 1)
    assert path.exists()


def test_a_bad_export_is_refused_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    learner = learner_of(Router(policy()))
    with pytest.raises(ArtifactError, match=r"bad\.npz"):
        learner.import_file(bad)
    with pytest.raises(PolicyError, match=r"bad\.npz"):
        Router(policy(state_file=str(bad)))


def test_explore_outside_its_bounds_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match="explore"):
        Router(policy(explore=1.5))


def test_routers_do_not_hear_each_others_feedback() -> None:
    one, two = Router(policy()), Router(policy())
    d = one.route(CHAT)
    with pytest.raises(FeedbackError):
        two.feedback({"request_id": d.request_id, "rating": 1.0})
    one.feedback({"request_id": d.request_id, "rating": 1.0})


def test_optimistic_scores_above_one_keep_their_order() -> None:
    pol = policy(explore=1.0)  # every decision explores: the untried models' bonus lifts both above 1
    pol["models"][0]["quality"] = {"general": 0.3}
    pol["models"][0]["price"] = {"input_per_mtok": 0.1, "output_per_mtok": 0.1}  # a is cheaper: a tie goes to it
    pol["models"][1]["quality"] = {"general": 0.7}
    d = Router(pol).route(CHAT)
    scores = {c.id: c.breakdown["online_quality"] for c in d.ranking}
    assert scores["data/b"] == 1.0
    assert 0.5 < scores["data/a"] < 1.0
    assert d.selected.id == "data/b"


def test_the_router_state_store_can_hold_the_learner_state() -> None:
    from llm_router.state import MemoryState
    from llm_router_learned.online_store import MemoryOnlineStore

    class SharedState(MemoryState):
        """A state backend that also keeps learners' state (as a shared one would)."""

        def __init__(self) -> None:
            super().__init__()
            self.stores: dict[str, MemoryOnlineStore] = {}

        def online_store(self, name: str, ttl_s: float, max_pending: int) -> MemoryOnlineStore:
            return self.stores.setdefault(name, MemoryOnlineStore(ttl_s, max_pending))

    state = SharedState()
    one = Router(policy(explore=0.0), state=state)
    d = one.route(CHAT)
    two = Router(policy(explore=0.0), state=state)  # another instance on the same backend
    two.feedback({"request_id": d.request_id, "rating": 1.0})
    assert learner_of(one).store is learner_of(two).store is state.stores["online_quality"]
    assert state.stores["online_quality"].arm(d.selected.id) is not None
