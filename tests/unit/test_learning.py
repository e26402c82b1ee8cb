"""The pure parts of the learning loop: the exploration draw, the off-policy estimators on
hand-computed cases, and the promotion gate."""

from collections import Counter

import numpy as np
import pytest

from router import ModelCatalog, Router
from router.learning import Estimate, PolicyValue, dr, effective_sample_size, explore, gate_decision, ips, snips
from router.learning.exploration import propensity
from router.learning.ope import Logged
from tests.support.loop_data import CATALOG


@pytest.fixture(scope="module")
def router_():
    return Router.default(ModelCatalog.from_dict(CATALOG))


def test_exploration_draws_only_eligible_models_with_the_logged_propensities(router_):
    # the cap leaves cheap and mid (dear would cost more): k = 2
    d = router_.route("Compute 12 plus 30.", max_cost=0.005, tier="quality")
    assert set(d.candidates) == {"cheap", "mid"} and "dear" in d.excluded
    rng = np.random.default_rng(0)
    draws = [explore(d, 0.3, rng) for _ in range(4000)]
    assert {e.model for e in draws} <= set(d.candidates)
    other = next(m for m in d.candidates if m != d.model)
    for e in draws:  # 1 - eps + eps/k for the policy's choice, eps/k otherwise
        assert e.propensity == pytest.approx(0.85 if e.model == d.model else 0.15)
    share = Counter(e.model for e in draws)[other] / len(draws)
    assert share == pytest.approx(0.15, abs=0.02)
    assert sum(e.explored for e in draws) / len(draws) == pytest.approx(0.3, abs=0.03)
    assert propensity(d, "dear", 0.3) == 0.0


def test_exploration_is_seeded_and_off_at_zero(router_):
    d = router_.route("Explain the rise of Napoleon.")
    a = [explore(d, 0.5, np.random.default_rng(7)).model for _ in range(3)]
    b = [explore(d, 0.5, np.random.default_rng(7)).model for _ in range(3)]
    assert a == b
    e = explore(d, 0.0, np.random.default_rng(0))
    assert (e.model, e.propensity, e.explored) == (d.model, 1.0, False)
    with pytest.raises(ValueError, match="epsilon"):
        explore(d, 1.5, np.random.default_rng(0))


# three contexts, two actions; target policy picks action 0 everywhere
LOG = Logged(context=np.array([0, 1, 2]), action=np.array([0, 1, 0]), reward=np.array([1.0, 0.0, 0.5]),
             propensity=np.array([0.5, 0.25, 0.5]), n=3)
TARGET = np.array([0, 0, 0])
Q_HAT = np.array([[0.5, 0.2], [0.4, 0.6], [0.8, 0.1]])


def test_ips_by_hand():
    e = ips(LOG, TARGET)
    # per-context terms [1/0.5 * 1, 0, 1/0.5 * 0.5] = [2, 0, 1]; mean 1; sd 1; se 1/sqrt(3)
    assert e.value == pytest.approx(1.0)
    assert (e.low, e.high) == pytest.approx((1 - 1.96 / np.sqrt(3), 1 + 1.96 / np.sqrt(3)))
    assert e.ess == pytest.approx(16 / 8) and e.n == 3  # weights [2, 0, 2]


def test_snips_by_hand():
    e = snips(LOG, TARGET)
    # (2 + 0 + 1) / (2 + 0 + 2) = 0.75; delta-method terms [0.5, 0, -0.5] / (4/3)
    assert e.value == pytest.approx(0.75)
    se = 0.375 / np.sqrt(3)
    assert (e.low, e.high) == pytest.approx((0.75 - 1.96 * se, 0.75 + 1.96 * se))


def test_dr_by_hand():
    e = dr(LOG, TARGET, Q_HAT)
    # [0.5 + 2 (1 - 0.5), 0.4 + 0, 0.8 + 2 (0.5 - 0.8)] = [1.5, 0.4, 0.2]
    terms = np.array([1.5, 0.4, 0.2])
    assert e.value == pytest.approx(0.7)
    se = terms.std(ddof=1) / np.sqrt(3)
    assert (e.low, e.high) == pytest.approx((0.7 - 1.96 * se, 0.7 + 1.96 * se))


def test_full_information_makes_every_estimator_the_direct_mean():
    # every action observed with certainty on both contexts
    log = Logged(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([1.0, 0.0, 0.0, 1.0]),
                 np.ones(4), 2)
    for target, want in ((np.array([0, 1]), 1.0), (np.array([1, 0]), 0.0), (np.array([0, 0]), 0.5)):
        assert ips(log, target).value == pytest.approx(want)
        assert snips(log, target).value == pytest.approx(want)
        assert dr(log, target, np.full((2, 2), 0.3)).value == pytest.approx(want)
    assert effective_sample_size(np.array([1.0, 1.0])) == 2.0 and effective_sample_size(np.zeros(3)) == 0.0


def test_bad_logs_are_refused():
    with pytest.raises(ValueError, match="propensities"):
        Logged(np.array([0]), np.array([0]), np.array([1.0]), np.array([0.0]), 1)
    with pytest.raises(ValueError, match="reward has 2"):
        Logged(np.array([0]), np.array([0]), np.array([1.0, 0.0]), np.array([1.0]), 1)


def _pv(q, q_low, cost, ess=100.0):
    e = lambda v, lo: Estimate(v, lo, 2 * v - lo, ess, 100)  # noqa: E731
    return PolicyValue(quality={"dr": e(q, q_low)}, cost={"dr": e(cost, cost)})


def test_gate_promotes_a_better_candidate_at_no_more_cost():
    g = gate_decision(_pv(0.82, 0.78, 0.004), _pv(0.80, 0.76, 0.005), metrics={"aiq": (0.9, 0.85)})
    assert g.promote and g.verdict == "promote"


def test_gate_refuses_a_worse_candidate_a_dearer_one_and_thin_evidence():
    worse = gate_decision(_pv(0.70, 0.66, 0.004), _pv(0.80, 0.76, 0.005))
    assert not worse.promote and any("below the base's" in r for r in worse.reasons)
    dearer = gate_decision(_pv(0.85, 0.80, 0.006), _pv(0.80, 0.76, 0.005))
    assert not dearer.promote and any("exceeds the base's" in r for r in dearer.reasons)
    assert gate_decision(_pv(0.85, 0.80, 0.006), _pv(0.80, 0.76, 0.005), cost_tolerance=0.25).promote
    thin = gate_decision(_pv(0.85, 0.80, 0.004, ess=3), _pv(0.80, 0.76, 0.005, ess=3))
    assert not thin.promote and any("effective sample size" in r for r in thin.reasons)
    aiq = gate_decision(_pv(0.82, 0.78, 0.004), _pv(0.80, 0.76, 0.005), metrics={"aiq": (0.80, 0.85)})
    assert not aiq.promote and any("aiq" in r for r in aiq.reasons)


def test_public_names_are_pinned():
    import router.learning as learning

    assert sorted(learning.__all__) == sorted(["Explored", "explore", "Estimate", "ips", "snips", "dr",
                                               "effective_sample_size", "PolicyValue", "GateResult", "gate_decision"])
    assert all(hasattr(learning, n) for n in learning.__all__)
