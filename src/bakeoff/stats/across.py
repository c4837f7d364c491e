"""Tests across runs paired by (seed, fold): BCa interval, Bayesian correlated t-test, Wilcoxon; Holm."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from bakeoff.errors import BakeoffError

MIN_WILCOXON_PAIRS = 6


def bca_interval(diffs: np.ndarray, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """BCa bootstrap interval of the mean paired difference (``scipy.stats.bootstrap``)."""
    diffs = np.asarray(diffs, float)
    if len(diffs) < 3 or np.ptp(diffs) == 0:
        return {"ci_low": None, "ci_high": None, "note": f"needs at least 3 differing pairs, got {len(diffs)}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((diffs,), np.mean, confidence_level=level, method="BCa", n_resamples=9999,
                              random_state=seed)
    note = "" if len(diffs) >= 10 else f"only {len(diffs)} pairs: a bootstrap interval this small is rough"
    return {"ci_low": float(res.confidence_interval.low), "ci_high": float(res.confidence_interval.high),
            "note": note}


def correlated_ttest(a: np.ndarray, b: np.ndarray, rope: float, runs: int) -> dict[str, Any]:
    """Bayesian correlated t-test (``baycomp``; Nadeau-Bengio correction for k-fold overlap).

    ``a``, ``b`` are per-(seed, fold) scores ordered seed-major; ``runs`` is the number of seeds. Scores
    must be higher-is-better (callers negate lower-is-better metrics). Returns P(A better),
    P(practically equivalent), P(B better).
    """
    from baycomp import CorrelatedTTest

    folds = len(a) // runs
    if folds < 2:
        return {"note": "needs k-fold splits (the Nadeau-Bengio correction is undefined for one split)"}
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.ptp(a - b) == 0:
        return {"note": "all paired differences are equal; the posterior is degenerate"}
    # baycomp's convention: differences are y - x, "left" means x better.
    if rope > 0:
        p_b, p_rope, p_a = CorrelatedTTest.probs(b, a, rope=rope, runs=runs)
    else:
        p_b, p_a = CorrelatedTTest.probs(b, a, rope=0, runs=runs)
        p_rope = 0.0
    return {"p_a_better": float(p_a), "p_equivalent": float(p_rope), "p_b_better": float(p_b), "rope": rope}


def wilcoxon(diffs: np.ndarray) -> dict[str, Any]:
    """Wilcoxon signed-rank, only with >= 6 pairs: with n pairs the exact two-sided p can never go below
    2 / 2**n (0.0625 for 5), so fewer pairs could never reach 0.05 and 'not significant' would mean nothing."""
    diffs = np.asarray(diffs, float)
    n = int(np.sum(diffs != 0))
    floor = 2 / 2 ** n if n else 1.0
    if n < MIN_WILCOXON_PAIRS:
        return {"p_value": None, "n_pairs": n,
                "note": f"not run: with {n} non-zero pairs the smallest possible p is {floor:.4f}"}
    res = stats.wilcoxon(diffs)
    return {"p_value": float(res.pvalue), "n_pairs": n, "note": ""}


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values: p_(i) * (m - i + 1), made monotone, capped at 1.

    Written here rather than calling statsmodels' ``multipletests(method="holm")`` (which the tests use as
    the reference): statsmodels 0.15 runs ``gc.collect()`` on every call, 0.1-1 s each in a process that
    holds torch, and the calibration suite calls it thousands of times.
    """
    p = np.asarray(p_values, float)
    if not len(p):
        return []
    order = np.argsort(p, kind="stable")
    m = len(p)
    stepped = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = stepped
    return [float(x) for x in out]


def almost_stochastic_order(a: np.ndarray, b: np.ndarray, alpha: float = 0.05, seed: int = 0) -> dict[str, Any]:
    """epsilon_min of Almost Stochastic Order of A over B (deepsig; GPL-3.0, so only an optional extra).

    Scores must be higher-is-better. epsilon_min < 0.5 means A is almost stochastically larger; the
    closer to 0, the stronger the dominance.
    """
    try:
        from deepsig import aso
    except ImportError:
        raise BakeoffError("evaluation.aso needs deepsig (GPL-3.0): pip install 'bakeoff[aso]'") from None
    eps = aso(np.asarray(a, float), np.asarray(b, float), confidence_level=1 - alpha, seed=seed,
              show_progress=False)
    return {"eps_min": float(eps), "method": "Almost Stochastic Order (deepsig.aso), A over B",
            "note": "eps_min < 0.5: A almost stochastically dominates B; 0 is complete dominance"}
