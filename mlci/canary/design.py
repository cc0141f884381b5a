"""The group-sequential design: alpha spending, exact boundaries for the looks taken, sample size.

Looks at information fractions t_1 < t_2 < ... (the share of the planned sample
seen so far) give standardized statistics Z_k with the canonical joint
distribution: Z_k = S(t_k) / sqrt(t_k), S a Brownian motion with drift theta
(Jennison & Turnbull, Group Sequential Methods, 2000, ch. 3). The Lan-DeMets
spending function of O'Brien-Fleming type,

    alpha(t) = 2 - 2 * Phi(z_{1 - alpha/2} / sqrt(t)),  alpha(1) = alpha,

says how much of the one-sided type I error may be used up by information t.
Each boundary c_k is solved so that P(first crossing at look k | H0) equals
alpha(t_k) - alpha(t_{k-1}), by numerical integration of the sub-density of
S on the continuation region (Armitage, McPherson & Rowe 1969; Jennison &
Turnbull ch. 19). So the probability of ever crossing under H0 is exactly
alpha(t_K) <= alpha however many looks are taken and whenever they fall,
as long as their timing does not depend on the observed effect. Boundaries
of earlier looks are never recomputed: they are part of the persisted state.

The sample size comes from statsmodels' power analysis of a two-proportion
test (Cohen's h), inflated by the factor the sequential design costs (about
3% for ten looks), so the design keeps its power at the minimum effect.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize
from scipy.special import ndtr, ndtri

# scipy.special's normal CDF and its inverse: scipy.stats.norm's per-call argument checks would
# dominate the thousands of small evaluations an A/A simulation makes.
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def normal_sf(x):
    return ndtr(-np.asarray(x, dtype=float)) if np.ndim(x) else float(ndtr(-x))


def normal_isf(p: float) -> float:
    return float(-ndtri(p))

# Grid points per standard deviation of the smallest increment between looks, and how far the lower
# tail is followed (probability beyond 8 sd is below 1e-15).
_POINTS_PER_SD = 4
_TAIL_SD = 8.0
_NEGLIGIBLE = 1e-15


def spent(t: float, alpha: float) -> float:
    """Alpha used up by information fraction `t` (O'Brien-Fleming-type Lan-DeMets spending)."""
    if t <= 0:
        return 0.0
    return 2.0 * normal_sf(normal_isf(alpha / 2.0) / math.sqrt(min(t, 1.0)))


def grid_step(max_looks: int) -> float:
    """Integration step for a design whose looks are at least 1/(2 * max_looks) of information apart."""
    return math.sqrt(1.0 / (2 * max_looks)) / _POINTS_PER_SD


def _simpson(lo: float, hi: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    intervals = max(2, math.ceil((hi - lo) / step))
    intervals += intervals % 2
    x = np.linspace(lo, hi, intervals + 1)
    weights = np.full(intervals + 1, 2.0)
    weights[1::2] = 4.0
    weights[0] = weights[-1] = 1.0
    return x, weights * ((hi - lo) / intervals / 3.0)


@functools.lru_cache(maxsize=4096)
def _continuation(fractions: tuple[float, ...], criticals: tuple[float, ...], theta: float,
                  step: float) -> tuple[np.ndarray, np.ndarray]:
    """(grid, weight * sub-density) of S(t_k) on paths that crossed no boundary up to the last look.

    Cached by its prefix, so the looks of one experiment each cost one integration step.
    """
    if not fractions:
        return np.zeros(1), np.ones(1)  # S(0) = 0
    x, wf = _continuation(fractions[:-1], criticals[:-1], theta, step)
    previous = fractions[-2] if len(fractions) > 1 else 0.0
    t, c = fractions[-1], criticals[-1]
    sd = math.sqrt(t - previous)
    lo = theta * t - _TAIL_SD * math.sqrt(t)
    hi = c * math.sqrt(t) if math.isfinite(c) else theta * t + _TAIL_SD * math.sqrt(t)
    if hi <= lo or not x.size:
        return np.zeros(0), np.zeros(0)
    y, weights = _simpson(lo, hi, step)
    u = (y[None, :] - x[:, None] - theta * (t - previous)) / sd
    density = wf @ (np.exp(-0.5 * u * u) / (sd * _SQRT_2PI))
    return y, weights * density


def _crossing(x: np.ndarray, wf: np.ndarray, previous: float, t: float, c: float, theta: float) -> float:
    """P(no crossing before, crossing at the look at t with critical value c)."""
    if not x.size or c == math.inf:
        return 0.0
    sd = math.sqrt(t - previous)
    return float(wf @ normal_sf((c * math.sqrt(t) - x - theta * (t - previous)) / sd))


def _check_fractions(fractions: Sequence[float]) -> None:
    if any(b <= a for a, b in zip([0.0, *fractions], fractions, strict=False)):
        raise ValueError(f"information fractions must increase from 0: {list(fractions)}")


def critical_value(fractions: Sequence[float], criticals: Sequence[float], t: float, alpha: float,
                   step: float) -> float:
    """The boundary (one-sided, on the Z scale) of a new look at information `t` after the looks taken.

    Infinite when the spending leaves nothing to spend at this look (nothing can reject).
    """
    return _critical_value(tuple(float(value) for value in fractions), tuple(float(c) for c in criticals),
                           float(t), float(alpha), float(step))


@functools.lru_cache(maxsize=4096)
def _critical_value(past: tuple[float, ...], criticals: tuple[float, ...], t: float, alpha: float,
                    step: float) -> float:
    _check_fractions([*past, t])
    budget = spent(t, alpha) - spent(past[-1] if past else 0.0, alpha)
    if budget <= _NEGLIGIBLE:
        return math.inf
    x, wf = _continuation(past, criticals, 0.0, step)
    previous = past[-1] if past else 0.0
    if not x.size:
        return math.inf

    def excess(c: float) -> float:
        return _crossing(x, wf, previous, t, c, 0.0) - budget

    low, high = -10.0, 40.0
    if excess(low) < 0:  # the budget exceeds the mass still running: reject whatever is seen
        return -math.inf
    return float(optimize.brentq(excess, low, high, xtol=1e-9))


def crossing_probabilities(fractions: Sequence[float], criticals: Sequence[float], theta: float,
                           step: float) -> list[float]:
    """P(first crossing at look k) for each look, when E[Z(t)] = theta * sqrt(t)."""
    past = tuple(float(value) for value in fractions)
    _check_fractions(past)
    crits = tuple(float(c) for c in criticals)
    probabilities = []
    for k in range(len(past)):
        x, wf = _continuation(past[:k], crits[:k], theta, step)
        probabilities.append(_crossing(x, wf, past[k - 1] if k else 0.0, past[k], crits[k], theta))
    return probabilities


def boundaries(fractions: Sequence[float], alpha: float, step: float) -> list[float]:
    """Critical values of looks at `fractions`, each solved after the ones before."""
    criticals: list[float] = []
    for k, t in enumerate(fractions):
        criticals.append(critical_value(fractions[:k], criticals, t, alpha, step))
    return criticals


@functools.lru_cache(maxsize=64)
def inflation_factor(max_looks: int, alpha: float, power: float) -> float:
    """How much larger the maximum sample is than a single test's, for the same power.

    Planned looks at 1/K, 2/K, ..., 1; solves the drift at which the design
    crosses with probability `power`, relative to the fixed-sample drift.
    """
    if max_looks <= 1:
        return 1.0
    step = grid_step(max_looks)
    fractions = [k / max_looks for k in range(1, max_looks + 1)]
    criticals = boundaries(fractions, alpha, step)
    fixed = normal_isf(alpha) + normal_isf(1.0 - power)

    def shortfall(theta: float) -> float:
        return sum(crossing_probabilities(fractions, criticals, theta, step)) - power

    theta = optimize.brentq(shortfall, fixed * 0.8, fixed * 1.5, xtol=1e-7)
    return float((theta / fixed) ** 2)


def worse_rate(baseline: float, min_effect: float, better: str) -> float:
    """The rate of a version that is worse than `baseline` by the minimum effect."""
    return baseline + min_effect if better == "lower" else baseline - min_effect


@functools.lru_cache(maxsize=256)
def fixed_sample_size(*, baseline: float, min_effect: float, better: str, alpha: float, power: float,
                      ratio: float, alternative: str = "larger") -> float:
    """Requests of the new version a single two-proportion test needs (statsmodels, Cohen's h).

    `ratio` is requests of the stable version per request of the new one (the traffic split).
    """
    from statsmodels.stats.power import NormalIndPower
    from statsmodels.stats.proportion import proportion_effectsize

    worse = worse_rate(baseline, min_effect, better)
    if not 0.0 <= worse <= 1.0:
        raise ValueError(f"a baseline of {baseline:g} moved by {min_effect:g} leaves [0, 1]")
    effect = abs(float(proportion_effectsize(worse, baseline)))
    if effect == 0.0:
        raise ValueError("the minimum effect must be larger than 0")
    return float(NormalIndPower().solve_power(effect_size=effect, nobs1=None, alpha=alpha, power=power,
                                              ratio=ratio, alternative=alternative))


def effective_n(n_canary: float, n_stable: float) -> float:
    """n1*n2/(n1+n2): the information of a difference of two means, in samples (0 without both arms)."""
    if n_canary <= 0 or n_stable <= 0:
        return 0.0
    return n_canary * n_stable / (n_canary + n_stable)
