import pytest

from router import ConfigError, InvalidRequestError, NoEligibleModelError, PolicyConfig
from router.policy import Candidate, Constraints, decide
from router.types import TaskPrediction

TASK = TaskPrediction(task="code", confidence=0.9, source="regex")
CFG = PolicyConfig()


def cands(*rows, ctx=1000, vision=()):
    return [Candidate(m, q, c, ctx, 100, m in vision) for m, q, c in rows]


THREE = cands(("cheap", 0.6, 0.001), ("mid", 0.82, 0.01), ("dear", 0.95, 0.1))


def test_cheapest_meeting_target_by_tier():
    assert decide(TASK, THREE, Constraints(tier="budget"), CFG).model == "mid"  # 0.70
    assert decide(TASK, THREE, Constraints(tier="balanced"), CFG).model == "mid"  # 0.80
    d = decide(TASK, THREE, Constraints(tier="quality"), CFG)
    assert d.model == "dear" and d.rule == "cheapest_meeting_target" and d.target_quality == 0.88
    assert d.candidates == ("cheap", "mid", "dear")
    assert d.estimated_cost == 0.1 and d.quality == 0.95


def test_default_tier_and_configurable_targets():
    d = decide(TASK, THREE, Constraints(), CFG)
    assert d.tier == "balanced" and d.model == "mid"
    cfg = PolicyConfig(tiers={"budget": 0.5, "balanced": 0.9, "quality": 0.99}, default_tier="budget")
    assert decide(TASK, THREE, Constraints(), cfg).model == "cheap"
    assert decide(TASK, THREE, Constraints(tier="balanced"), cfg).model == "dear"


def test_min_quality_overrides_tier():
    d = decide(TASK, THREE, Constraints(tier="quality", min_quality=0.5), CFG)
    assert d.model == "cheap" and d.target_quality == 0.5


def test_cost_cap_removes_models_and_falls_back_to_best_within_cap():
    d = decide(TASK, THREE, Constraints(tier="quality", max_cost=0.05), CFG)
    assert d.model == "mid" and d.rule == "best_within_cap"
    assert "no model reached the target" in d.reason and "cost cap" in d.reason
    assert "exceeds the cap" in d.excluded["dear"]


def test_nothing_fits_the_cap_raises_with_reasons():
    with pytest.raises(NoEligibleModelError) as err:
        decide(TASK, THREE, Constraints(max_cost=0.0001), CFG)
    assert set(err.value.reasons) == {"cheap", "mid", "dear"}


def test_vision_filter():
    cs = cands(("text", 0.99, 0.001), ("eyes", 0.7, 0.01), vision={"eyes"})
    d = decide(TASK, cs, Constraints(require_vision=True, tier="quality"), CFG)
    assert d.model == "eyes" and d.rule == "best_within_cap"
    assert "no vision" in d.excluded["text"]
    with pytest.raises(NoEligibleModelError, match="no vision"):
        decide(TASK, cands(("text", 0.99, 0.001)), Constraints(require_vision=True), CFG)


def test_context_window_filter_counts_prompt_and_output():
    cs = [Candidate("small", 0.9, 0.001, 1000, 500), Candidate("big", 0.9, 0.01, 100000, 500)]
    assert decide(TASK, cs, Constraints(prompt_tokens=900), CFG).model == "small"
    d = decide(TASK, cs, Constraints(prompt_tokens=900, max_tokens=200), CFG)
    assert d.model == "big" and "context window" in d.excluded["small"]
    with pytest.raises(NoEligibleModelError, match="context window"):
        decide(TASK, cs, Constraints(prompt_tokens=200_000), CFG)


def test_exclusion():
    d = decide(TASK, THREE, Constraints(exclude=frozenset({"mid"})), CFG)
    assert d.model == "dear" and d.excluded == {"mid": "excluded by the caller"}


def test_gap_mode_picks_cheapest_within_delta_of_best():
    d = decide(TASK, THREE, Constraints(max_quality_gap=0.2), CFG)
    assert d.model == "mid" and d.rule == "cheapest_within_gap"
    assert decide(TASK, THREE, Constraints(max_quality_gap=0.0), CFG).model == "dear"
    assert decide(TASK, THREE, Constraints(max_quality_gap=1.0), CFG).model == "cheap"


def test_ties_prefer_higher_quality():
    cs = cands(("a", 0.85, 0.01), ("b", 0.9, 0.01))
    assert decide(TASK, cs, Constraints(), CFG).model == "b"


def test_decision_records_everything_and_is_frozen():
    d = decide(TASK, THREE, Constraints(), CFG)
    assert d.predicted_quality == {"cheap": 0.6, "mid": 0.82, "dear": 0.95}
    assert d.estimated_costs["dear"] == 0.1
    assert (d.task, d.task_confidence, d.task_source) == ("code", 0.9, "regex")
    with pytest.raises(AttributeError):
        d.model = "x"
    assert d.to_dict()["model"] == "mid"


@pytest.mark.parametrize(
    "kwargs",
    [dict(min_quality=1.5), dict(min_quality=-0.1), dict(max_cost=-1), dict(max_cost=float("inf")),
     dict(max_tokens=0), dict(max_quality_gap=2)],
)
def test_invalid_constraints(kwargs):
    with pytest.raises(InvalidRequestError):
        Constraints(**kwargs)


def test_unknown_tier_and_bad_config():
    with pytest.raises(InvalidRequestError, match="unknown tier 'gold'"):
        decide(TASK, THREE, Constraints(tier="gold"), CFG)
    with pytest.raises(ConfigError, match="tier 'a' target"):
        PolicyConfig(tiers={"a": 1.2}, default_tier="a")
    with pytest.raises(ConfigError, match="default tier 'b'"):
        PolicyConfig(tiers={"a": 0.5}, default_tier="b")
    assert not issubclass(ConfigError, InvalidRequestError)  # a misconfiguration is not a bad request


def test_unknown_tier_is_refused_even_with_min_quality():
    with pytest.raises(InvalidRequestError, match="unknown tier 'gold'"):
        decide(TASK, THREE, Constraints(tier="gold", min_quality=0.5), CFG)


def test_router_checks_constraints_with_the_policy_rules():
    from router import Router

    r = Router.default()
    r.check_constraints(tier="budget", min_quality=0.5, max_tokens=10)
    with pytest.raises(InvalidRequestError, match="unknown tier 'gold'"):
        r.check_constraints(tier="gold")
    with pytest.raises(InvalidRequestError, match="max_tokens must be a positive integer"):
        r.check_constraints(max_tokens=0)
    with pytest.raises(InvalidRequestError, match="unknown tier 'gold'"):
        r.route("hi", tier="gold", min_quality=0.3)


def test_tiny_cost_cap_is_shown_not_rounded_to_zero():
    from router import ModelCatalog, NoEligibleModelError, Router

    r = Router.default(ModelCatalog.load())
    with pytest.raises(NoEligibleModelError) as ei:
        r.route("Write a Python function to merge sort an array", max_cost=2e-9)
    assert "$2e-09" in str(ei.value) and "$0.000000" not in str(ei.value)


def test_max_tokens_above_the_models_output_limit_is_said_in_the_reason():
    from router import ModelCatalog, Router

    r = Router.default(ModelCatalog.load())
    d = r.route("Write a Python function to merge sort an array", max_tokens=100_000)
    limit = r.catalog[d.model].max_output_tokens
    assert limit < 100_000 and f"max_tokens 100000 is capped at the model's {limit} output tokens" in d.reason
    small = r.route("Write a Python function to merge sort an array", max_tokens=100)
    assert "capped" not in small.reason
