"""Routing evaluation metrics (RouteLLM pair metrics, RouterBench cost/quality metrics).

Conventions (stated precisely so the figures can be re-derived):

Strong/weak pair (RouteLLM)
  * The router gives every prompt a score s_i (higher = more reason to call the strong model).
  * Sweep a threshold over *every distinct score* (equivalent to RouteLLM's quantile sweep with
    infinitely many quantiles).  Prompts with s_i > t go to the strong model.  Tied prompts move
    together, so each curve point sits at a tie-group boundary; the straight segment between two
    points is exactly the expected curve under random tie-breaking.
  * c = share of calls to strong, r = mean quality, PGR = (r - r_weak) / (r_strong - r_weak).
  * APGR = trapezoid area under PGR(c) for c in [0, 1] (curve runs from (0, 0) to (1, 1)).
    Random routing gives 0.5.
  * CPT(x) = smallest c on the piecewise-linear curve with PGR >= x (linear interpolation).

Several models with costs (RouterBench)
  * For a willingness to pay lam, each prompt goes to argmax_m [q_hat_m - cost_hat_m / lam].
    The realised (mean true cost, mean true quality) of each lam is one point.
  * f(c) = value of the non-decreasing upper convex hull of the points at cost c (points may be
    mixed at random, so the hull is attainable); f(c) = 0 below the cheapest point, and f is
    extended flat to the right of the best point.
  * AIQ = 1/(c_max - c_min) * integral_{c_min}^{c_max} f(c) dc, where c_min / c_max are the
    mean costs of the cheapest / most expensive *single* model on the same prompts.
  * cost_to_reach(target) = smallest c with f(c) >= target (on the hull, linear interpolation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# ----------------------------------------------------------------------------- pair metrics


def pgr_curve(scores: np.ndarray, q_strong: np.ndarray, q_weak: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (c, pgr) arrays of the threshold sweep, c increasing from 0 to 1."""
    s = np.asarray(scores, dtype=np.float64)
    qs = np.asarray(q_strong, dtype=np.float64)
    qw = np.asarray(q_weak, dtype=np.float64)
    n = len(s)
    if n == 0 or not (len(qs) == len(qw) == n):
        raise ValueError("scores, q_strong and q_weak must have the same non-zero length")
    r_strong, r_weak = qs.mean(), qw.mean()
    gap = r_strong - r_weak
    if gap == 0:
        raise ValueError("r_strong == r_weak: PGR undefined")
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    gain = (qs - qw)[order]
    cum_gain = np.concatenate([[0.0], np.cumsum(gain)])
    # tie-group boundaries: positions k where s_sorted[k-1] != s_sorted[k], plus 0 and n
    bounds = np.concatenate([[0], np.nonzero(np.diff(s_sorted))[0] + 1, [n]])
    c = bounds / n
    r = r_weak + cum_gain[bounds] / n
    pgr = (r - r_weak) / gap
    return c, pgr


def apgr(scores: np.ndarray, q_strong: np.ndarray, q_weak: np.ndarray) -> float:
    c, p = pgr_curve(scores, q_strong, q_weak)
    return float(np.trapezoid(p, c))


def cpt(scores: np.ndarray, q_strong: np.ndarray, q_weak: np.ndarray, x: float) -> float:
    """Smallest share of strong calls reaching PGR >= x (linear interpolation); nan if never."""
    c, p = pgr_curve(scores, q_strong, q_weak)
    return cpt_of_curve(c, p, x)


def cpt_of_curve(c: np.ndarray, p: np.ndarray, x: float) -> float:
    """CPT(x) of a piecewise-linear (c, PGR) curve sorted by c."""
    if p[0] >= x:
        return float(c[0])
    for k in range(1, len(c)):
        if p[k] >= x:
            if p[k] == p[k - 1]:
                return float(c[k])
            t = (x - p[k - 1]) / (p[k] - p[k - 1])
            return float(c[k - 1] + t * (c[k] - c[k - 1]))
    return float("nan")


def pair_report(scores: np.ndarray, q_strong: np.ndarray, q_weak: np.ndarray) -> dict[str, float]:
    return {
        "APGR": apgr(scores, q_strong, q_weak),
        "CPT50": cpt(scores, q_strong, q_weak, 0.5),
        "CPT80": cpt(scores, q_strong, q_weak, 0.8),
    }


# ----------------------------------------------------------------------------- cost/quality


def upper_hull(points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Non-decreasing upper convex hull of (cost, quality) points, as an (k, 2) array sorted by cost.

    Points that are dominated (more cost, no more quality than a cheaper point) are dropped, so
    the hull is non-decreasing and concave.
    """
    pts = sorted({(float(a), float(b)) for a, b in points})
    if not pts:
        raise ValueError("no points")
    # keep Pareto points: strictly increasing quality with cost
    pareto: list[tuple[float, float]] = []
    for cst, q in pts:
        if pareto and cst == pareto[-1][0]:
            if q > pareto[-1][1]:
                pareto[-1] = (cst, q)
            continue
        if not pareto or q > pareto[-1][1]:
            pareto.append((cst, q))
    hull: list[tuple[float, float]] = []
    for p in pareto:
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop hull[-1] if it lies on or below the segment hull[-2] -> p
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= -1e-12:
                hull.pop()
            else:
                break
        hull.append(p)
    return np.array(hull, dtype=np.float64)


def hull_value(hull: np.ndarray, c: np.ndarray | float) -> np.ndarray:
    """f(c): 0 below the cheapest hull point, linear in between, flat after the last point."""
    c_arr = np.atleast_1d(np.asarray(c, dtype=np.float64))
    v: np.ndarray = np.interp(c_arr, hull[:, 0], hull[:, 1])
    v[c_arr < hull[0, 0]] = 0.0
    return v


def aiq(points: Sequence[tuple[float, float]], c_min: float, c_max: float) -> float:
    """Normalised area under the non-decreasing convex hull on [c_min, c_max]."""
    if c_max <= c_min:
        raise ValueError("c_max must exceed c_min")
    hull = upper_hull(points)
    xs = [c_min, c_max] + [x for x in hull[:, 0] if c_min < x < c_max]
    # a hull point at exactly the left of a jump from 0: add a point just before it
    first = hull[0, 0]
    if c_min < first < c_max:
        xs.append(np.nextafter(first, -np.inf))
    xs_arr = np.array(sorted(set(xs)))
    ys = hull_value(hull, xs_arr)
    return float(np.trapezoid(ys, xs_arr) / (c_max - c_min))


def cost_to_reach(points: Sequence[tuple[float, float]], target: float) -> float:
    """Smallest cost on the hull with quality >= target; nan if never reached."""
    hull = upper_hull(points)
    if hull[0, 1] >= target:
        return float(hull[0, 0])
    for k in range(1, len(hull)):
        if hull[k, 1] >= target:
            (x1, y1), (x2, y2) = hull[k - 1], hull[k]
            return float(x1 + (target - y1) / (y2 - y1) * (x2 - x1))
    return float("nan")


def lambda_sweep(
    q_hat: np.ndarray,
    cost_hat: np.ndarray,
    q_true: np.ndarray,
    cost_true: np.ndarray,
    lambdas: np.ndarray | None = None,
) -> list[tuple[float, float]]:
    """(mean true cost, mean true quality) for each willingness to pay.

    All arrays are (n_prompts, n_models).  Includes the two limits: lam -> 0 (cheapest by
    cost_hat) and lam -> inf (best q_hat, ties broken by lower cost_hat).
    """
    n = q_hat.shape[0]
    rows = np.arange(n)
    pts: list[tuple[float, float]] = []
    if lambdas is None:
        # lam spans the range of (quality gap / cost gap) ratios seen in the data
        cm = cost_hat.mean(axis=0)
        lo = max(float(np.min(cm)) * 1e-3, 1e-12)
        hi = float(np.max(cm)) * 1e4
        lambdas = np.geomspace(lo, hi, 400)
    for lam in lambdas:
        u = q_hat - cost_hat / lam
        j = np.argmax(u, axis=1)
        pts.append((float(cost_true[rows, j].mean()), float(q_true[rows, j].mean())))
    j0 = np.argmin(cost_hat, axis=1)
    pts.append((float(cost_true[rows, j0].mean()), float(q_true[rows, j0].mean())))
    jinf = _best_then_cheapest(q_hat, cost_hat)
    pts.append((float(cost_true[rows, jinf].mean()), float(q_true[rows, jinf].mean())))
    return pts


def _best_then_cheapest(q_hat: np.ndarray, cost_hat: np.ndarray) -> np.ndarray:
    best = q_hat >= (q_hat.max(axis=1, keepdims=True) - 1e-12)
    c = np.where(best, cost_hat, np.inf)
    out: np.ndarray = np.argmin(c, axis=1)
    return out


def oracle_choice(q_true: np.ndarray, cost_true: np.ndarray) -> np.ndarray:
    """Cheapest model achieving the best true score per prompt."""
    return _best_then_cheapest(q_true, cost_true)


def multi_report(
    q_hat: np.ndarray,
    cost_hat: np.ndarray,
    q_true: np.ndarray,
    cost_true: np.ndarray,
    ref_model: int | None = None,
) -> dict[str, float]:
    """AIQ and cost to reach 95 % of the best single model's quality (as a share of its cost)."""
    single_c = cost_true.mean(axis=0)
    single_q = q_true.mean(axis=0)
    c_min, c_max = float(single_c.min()), float(single_c.max())
    pts = lambda_sweep(q_hat, cost_hat, q_true, cost_true)
    best = int(np.argmax(single_q)) if ref_model is None else ref_model
    target = 0.95 * float(single_q[best])
    c95 = cost_to_reach(pts, target)
    return {
        "AIQ": aiq(pts, c_min, c_max),
        "cost95_share_of_best": c95 / float(single_c[best]),
        "max_quality": float(max(q for _, q in pts)),
    }


def single_models_aiq(q_true: np.ndarray, cost_true: np.ndarray) -> float:
    sc, sq = cost_true.mean(axis=0), q_true.mean(axis=0)
    pts = list(zip(sc.tolist(), sq.tolist(), strict=False))
    return aiq(pts, float(sc.min()), float(sc.max()))


def single_models_cost95(q_true: np.ndarray, cost_true: np.ndarray) -> float:
    sc, sq = cost_true.mean(axis=0), q_true.mean(axis=0)
    best = int(np.argmax(sq))
    return cost_to_reach(list(zip(sc.tolist(), sq.tolist(), strict=False)), 0.95 * float(sq[best])) / float(sc[best])


def oracle_report(q_true: np.ndarray, cost_true: np.ndarray) -> dict[str, float]:
    """Oracle frontier: lambda sweep using the true qualities and true costs."""
    return multi_report(q_true, cost_true, q_true, cost_true)


def random_point(q_true: np.ndarray, cost_true: np.ndarray) -> tuple[float, float]:
    """Uniform random routing over all models (expected value)."""
    return float(cost_true.mean()), float(q_true.mean())


def as_matrix(rows: Sequence[Mapping[str, float]], models: Sequence[str]) -> np.ndarray:
    return np.array([[float(r[m]) for m in models] for r in rows], dtype=np.float64)


# ----------------------------------------------------------------------------- measured operating points


def curve_from_points(
    shares: Sequence[float], qualities: Sequence[float], r_strong: float, r_weak: float
) -> tuple[np.ndarray, np.ndarray]:
    """(c, PGR) curve through measured operating points (share of strong calls, mean quality).

    The two trivial routers (all weak: c = 0; all strong: c = 1) are added; points are sorted by c and,
    where several points share a c, the best PGR is kept.
    """
    gap = r_strong - r_weak
    if gap == 0:
        raise ValueError("r_strong == r_weak: PGR undefined")
    best: dict[float, float] = {0.0: 0.0, 1.0: 1.0}
    for c, r in zip(shares, qualities, strict=True):
        p = (float(r) - r_weak) / gap
        best[float(c)] = max(best.get(float(c), -np.inf), p)
    cs = np.array(sorted(best))
    return cs, np.array([best[c] for c in cs])


def pair_report_from_points(
    shares: Sequence[float], qualities: Sequence[float], r_strong: float, r_weak: float
) -> dict[str, float]:
    """APGR, CPT(50 %) and CPT(80 %) of measured operating points (see :func:`curve_from_points`)."""
    c, p = curve_from_points(shares, qualities, r_strong, r_weak)
    return {"APGR": float(np.trapezoid(p, c)), "CPT50": cpt_of_curve(c, p, 0.5), "CPT80": cpt_of_curve(c, p, 0.8)}


def multi_report_from_points(
    points: Sequence[tuple[float, float]], q_true: np.ndarray, cost_true: np.ndarray, ref_model: int | None = None
) -> dict[str, float]:
    """AIQ, cost to reach 95 % of the best single model (share of its cost) and the best quality, of measured
    (mean cost, mean quality) points, against the single models of ``q_true`` / ``cost_true``."""
    single_c, single_q = cost_true.mean(axis=0), q_true.mean(axis=0)
    best = int(np.argmax(single_q)) if ref_model is None else ref_model
    return {
        "AIQ": aiq(points, float(single_c.min()), float(single_c.max())),
        "cost95_share_of_best": cost_to_reach(points, 0.95 * float(single_q[best])) / float(single_c[best]),
        "max_quality": float(max(q for _, q in points)),
    }
