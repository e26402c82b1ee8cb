"""The learning loop and the learned escalation through RoutedClient, against the FakeUpstream.

Routing is the cold-start router (``Router.default()``); for the code prompt its candidates,
cheapest first, are glm-4-flash (predicted 0.55), deepseek-chat (0.78), gpt-4o-mini (0.74),
glm-4v (0.50), deepseek-v4-pro (0.90), deepseek-reasoner (0.86), glm-5.1 (0.84) and gpt-4o
(0.92). Without a trained answer scorer an answer scores its model's predicted quality (0 when
an original check fires), so the cascades below are worked out by hand from those numbers.
"""

from __future__ import annotations

import numpy as np
import pytest

from router import Router, RoutedClient
from router.errors import InvalidRequestError
from router.serving.usage.store import UsageStore
from tests.support.chat import CODE, FAST, HELLO

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path):
    s = UsageStore(f"sqlite:///{tmp_path}/usage.db", store_prompts=True, store_responses=True)
    yield s
    s.close()


@pytest.fixture
def make(router_, up, store):
    made = []

    def _make(router=None, **kw):
        kw.setdefault("base_url", up.base_url)
        kw.setdefault("api_key", "test")
        kw.setdefault("usage", store)
        kw.setdefault("retry", FAST)
        kw.setdefault("timeout", 5.0)
        c = RoutedClient(router or router_, **kw)
        made.append(c)
        return c

    yield _make
    for c in made:
        c.close()


def rows(store):
    assert store.flush(5.0)
    return store.records()


# ---- exploration ----------------------------------------------------------------------------


def test_exploration_draws_among_eligible_candidates_and_logs_the_propensity(make, up, store, router_):
    c = make(exploration=1.0, rng=np.random.default_rng(0), router_version="llm-router/7")
    cap = 0.0014  # leaves out glm-5.1 and gpt-4o (expected cost above the cap)
    d = router_.route(CODE, tier="budget", max_cost=cap)
    k = len(d.candidates)
    assert k == 6 and "gpt-4o" not in d.candidates
    served = []
    for _ in range(30):
        r = c.chat.completions.create(model="auto:budget", messages=CODE, max_cost=cap)
        served.append(r.router["model"])
        assert r.router["routed_model"] == r.router["model"] and r.router["explored"] is True
        assert r.router["router_version"] == "llm-router/7"
    assert set(served) <= set(d.candidates) and len(set(served)) >= 4  # uniform among the eligible
    recs = rows(store)
    assert len(recs) == 30
    for rec in recs:
        assert rec.explored is True and rec.routed_model == rec.model
        want = 1 - 1.0 + 1.0 / k if rec.model == d.model else 1.0 / k
        assert rec.propensity == pytest.approx(want)
        assert [x["model"] for x in rec.candidates] == list(d.candidates)
        assert rec.target_quality == pytest.approx(0.7) and rec.router_version == "llm-router/7"
        assert rec.classifier_text == router_.classifier_text(CODE)
        assert rec.answer == f"echo[{rec.model}]: {CODE[0]['content']}"
    assert {m for m in served} == {req["body"]["model"] for req in up.requests}


def test_the_policy_choice_keeps_its_propensity_and_requests_can_opt_out(make, store, router_):
    eps = 0.3
    c = make(exploration=eps, rng=np.random.default_rng(1))
    d = router_.route(HELLO)
    for how in ({"extra_body": {"router": {"explore": False}}}, {"explore": False}):
        for _ in range(5):
            r = c.chat.completions.create(model="auto", messages=HELLO, **how)
            assert r.router["model"] == d.model and r.router["explored"] is False
            assert r.router["propensity"] == 1.0
    seen = [c.chat.completions.create(model="auto", messages=HELLO).router for _ in range(40)]
    k = len(d.candidates)
    for meta in seen:
        want = 1 - eps + eps / k if meta["model"] == d.model else eps / k
        assert meta["propensity"] == pytest.approx(want)
    assert any(m["explored"] for m in seen) and any(not m["explored"] for m in seen)
    recs = rows(store)
    assert [r.propensity for r in recs[:10]] == [1.0] * 10 and not any(r.explored for r in recs[:10])


def test_exploration_is_off_by_default_and_a_named_model_is_never_explored(make, store, router_):
    c = make()
    r = c.chat.completions.create(model="auto", messages=HELLO)
    assert r.router["model"] == router_.route(HELLO).model and r.router["propensity"] == 1.0
    c2 = make(exploration=1.0, rng=np.random.default_rng(2))
    r = c2.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert r.router["model"] == "gpt-4o" and r.router["routed_model"] is None and r.router["propensity"] is None
    recs = rows(store)
    assert recs[0].propensity == 1.0 and recs[0].routed_model == recs[0].model
    assert recs[1].routed_model is None and recs[1].candidates == []


def test_a_fallback_row_keeps_the_first_routed_model(make, up, store, router_):
    first = router_.route(CODE, tier="budget").model
    up.add_fault("status", model=first, status=500, times=3)
    r = make().chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] != first and r.router["routed_model"] == first
    (rec,) = rows(store)
    assert rec.model == r.router["model"] and rec.routed_model == first and rec.propensity == 1.0


def test_bad_learning_options_are_named(make):
    c = make()
    for bad, word in ((("escalate", "sometimes"), "escalate"), (("escalate", {"target": 2}), "target"),
                      (("escalate", {"max_steps": 0}), "max_steps"), (("escalate", {"agree": "yes"}), "agree"),
                      (("escalate", {"steps": 2}), "steps"), (("explore", "no"), "explore")):
        with pytest.raises(InvalidRequestError, match=word):
            c.chat.completions.create(model="auto", messages=HELLO, extra_body={"router": dict([bad])})
    with pytest.raises(ValueError, match="exploration"):
        make(exploration=1.5)
    with pytest.raises(InvalidRequestError, match="escalate"):
        make(escalate="always")


# ---- the learned cascade --------------------------------------------------------------------


def _cascade(**kw):
    return {"extra_body": {"router": {"escalate": kw}}}


def test_cascade_escalates_while_the_score_is_below_the_target(make, up, store):
    c = make()
    # first step: the cheapest predicted >= 0.75 - 0.2: glm-4-flash (0.55); its score 0.55 < 0.75,
    # so escalate to the best predicted stronger model, gpt-4o (0.92), which is accepted
    r = c.chat.completions.create(model="auto:budget", messages=CODE, **_cascade(target=0.75))
    assert r.router["model"] == "gpt-4o" and r.router["escalated"] is True
    assert [(e["model"], e["status"], e.get("step"), e.get("score")) for e in r.router["chain"]] == [
        ("glm-4-flash", "escalated", 1, 0.55), ("gpt-4o", "ok", 2, 0.92)]
    steps = r.router["cascade"]
    assert [(s["step"], s["action"], s["models"]) for s in steps] == [
        (1, "call", ["glm-4-flash"]), (2, "call", ["gpt-4o"]), (2, "accept", ["gpt-4o"])]
    assert r.router["routed_model"] == "glm-4-flash" and r.router["propensity"] == 1.0
    (rec,) = rows(store)
    assert rec.escalated and rec.model == "gpt-4o" and rec.routed_model == "glm-4-flash"
    assert [e["model"] for e in rec.chain] == ["glm-4-flash", "gpt-4o"]
    assert rec.cost_usd == pytest.approx(r.router["cost_usd"]) and rec.answer.startswith("echo[gpt-4o]")
    # the escalation is implicit evidence that glm-4-flash's answer was weak
    (fb,) = store.feedback(rec.request_id)
    assert (fb["origin"], fb["score"], fb["model"]) == ("implicit", 0.0, "glm-4-flash")


def test_cascade_respects_max_steps_and_the_cost_cap(make, up, store, router_):
    c = make()
    r = c.chat.completions.create(model="auto:budget", messages=CODE, **_cascade(target=0.75, max_steps=1))
    assert r.router["model"] == "glm-4-flash" and not r.router["escalated"]
    assert r.router["cascade"][-1]["action"] == "stop" and "max_steps 1" in r.router["cascade"][-1]["reason"]
    assert len(up.requests) == 1
    # with a cap of $0.002 gpt-4o ($0.006) is out; the strongest affordable one is deepseek-v4-pro
    up.reset()
    r = c.chat.completions.create(model="auto:budget", messages=CODE, max_cost=0.002, **_cascade(target=0.75))
    assert [e["model"] for e in r.router["chain"]] == ["glm-4-flash", "deepseek-v4-pro"]
    assert r.router["cost_usd"] <= 0.002
    assert [req["body"]["model"] for req in up.requests] == ["glm-4-flash", "deepseek-v4-pro"]


def test_cascade_accepts_a_good_first_answer_and_checks_still_count(make, up, store):
    c = make()
    r = c.chat.completions.create(model="auto:budget", messages=CODE, **_cascade(target=0.5))
    assert r.router["model"] == "glm-4-flash" and len(up.requests) == 1
    assert r.router["cascade"][-1]["action"] == "accept"
    # a TODO in the answer is what the original check catches: score 0 without a trained scorer
    up.set_reply("glm-4-flash", "def f():\n    # TODO")
    r = c.chat.completions.create(model="auto:budget", messages=CODE, **_cascade(target=0.5))
    assert r.router["chain"][0]["score"] == 0.0 and r.router["model"] == "gpt-4o"


def test_cascade_agree_asks_two_cheap_models_in_one_step(make, up):
    c = make()
    r = c.chat.completions.create(model="auto:budget", messages=CODE, **_cascade(target=0.75, agree=True))
    assert r.router["cascade"][0]["models"] == ["glm-4-flash", "deepseek-chat"]
    assert [(e["model"], e["status"], e["step"]) for e in r.router["chain"]] == [
        ("glm-4-flash", "not_chosen", 1), ("deepseek-chat", "ok", 1)]
    assert r.router["model"] == "deepseek-chat" and not r.router["escalated"]


class _LengthScorer:
    """A stand-in for a trained answer scorer: long answers are good. Records what it was given."""

    def __init__(self):
        self.calls = []

    def score(self, prompts, answers, models, precall, others):
        self.calls.append((list(models), others))
        return np.array([0.95 if len(a) > 60 else 0.1 for a in answers])


def test_cascade_uses_the_routers_answer_scorer(make, up, router_):
    scorer = _LengthScorer()
    r_ = Router(router_.catalog, answer_scorer=scorer)
    c = make(router=r_, escalate={"target": 0.75})  # the client's default form
    up.set_reply("glm-4-flash", "x" * 100)
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["model"] == "glm-4-flash" and r.router["chain"][0]["score"] == 0.95
    assert scorer.calls == [(["glm-4-flash"], None)]
    up.set_reply("glm-4-flash", "short")
    r = c.chat.completions.create(model="auto:budget", messages=CODE)
    assert [e["model"] for e in r.router["chain"]] == ["glm-4-flash", "gpt-4o"]
    # the request's own form wins over the client default
    r = c.chat.completions.create(model="auto:budget", messages=CODE, extra_body={"router": {"escalate": False}})
    assert r.router["cascade"] is None and len(r.router["chain"]) == 1


def test_a_stream_never_cascades(make, up, store, router_):
    c = make()
    with c.chat.completions.create(model="auto:budget", messages=CODE, stream=True,
                                   **_cascade(target=0.75)) as s:
        text = "".join(ch.choices[0].delta.content or "" for ch in s if ch.choices)
    want = router_.route(CODE, tier="budget").model
    assert s.router["model"] == want and s.router["cascade"] is None and len(up.requests) == 1
    (rec,) = rows(store)
    assert rec.answer == text and rec.stream and len(rec.chain) == 1


def test_a_failing_cascade_model_is_skipped(make, up):
    up.add_fault("status", model="glm-4-flash", status=500, times=3)
    r = make().chat.completions.create(model="auto:budget", messages=CODE, **_cascade(target=0.75))
    assert [(e["model"], e["status"]) for e in r.router["chain"]][-1] == ("gpt-4o", "ok")
    assert r.router["model"] == "gpt-4o"


def test_library_feedback_takes_the_gateways_fields(make, store):
    c = make()
    rid = c.chat.completions.create(model="auto", messages=HELLO).router["request_id"]
    assert c.feedback(rid, thumbs="up") and c.feedback(rid, rating=8, comment="ok")
    with pytest.raises(InvalidRequestError, match="provenance"):  # a judge grade says which judge and rubric
        c.feedback(rid, score=0.2, origin="judge", model="gpt-4o")
    c.feedback(rid, score=0.2, origin="judge", model="gpt-4o",
               meta={"judge_model": "gpt-4o", "rubric_version": "v1", "rubric_sha256": "0" * 64})
    got = [(f["score"], f["origin"]) for f in store.feedback(rid)]
    assert got == [(1.0, "human"), (pytest.approx(7 / 9), "human"), (0.2, "judge")]
    with pytest.raises(InvalidRequestError, match="rating"):
        c.feedback(rid, rating=11)
    with pytest.raises(InvalidRequestError, match="unknown request_id"):
        c.feedback("req_nope", score=1.0)


def test_exploration_never_draws_a_model_without_vision_for_an_image(make, up, store, catalog_dict):
    from router import ModelCatalog

    for name in ("gpt-4o", "gpt-4o-mini"):
        catalog_dict["models"][name]["capabilities"].append("vision")
        catalog_dict["models"][name]["quality_priors"]["vision"] = 0.8
    router_ = Router.default(ModelCatalog.from_dict(catalog_dict))
    msgs = [{"role": "user", "content": [{"type": "text", "text": "what is in this picture?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]
    c = make(router=router_, exploration=1.0, rng=np.random.default_rng(5))
    served = {c.chat.completions.create(model="auto", messages=msgs).router["model"] for _ in range(20)}
    vision = {m for m in router_.models if router_.catalog[m].vision}
    assert len(vision) == 3 and served == vision  # every eligible model, and only those
    assert all(set(x["model"] for x in r.candidates) <= vision for r in rows(store))


def test_a_checks_escalation_is_stored_as_implicit_feedback(make, up, store):
    up.set_reply("deepseek-chat", "def merge_sort(a):\n    # TODO")
    r = make().chat.completions.create(model="auto:budget", messages=CODE)
    assert r.router["escalated"] and r.router["cascade"] is None
    (rec,) = rows(store)
    assert rec.routed_model == "deepseek-chat" and rec.model != rec.routed_model
    assert [(f["origin"], f["model"], f["score"]) for f in store.feedback(rec.request_id)] == [
        ("implicit", "deepseek-chat", 0.0)]
