"""policy.choose (the evaluation's vectorised form) against policy.decide, row by row."""

import numpy as np
import pytest

from router import NoEligibleModelError, PolicyConfig
from router.policy import NO_MODEL, Candidate, Constraints, choose, decide, eligibility
from router.types import TaskPrediction

TASK = TaskPrediction(task="general", confidence=1.0, source="test")


def _random_case(rng, n, m):
    models = [f"m{j}" for j in rng.permutation(m)]  # names not in column order
    # coarse grids so ties in quality and in cost are common
    quality = rng.integers(0, 11, (n, m)) / 10
    cost = rng.integers(0, 6, (n, m)) / 1000
    window = rng.choice([500, 2000, 8000], m)
    max_out = rng.choice([100, 1000, 4000], m)
    vision = rng.random(m) < 0.5
    excluded = rng.random(m) < 0.15
    prompt_tokens = rng.integers(0, 3000, n)
    require_vision = rng.random(n) < 0.2
    tools = rng.random(m) < 0.6
    require_tools = rng.random(n) < 0.3
    return models, quality, cost, window, max_out, vision, excluded, prompt_tokens, require_vision, tools, require_tools


def _decide_index(models, q, c, window, max_out, vision, excluded, tokens, need_vision, max_tokens, cons, cfg,
                  tools, need_tools):
    cands = [Candidate(model=models[j], quality=float(q[j]), cost=float(c[j]), context_window=int(window[j]),
                       max_output_tokens=int(max_out[j]), vision=bool(vision[j]), tools=bool(tools[j]))
             for j in range(len(models))]
    c = Constraints(**cons, require_vision=bool(need_vision), require_tools=bool(need_tools),
                    prompt_tokens=int(tokens), max_tokens=max_tokens,
                    exclude=frozenset(models[j] for j in range(len(models)) if excluded[j]))
    try:
        return models.index(decide(TASK, cands, c, cfg).model)
    except NoEligibleModelError:
        return NO_MODEL


@pytest.mark.parametrize("seed", range(12))
def test_choose_equals_decide_on_random_inputs(seed):
    rng = np.random.default_rng(seed)
    n, m = 150, int(rng.integers(3, 9))
    models, q, c, window, max_out, vision, excluded, tokens, need_vision, tools, need_tools = _random_case(rng, n, m)
    max_tokens = [None, 50, 2000][seed % 3]
    cap = [None, 0.002, 0.004][(seed // 3) % 3]
    cfg = PolicyConfig()
    ok = eligibility(tokens, window, max_out, max_tokens=max_tokens, require_vision=need_vision,
                     vision=vision, excluded=excluded, require_tools=need_tools, tools=tools)
    modes = [{"min_quality": round(float(rng.random()), 2)}, {"tier": "quality"}, {"tier": None},
             {"max_quality_gap": round(float(rng.random()) * 0.5, 2)}]
    seen = set()
    for cons in modes:
        cons = {**cons, "max_cost": cap}
        if "max_quality_gap" in cons:
            got = choose(q, c, models, gap=cons["max_quality_gap"], eligible=ok, max_cost=cap)
        else:
            target = cons["min_quality"] if "min_quality" in cons else cfg.tiers[cons["tier"] or cfg.default_tier]
            got = choose(q, c, models, target=target, eligible=ok, max_cost=cap)
        want = [_decide_index(models, q[i], c[i], window, max_out, vision, excluded, tokens[i], need_vision[i],
                              max_tokens, cons, cfg, tools, need_tools[i]) for i in range(n)]
        assert got.tolist() == want, cons
        seen.update(got.tolist())
    assert len(seen) > 1  # the cases really exercise a choice


def test_choose_per_row_targets_and_caps():
    q = np.array([[0.9, 0.5, 0.5], [0.9, 0.5, 0.5]])
    c = np.array([[3.0, 1.0, 1.0], [3.0, 1.0, 1.0]])
    # ties in cost and quality go to the name, not the column
    assert choose(q, c, ["c", "b", "a"], target=np.array([0.4, 0.8])).tolist() == [2, 0]
    assert choose(q, c, ["c", "b", "a"], target=0.95, max_cost=np.array([2.0, 5.0])).tolist() == [2, 0]
    assert choose(q, c, ["c", "b", "a"], gap=0.0, max_cost=np.array([0.5, 5.0])).tolist() == [NO_MODEL, 0]
    with pytest.raises(ValueError, match="exactly one"):
        choose(q, c, ["c", "b", "a"])
