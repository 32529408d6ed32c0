"""Hand-computed cases for metrics.py (run: pytest -q test_metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from llm_router_learned import metrics as M

# 4 prompts. strong correct on 0,1,2 ; weak correct on 2,3.
# r_strong = 0.75, r_weak = 0.5, gap = 0.25.
QS = np.array([1.0, 1.0, 1.0, 0.0])
QW = np.array([0.0, 0.0, 1.0, 1.0])


def test_pgr_curve_perfect_order() -> None:
    # scores rank prompt 0 > 1 > 2 > 3; gains are +1, +1, 0, -1
    c, p = M.pgr_curve(np.array([4.0, 3.0, 2.0, 1.0]), QS, QW)
    assert np.allclose(c, [0, 0.25, 0.5, 0.75, 1.0])
    # r = 0.5, 0.75, 1.0, 1.0, 0.75 -> PGR = 0, 1, 2, 2, 1
    assert np.allclose(p, [0, 1, 2, 2, 1])
    # trapezoid: 0.25*(0+1)/2 + 0.25*(1+2)/2 + 0.25*2 + 0.25*(2+1)/2 = 0.125+0.375+0.5+0.375
    assert M.apgr(np.array([4.0, 3.0, 2.0, 1.0]), QS, QW) == pytest.approx(1.375)
    # PGR 0.5 reached halfway along the first segment: c = 0.125 ; 0.8 -> 0.2
    assert M.cpt(np.array([4.0, 3.0, 2.0, 1.0]), QS, QW, 0.5) == pytest.approx(0.125)
    assert M.cpt(np.array([4.0, 3.0, 2.0, 1.0]), QS, QW, 0.8) == pytest.approx(0.2)


def test_pgr_worst_order_and_ties() -> None:
    # reversed order: gains -1, 0, +1, +1 -> r = .5, .25, .25, .5, .75 -> PGR 0,-1,-1,0,1
    s = np.array([1.0, 2.0, 3.0, 4.0])
    assert M.apgr(s, QS, QW) == pytest.approx(0.25 * (-0.5 - 1 - 0.5 + 0.5))
    # all tied: a straight line from (0,0) to (1,1) = random routing = 0.5
    assert M.apgr(np.zeros(4), QS, QW) == pytest.approx(0.5)
    c, p = M.pgr_curve(np.zeros(4), QS, QW)
    assert np.allclose(c, [0, 1])
    assert np.allclose(p, [0, 1])
    assert M.cpt(np.zeros(4), QS, QW, 0.5) == pytest.approx(0.5)
    # partial tie: prompts 0 and 3 tied on top (gain +1 -1 = 0), then 1 (+1), then 2 (0)
    c, p = M.pgr_curve(np.array([5.0, 3.0, 1.0, 5.0]), QS, QW)
    assert np.allclose(c, [0, 0.5, 0.75, 1.0])
    assert np.allclose(p, [0, 0, 1, 1])


def test_pgr_undefined_gap() -> None:
    with pytest.raises(ValueError, match="PGR undefined"):
        M.apgr(np.array([1.0, 2.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0]))


def test_upper_hull_and_aiq() -> None:
    # points: (1, .5) (2, .6) (3, .9) (4, .8) ; (2, .6) is under the chord (1,.5)-(3,.9) [0.7]
    pts = [(1.0, 0.5), (2.0, 0.6), (3.0, 0.9), (4.0, 0.8)]
    h = M.upper_hull(pts)
    assert np.allclose(h, [[1, 0.5], [3, 0.9]])
    # on [1, 4]: area = (0.5+0.9)/2*2 + 0.9*1 = 1.4 + 0.9 = 2.3 ; / 3
    assert M.aiq(pts, 1.0, 4.0) == pytest.approx(2.3 / 3)
    # cost to reach 0.7 is halfway from 1 to 3 -> 2.0 ; 0.95 is never reached
    assert M.cost_to_reach(pts, 0.7) == pytest.approx(2.0)
    assert math.isnan(M.cost_to_reach(pts, 0.95))
    # below the cheapest point the hull is worth 0: points start at 2 on a [1, 3] axis
    assert M.aiq([(2.0, 0.5), (3.0, 0.5)], 1.0, 3.0) == pytest.approx(0.25)


def test_hull_collinear_and_duplicates() -> None:
    pts = [(1.0, 0.2), (2.0, 0.4), (3.0, 0.6), (3.0, 0.5), (1.0, 0.1)]
    h = M.upper_hull(pts)
    assert np.allclose(h, [[1, 0.2], [3, 0.6]])
    assert M.aiq(pts, 1.0, 3.0) == pytest.approx(0.4)


def test_lambda_sweep_and_oracle() -> None:
    # 2 prompts, 2 models: cheap (cost 1) right on prompt 0 only, dear (cost 3) right on both.
    q = np.array([[1.0, 1.0], [0.0, 1.0]])
    cst = np.array([[1.0, 3.0], [1.0, 3.0]])
    pts = M.lambda_sweep(q, cst, q, cst)
    # with perfect predictions the frontier is {(1, .5), (2, 1), (3, 1)}
    h = M.upper_hull(pts)
    assert np.allclose(h, [[1, 0.5], [2, 1.0]])
    assert M.aiq(pts, 1.0, 3.0) == pytest.approx((0.75 * 1 + 1.0 * 1) / 2)
    assert np.array_equal(M.oracle_choice(q, cst), [0, 1])
    rep = M.oracle_report(q, cst)
    assert rep["AIQ"] == pytest.approx(0.875)
    # 95 % of best single (dear: q=1, cost 3) = 0.95 -> cost 1 + 0.45/0.5 = 1.9 -> 1.9/3
    assert rep["cost95_share_of_best"] == pytest.approx(1.9 / 3)
    # single models: (1, .5), (3, 1) -> area = (0.5 + 1)/2 * 2 / 2 = 0.75
    assert M.single_models_aiq(q, cst) == pytest.approx(0.75)
    assert M.random_point(q, cst) == pytest.approx((2.0, 0.75))


def test_curve_from_measured_points() -> None:
    # r_strong 0.75, r_weak 0.5: points (c=0.25, r=0.75) and (c=0.5, r=1.0) -> PGR 1 and 2, plus (0,0), (1,1)
    c, p = M.curve_from_points([0.25, 0.5], [0.75, 1.0], 0.75, 0.5)
    assert np.allclose(c, [0, 0.25, 0.5, 1])
    assert np.allclose(p, [0, 1, 2, 1])
    rep = M.pair_report_from_points([0.25, 0.5], [0.75, 1.0], 0.75, 0.5)
    # area: 0.25*0.5 + 0.25*1.5 + 0.5*1.5 = 0.125 + 0.375 + 0.75
    assert rep["APGR"] == pytest.approx(1.25)
    assert rep["CPT50"] == pytest.approx(0.125)
    assert rep["CPT80"] == pytest.approx(0.2)
    # the same points as the exact threshold sweep of test_pgr_curve_perfect_order give the same APGR there
    exact = M.apgr(np.array([4.0, 3.0, 2.0, 1.0]), QS, QW)
    pts = M.pair_report_from_points([0.25, 0.5, 0.75], [0.75, 1.0, 1.0], 0.75, 0.5)
    assert pts["APGR"] == pytest.approx(exact)


def test_multi_report_from_points() -> None:
    q = np.array([[1.0, 1.0], [0.0, 1.0]])
    cst = np.array([[1.0, 3.0], [1.0, 3.0]])
    rep = M.multi_report_from_points([(1.0, 0.5), (2.0, 1.0), (3.0, 1.0)], q, cst)
    assert rep["AIQ"] == pytest.approx(0.875)
    assert rep["cost95_share_of_best"] == pytest.approx(1.9 / 3)
    assert rep["max_quality"] == pytest.approx(1.0)
