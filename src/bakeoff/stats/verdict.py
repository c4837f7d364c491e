"""The verdict on one pair: better, worse, equivalent within the margin, or inconclusive."""

from __future__ import annotations


def verdict(a: str, b: str, diff: float, min_effect: float, higher_is_better: bool, p_margin: float,
            p_equivalence: float = 1.0, alpha: float = 0.05) -> str:
    """``diff`` is metric(A) - metric(B); ``min_effect`` the smallest gain that matters.

    "A better" (or "B better"): the difference lies beyond the margin, tested two-sided at ``alpha``
    (``p_margin``: H0 |diff| <= min_effect; with margin 0 the plain test of no difference); equivalently
    the (1 - alpha) interval clears the margin. "equivalent within ±m": the two one-sided tests (TOST)
    reject both |diff| >= m at ``alpha`` (the 1 - 2 alpha interval inside ±m; impossible with margin 0).
    Otherwise inconclusive. Callers pass Holm-adjusted p-values when several pairs are compared.
    """
    if p_margin < alpha and abs(diff) > min_effect:
        gain = diff if higher_is_better else -diff
        return f"{a} better" if gain > 0 else f"{b} better"
    if min_effect > 0 and p_equivalence < alpha:
        return f"equivalent within ±{min_effect:g}"
    return "inconclusive"
