"""Pareto fronts and the cheapest-within-δ recommendation on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from transfusion.report.pareto import (
    cheapest_within,
    front_borderline,
    pareto_front,
    recommendation_alternatives,
)

NAN = float("nan")

# GMACs and AUC of a hand-made zoo (index: name)
#   0 tiny     1.0  0.900   front (cheapest)
#   1 small    2.0  0.940   front
#   2 smallB   2.0  0.930   same cost as small, lower score: dominated
#   3 wide     4.0  0.935   dominated by small (cheaper and better)
#   4 resnet   4.1  0.960   front
#   5 large    8.0  0.962   front (best)
#   6 broken   NaN  0.990   no cost: excluded
#   7 copy     2.0  0.940   exact copy of small: both on the front
#   8 huge    16.0  0.962   same score as large, dearer: dominated
COSTS = [1.0, 2.0, 2.0, 4.0, 4.1, 8.0, NAN, 2.0, 16.0]
SCORES = [0.900, 0.940, 0.930, 0.935, 0.960, 0.962, 0.990, 0.940, 0.962]


def test_pareto_front_hand_made():
    front = pareto_front(COSTS, SCORES)
    assert front.dtype == bool
    assert np.flatnonzero(front).tolist() == [0, 1, 4, 5, 7]


def test_pareto_front_matches_brute_force_definition():
    rng = np.random.default_rng(0)
    c = rng.integers(1, 6, 60).astype(float)  # many ties in both coordinates
    s = rng.integers(0, 6, 60) / 10
    c[[3, 17]] = NAN
    s[[5]] = NAN
    front = pareto_front(c, s)
    for i in range(60):
        if np.isnan(c[i]) or np.isnan(s[i]):
            assert not front[i]
            continue
        dominated = any(
            c[j] <= c[i] and s[j] >= s[i] and (c[j] < c[i] or s[j] > s[i])
            for j in range(60)
            if not (np.isnan(c[j]) or np.isnan(s[j]))
        )
        assert front[i] == (not dominated)


def test_pareto_front_edge_cases():
    assert pareto_front([], []).shape == (0,)
    assert pareto_front([NAN], [0.9]).tolist() == [False]
    assert pareto_front([3.0], [0.5]).tolist() == [True]
    with pytest.raises(ValueError, match="equal length"):
        pareto_front([1.0, 2.0], [0.5])


def test_cheapest_within_hand_made():
    assert cheapest_within(COSTS, SCORES, 0.0) == 5  # the best itself (the NaN-cost row ignored)
    assert cheapest_within(COSTS, SCORES, 0.002) == 4  # 0.960 >= 0.962 − 0.002
    assert cheapest_within(COSTS, SCORES, 0.025) == 1  # small and copy tie: lower index
    assert cheapest_within(COSTS, SCORES, 0.1) == 0
    for delta in (0.0, 0.002, 0.01, 0.025, 0.1):
        assert pareto_front(COSTS, SCORES)[cheapest_within(COSTS, SCORES, delta)]


def test_cheapest_within_absorbs_float_rounding():
    # 0.93 − 0.07 evaluates to 0.8600000000000001 > 0.86: still "within δ"
    assert cheapest_within([1.0, 5.0], [0.86, 0.93], 0.07) == 0


def test_cheapest_within_cost_tie_goes_to_higher_score():
    assert cheapest_within([2.0, 2.0, 5.0], [0.90, 0.95, 0.96], 0.1) == 1


def test_cheapest_within_errors():
    with pytest.raises(ValueError, match="at least one model"):
        cheapest_within([], [], 0.01)
    with pytest.raises(ValueError, match="all NaN"):
        cheapest_within([NAN, 1.0], [0.9, NAN], 0.01)
    with pytest.raises(ValueError, match="delta"):
        cheapest_within([1.0], [0.9], -0.01)


def test_delta_front_keeps_noise_below_delta_from_moving_points():
    # costs 1 < 2 < 3 (one model each) and two regimes of the cheapest model at equal cost
    costs = [1.0, 1.0, 2.0, 3.0]
    aucs = [0.900, 0.905, 0.908, 0.930]
    assert pareto_front(costs, aucs).tolist() == [False, True, True, True]  # the usual front
    d = pareto_front(costs, aucs, tolerance=0.01)
    # equal cost within δ: both on; 2.0 beats the cheapest by < δ: off; 3.0 beats everything by > δ: on
    assert d.tolist() == [True, True, False, True]
    # the δ-front does not move when the scores move by less than δ / 2 each
    rng = np.random.default_rng(0)
    for _ in range(50):
        jitter = rng.uniform(-0.0024, 0.0024, size=4)
        assert pareto_front(costs, np.add(aucs, jitter), tolerance=0.01).tolist() == d.tolist()
    with pytest.raises(ValueError, match="tolerance"):
        pareto_front(costs, aucs, tolerance=-1)


def test_cheapest_within_prefers_the_preferred_row_on_equal_cost():
    costs, aucs = [1.0, 1.0, 2.0], [0.90, 0.91, 0.92]
    assert cheapest_within(costs, aucs, 0.02) == 1
    assert cheapest_within(costs, aucs, 0.02, prefer=[True, False, False]) == 0
    assert cheapest_within(costs, aucs, 0.015, prefer=[True, False, False]) == 1  # 0.90 is not within δ


def test_borderline_marks_the_points_noise_can_move():
    # one model under three regimes (equal cost) and a dearer model; δ = 1 AUC point, SE 0.3 points each
    costs = [1.0, 1.0, 1.0, 2.0]
    aucs = [0.920, 0.912, 0.895, 0.960]
    gap_se = np.sqrt(2) * 0.003
    front = pareto_front(costs, aucs, tolerance=0.01)
    border = front_borderline(costs, aucs, np.full((4, 4), gap_se), tolerance=0.01)
    # 0.912 is 0.8 points below 0.920: inside δ by 0.2, well within 2·SE of the gap (0.85): borderline.
    # 0.895 is 2.5 points below: clearly off; 0.920 and the dearer 0.960 (4 points better): clearly on
    assert front.tolist() == [True, True, False, True]
    assert border.tolist() == [False, True, False, False]
    # not borderline ⇒ no jitter of at most z·se/√2 per score moves the point (each gap moves < z·SE of the gap)
    rng = np.random.default_rng(1)
    for _ in range(200):
        jitter = rng.uniform(-1, 1, size=4) * 2.0 * 0.003 / np.sqrt(2)
        moved = pareto_front(costs, np.add(aucs, jitter), tolerance=0.01)
        assert (moved == front)[~border].all()
    # a large enough jitter does move the borderline one off
    assert not pareto_front(costs, [0.920, 0.909, 0.895, 0.960], tolerance=0.01)[1]
    assert front_borderline(costs, aucs, gap_se, tolerance=0.01).tolist() == border.tolist()  # scalar SE
    # zero SEs: only exact ties with the threshold are borderline
    assert not front_borderline(costs, aucs, 0.0, tolerance=0.01).any()
    with pytest.raises(ValueError, match=r"\(4, 4\) array"):
        front_borderline(costs, aucs, [0.1, 0.1], tolerance=0.01)


def test_recommendation_alternatives_are_the_picks_noise_could_make():
    # one model under four regimes (random preferred: it needs no weights), a dearer model; δ = 1 point
    costs = [1.0, 1.0, 1.0, 1.0, 2.0]
    aucs = [0.910, 0.928, 0.922, 0.890, 0.950]
    prefer = [True, False, False, True, False]
    # the best (0.950) is dearer; within δ of it nothing cheaper: the pick is the best itself
    assert cheapest_within(costs, aucs, 0.01, prefer=prefer) == 4
    alt = recommendation_alternatives(costs, aucs, 0.01, 0.004, prefer=prefer)
    # 0.928 lies 2.2 points below the best: 1.2 beyond δ, within 2 SE (0.8)? no: 1.2 > 0.8, so not even
    # possibly within δ; the pick has no alternative
    assert alt.tolist() == [False, False, False, False, True]
    # without the dearer model: pick 0.928 (need weights), 0.922 ties it within 2 SE, and random 0.910
    # is possibly within δ of it (1.8 − 1 = 0.8 ≤ 2 SE) and preferred: both alternatives; 0.890 is not
    c4, a4, p4 = costs[:4], aucs[:4], prefer[:4]
    assert cheapest_within(c4, a4, 0.01, prefer=p4) == 1
    assert recommendation_alternatives(c4, a4, 0.01, 0.004, prefer=p4).tolist() == [True, True, True, False]
    # with exact scores (SE 0) only the pick is marked
    assert recommendation_alternatives(c4, a4, 0.01, 0.0, prefer=p4).tolist() == [False, True, False, False]
