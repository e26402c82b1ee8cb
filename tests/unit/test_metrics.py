import numpy as np
import pytest

from router.training.evaluate.metrics import aiq, apgr, cost_to_match, cpt, expected_calibration_error, pgr_curve, upper_hull


def test_upper_hull_drops_dominated_and_concave_points():
    pts = [(0, 0.5), (1, 0.6), (2, 0.9), (3, 0.8), (1.5, 0.55)]
    # (1, 0.6) lies under the segment (0,0.5)-(2,0.9) (0.7 at x=1); (3, 0.8) falls: cut
    assert upper_hull(pts) == [(0.0, 0.5), (2.0, 0.9)]


def test_aiq_hand_computed():
    # hull (0,0.5)-(2,0.9): over [0, 2] the area is the trapezoid (0.5+0.9)/2 * 2 = 1.4 -> 0.7
    assert aiq([(0, 0.5), (2, 0.9)], 0, 2) == pytest.approx(0.7, abs=1e-6)
    # over [0, 4] the curve stays at 0.9 after x=2: (1.4 + 1.8) / 4 = 0.8
    assert aiq([(0, 0.5), (2, 0.9)], 0, 4) == pytest.approx(0.8, abs=1e-6)
    # a single point is flat
    assert aiq([(1, 0.6)], 0, 2) == pytest.approx(0.6)
    # adding a dominated point changes nothing; a better one raises AIQ
    assert aiq([(0, 0.5), (2, 0.9), (1, 0.6)], 0, 2) == pytest.approx(0.7, abs=1e-6)
    assert aiq([(0, 0.5), (2, 0.9), (1, 0.85)], 0, 2) > 0.75
    with pytest.raises(ValueError):
        aiq([(0, 1)], 1, 1)


def test_cost_to_match():
    pts = [(0, 0.5), (2, 0.9)]
    assert cost_to_match(pts, 0.7) == pytest.approx(1.0)
    assert cost_to_match(pts, 0.4) == 0.0
    assert cost_to_match(pts, 0.95) is None


def test_apgr_hand_computed():
    # 4 prompts: the strong model wins on prompts 0 and 1 only.
    y_s = np.array([1, 1, 1, 0])
    y_w = np.array([0, 0, 1, 0])
    perfect = np.array([4, 3, 2, 1])  # routes the two wins first
    ks, pgr = pgr_curve(perfect, y_s, y_w, steps=4)
    assert ks.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert pgr.tolist() == [0, 0.5, 1, 1, 1]
    # trapezoid: (0+0.5)/2*.25 + (0.5+1)/2*.25 + 1*.25 + 1*.25 = 0.0625+0.1875+0.5 = 0.75
    assert apgr(perfect, y_s, y_w, steps=4) == pytest.approx(0.75)
    worst = -perfect
    assert apgr(worst, y_s, y_w, steps=4) == pytest.approx(0.25)
    assert cpt(perfect, y_s, y_w, 0.5, steps=4) == 0.25
    assert cpt(perfect, y_s, y_w, 1.0, steps=4) == 0.5
    assert cpt(worst, y_s, y_w, 0.8, steps=4) == 1.0


def test_random_router_apgr_is_about_half():
    rng = np.random.default_rng(0)
    y_s = rng.integers(0, 2, 4000)
    y_w = rng.integers(0, 2, 4000) * (rng.random(4000) < 0.7)
    assert apgr(rng.random(4000), y_s, y_w) == pytest.approx(0.5, abs=0.05)


def test_ece_hand_computed():
    # bin [0.2,0.3): p=0.2 twice, outcomes 0,1 -> |0.2-0.5| = 0.3 over 2 samples;
    # bin [0.9,1]: p=0.9 twice, outcomes 1,1 -> 0.1 over 2 samples -> ECE = (0.6+0.2)/4 = 0.2
    assert expected_calibration_error([0.2, 0.2, 0.9, 0.9], [0, 1, 1, 1]) == pytest.approx(0.2)
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0
