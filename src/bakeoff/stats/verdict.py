"""The verdict on one pair: better, equivalent within the margin, or inconclusive, and what would decide it."""

from __future__ import annotations

from typing import Any


def verdict(a: str, b: str, diff: float, ci_low: float, ci_high: float, min_effect: float,
            higher_is_better: bool, p_value: float = 0.0, alpha: float = 0.05) -> str:
    """``diff`` and its interval are metric(A) - metric(B); ``min_effect`` is the smallest gain that matters.

    Better: the whole interval is a gain beyond the margin and the test's p-value is below ``alpha``
    (both must agree: the percentile interval alone is slightly liberal on small test sets).
    Equivalent: the whole interval lies inside +-margin (impossible with margin 0). Otherwise
    inconclusive: the interval straddles a margin.
    """
    gain_lo, gain_hi = (ci_low, ci_high) if higher_is_better else (-ci_high, -ci_low)
    significant = p_value < alpha
    if gain_lo > min_effect and significant:
        return f"{a} better"
    if gain_hi < -min_effect and significant:
        return f"{b} better"
    if min_effect > 0 and -min_effect <= gain_lo and gain_hi <= min_effect:
        return f"equivalent within ±{min_effect:g}"
    return "inconclusive"


def resolution_estimate(diff: float, ci_low: float, ci_high: float, min_effect: float, n_test: int,
                        n_seeds: int) -> dict[str, Any] | None:
    """Rough size of study that would move the interval off the nearest margin, if the effect stays.

    Interval half-widths shrink like 1/sqrt(n); the factor applies to whichever source dominates the
    width (test samples or seeds), so both are given. None when no finite amount would decide.
    """
    half = (ci_high - ci_low) / 2
    room = abs(diff) - min_effect if abs(diff) > min_effect else min_effect - abs(diff)
    if half <= 0 or room <= 0:
        return None
    factor = (half / room) ** 2
    if factor <= 1:
        return None
    return {"factor": float(factor), "test_samples": int(round(factor * n_test)),
            "seeds": int(round(factor * n_seeds)),
            "note": "if the observed difference held, about this many test samples (or seeds, whichever "
                    "dominates the uncertainty) would give an interval clear of the margin"}
