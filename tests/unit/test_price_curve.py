"""The policy's price curve: targets met on average at least cost (router.policy), its fit
(router.training.fit.tiers) and decide() == choose() under it."""

import numpy as np
import pytest

from router import ConfigError, PolicyConfig
from router.policy import NO_MODEL, Candidate, Constraints, choose, decide, eligibility, price_for_target
from router.training.fit.tiers import fit_anchor, fit_price_curve
from router.types import TaskPrediction

TASK = TaskPrediction(task="general", confidence=1.0, source="test")
CURVE = ((0.9, 0.0), (0.8, 100.0), (0.6, 1000.0))


def test_price_for_target_interpolates_and_clamps():
    assert price_for_target(CURVE, 0.95) == 0.0 and price_for_target(CURVE, 0.9) == 0.0
    assert price_for_target(CURVE, 0.85) == pytest.approx(50.0)
    assert price_for_target(CURVE, 0.7) == pytest.approx(550.0)
    assert price_for_target(CURVE, 0.1) == 1000.0


def test_policy_config_checks_and_round_trips_the_curve():
    cfg = PolicyConfig(price_curve=CURVE)
    assert PolicyConfig.from_dict(cfg.to_dict()) == cfg
    assert "price_curve" not in PolicyConfig().to_dict() and PolicyConfig().price(0.8) is None
    with pytest.raises(ConfigError):
        PolicyConfig(price_curve=((0.8, 10.0), (0.9, 20.0)))  # quality rises with price
    with pytest.raises(ConfigError):
        PolicyConfig(price_curve=((0.9, 10.0), (0.8, 10.0)))  # price does not rise


def _cands(q, c):
    return [Candidate(model=f"m{j}", quality=q[j], cost=c[j], context_window=10_000, max_output_tokens=1000)
            for j in range(len(q))]


def test_value_rule_buys_quality_only_where_it_is_worth_its_price():
    cfg = PolicyConfig(price_curve=CURVE)
    # target 0.85 -> price 50 per USD: +0.10 quality for +$0.001 is worth 0.05 -> take it; +0.10 for
    # +$0.01 (worth 0.5) is not
    cheap_gain = decide(TASK, _cands([0.7, 0.8], [0.001, 0.002]), Constraints(min_quality=0.85), cfg)
    dear_gain = decide(TASK, _cands([0.7, 0.8], [0.001, 0.011]), Constraints(min_quality=0.85), cfg)
    assert (cheap_gain.model, cheap_gain.rule) == ("m1", "best_value") and dear_gain.model == "m0"
    assert "50 quality per USD" in cheap_gain.reason
    # without a curve the same target is a per-request threshold: none meets 0.85, the best wins
    assert decide(TASK, _cands([0.7, 0.8], [0.001, 0.011]), Constraints(min_quality=0.85), PolicyConfig()).model == "m1"
    # gap mode ignores the curve
    gap = decide(TASK, _cands([0.7, 0.8], [0.001, 0.011]), Constraints(max_quality_gap=0.2), cfg)
    assert gap.rule == "cheapest_within_gap" and gap.model == "m0"


@pytest.mark.parametrize("seed", range(8))
def test_choose_with_price_equals_decide_with_curve(seed):
    rng = np.random.default_rng(seed)
    n, m = 120, int(rng.integers(3, 8))
    models = [f"m{j}" for j in rng.permutation(m)]
    q = rng.integers(0, 11, (n, m)) / 10
    c = rng.integers(0, 6, (n, m)) / 1000
    window, max_out = rng.choice([500, 8000], m), rng.choice([100, 4000], m)
    tokens = rng.integers(0, 3000, n)
    cap = [None, 0.003][seed % 2]
    ok = eligibility(tokens, window, max_out)
    cfg = PolicyConfig(price_curve=((0.9, 0.0), (0.6, 100.0), (0.3, 1000.0)))
    seen = set()
    for target in (0.95, 0.75, 0.5, 0.1):
        got = choose(q, c, models, price=cfg.price(target), eligible=ok, max_cost=cap)
        want = []
        for i in range(n):
            cands = [Candidate(model=models[j], quality=float(q[i, j]), cost=float(c[i, j]),
                               context_window=int(window[j]), max_output_tokens=int(max_out[j])) for j in range(m)]
            try:
                d = decide(TASK, cands, Constraints(min_quality=target, max_cost=cap, prompt_tokens=int(tokens[i])), cfg)
                want.append(models.index(d.model))
            except Exception:
                want.append(NO_MODEL)
        assert got.tolist() == want, target
        seen.update(got.tolist())
    assert len(seen) > 2


def test_fit_price_curve_traces_mean_predicted_quality():
    rng = np.random.default_rng(0)
    q = np.clip(np.array([0.6, 0.75, 0.9]) + rng.normal(0, 0.1, (300, 3)), 0, 1)
    c = np.array([0.0001, 0.001, 0.01]) * rng.uniform(0.5, 2, (300, 1))
    curve = fit_price_curve(q, c, ["a", "b", "c"])
    qs, ps = [p[0] for p in curve], [p[1] for p in curve]
    assert ps[0] == 0.0 and curve[0][0] == pytest.approx(q.max(1).mean(), abs=1e-6)
    assert all(b > a for a, b in zip(ps, ps[1:])) and all(b < a for a, b in zip(qs, qs[1:]))
    assert qs[-1] == pytest.approx(q[:, 0].mean(), abs=1e-6)  # the dearest price: always the cheapest model
    PolicyConfig(price_curve=curve)  # a valid curve
    # a target on the curve is met on average by the price it maps to
    rows = np.arange(len(q))
    for target in (0.8, 0.85):
        pick = choose(q, c, ["a", "b", "c"], price=price_for_target(curve, target))
        assert q[rows, pick].mean() == pytest.approx(target, abs=0.02)


def test_anchor_credit_in_both_forms_and_round_trip():
    cfg = PolicyConfig(price_curve=CURVE, anchor="m1", anchor_margin=0.05)
    assert PolicyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        PolicyConfig(anchor="m1", anchor_margin=-0.1)
    # m0 is predicted 0.03 better than the anchor m1: not evidence enough at margin 0.05
    q, c = [0.83, 0.80], [0.001, 0.002]
    assert decide(TASK, _cands(q, c), Constraints(min_quality=0.95), cfg).model == "m1"
    assert decide(TASK, _cands([0.9, 0.8], c), Constraints(min_quality=0.95), cfg).model == "m0"
    got = choose(np.array([q, [0.9, 0.8]]), np.array([c, c]), ["m0", "m1"], price=0.0, anchor="m1", anchor_margin=0.05)
    assert got.tolist() == [1, 0]


def test_fit_anchor_keeps_the_best_model_when_other_heads_are_noise():
    rng = np.random.default_rng(1)
    n = 2000
    true = np.column_stack([rng.random(n) < 0.7, rng.random(n) < 0.85]).astype(float)  # m1 best, no signal
    pred = np.column_stack([0.7 + rng.normal(0, 0.08, n), 0.85 + rng.normal(0, 0.03, n)])
    cost = np.tile([0.001, 0.01], (n, 1))
    anchor, margin = fit_anchor(pred, true, cost, ["m0", "m1"])
    assert anchor == "m1" and margin >= 0.1  # noise alone never justifies leaving it
    # where the cheap model's head is right (a fifth of the prompts, where the anchor fails), the
    # fitted margin lets the router leave the anchor there
    flag = rng.random(n) < 0.2
    true2 = np.column_stack([np.where(flag, 1.0, rng.random(n) < 0.3), np.where(flag, 0.0, rng.random(n) < 0.95)])
    pred2 = np.column_stack([np.where(flag, 0.99, 0.4), np.full(n, 0.8)])
    anchor2, margin2 = fit_anchor(pred2, true2.astype(float), cost, ["m0", "m1"])
    assert anchor2 == "m1" and margin2 < 0.19
