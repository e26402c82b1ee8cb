import pytest

from router import InvalidRequestError
from router.cascade import Attempt, CascadeConfig, cascade_step

MODELS = ["tiny", "small", "mid", "big"]
Q = [0.5, 0.7, 0.8, 0.95]
C = [0.001, 0.002, 0.01, 0.05]


def test_first_step_takes_the_cheapest_model_meeting_the_lower_target():
    act = cascade_step(MODELS, Q, C, [], CascadeConfig(target=0.65, accept=0.8))
    assert (act.kind, act.models, act.step) == ("call", ("small",), 1)
    two = cascade_step(MODELS, Q, C, [], CascadeConfig(target=0.65, accept=0.8, agree=True))
    assert two.models == ("small", "mid")


def test_accepts_a_good_score_and_escalates_a_bad_one_to_a_stronger_untried_model():
    cfg = CascadeConfig(target=0.65, accept=0.8, max_steps=3)
    assert cascade_step(MODELS, Q, C, [Attempt("small", 0.002, 1, 0.9)], cfg).kind == "accept"
    act = cascade_step(MODELS, Q, C, [Attempt("small", 0.002, 1, 0.3)], cfg)
    assert (act.kind, act.models, act.step) == ("call", ("big",), 2)  # escalate_target None: the best predicted
    mid = cascade_step(MODELS, Q, C, [Attempt("small", 0.002, 1, 0.3)],
                       CascadeConfig(target=0.65, accept=0.8, max_steps=3, escalate_target=0.75))
    assert mid.models == ("mid",)


def test_step_limit_stops_with_the_best_scored_answer():
    cfg = CascadeConfig(target=0.0, accept=0.9, max_steps=2)
    hist = [Attempt("tiny", 0.001, 1, 0.6), Attempt("mid", 0.01, 2, 0.4)]
    act = cascade_step(MODELS, Q, C, hist, cfg)
    assert (act.kind, act.models) == ("stop", ("tiny",)) and "max_steps" in act.reason


def test_cost_cap_counts_every_paid_call():
    cfg = CascadeConfig(target=0.65, accept=0.9, max_steps=5)
    # 0.002 spent; big (0.05) does not fit 0.03 but mid (0.01) does: the strongest affordable
    act = cascade_step(MODELS, Q, C, [Attempt("small", 0.002, 1, 0.1)], cfg, max_cost=0.03)
    assert act.models == ("mid",)
    hist = [Attempt("small", 0.002, 1, 0.1), Attempt("mid", 0.01, 2, 0.2)]
    act = cascade_step(MODELS, Q, C, hist, cfg, max_cost=0.03)
    assert act.kind == "stop" and act.models == ("mid",) and "max_cost" in act.reason
    assert cascade_step(MODELS, Q, C, [], cfg, max_cost=0.0005).models == ()
    # agreement asks for two only when both fit
    one = cascade_step(MODELS, Q, C, [], CascadeConfig(target=0.65, agree=True), max_cost=0.005)
    assert one.models == ("small",)


def test_bad_inputs_are_named():
    with pytest.raises(InvalidRequestError, match="accept"):
        CascadeConfig(accept=1.5)
    with pytest.raises(InvalidRequestError, match="max_steps"):
        CascadeConfig(max_steps=0)
    with pytest.raises(InvalidRequestError, match="score every answer"):
        cascade_step(MODELS, Q, C, [Attempt("small", 0.002, 1)], CascadeConfig())
    with pytest.raises(InvalidRequestError, match="one quality and cost per model"):
        cascade_step(MODELS, Q[:2], C, [], CascadeConfig())


def test_from_target_sets_the_accept_threshold_from_a_quality_target():
    cfg = CascadeConfig.from_target(0.88, lower_by=0.2)
    assert cfg.accept == 0.88 and cfg.target == pytest.approx(0.68)


def test_gap_mode_first_step_is_the_cheapest_within_gap_of_the_best():
    assert cascade_step(MODELS, Q, C, [], CascadeConfig(gap=0.2)).models == ("mid",)  # 0.95 - 0.2 = 0.75
    assert cascade_step(MODELS, Q, C, [], CascadeConfig(gap=0.0)).models == ("big",)
    # the best *affordable* one sets the goal
    assert cascade_step(MODELS, Q, C, [], CascadeConfig(gap=0.05), max_cost=0.02).models == ("mid",)
    with pytest.raises(InvalidRequestError, match="gap"):
        CascadeConfig(gap=-0.1)
