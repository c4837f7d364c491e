"""The statistical model of a study's design, used by every verdict.

A study's test scores come from a crossed design: training replicates (seeds, and folds) crossed with
the test samples (or images) they are scored on. Runs on the same test set share its sampling error;
runs on disjoint test sets do not. For one test set with R runs, the variance of the mean paired
difference d̄ is

    Var(d̄) = tau² / R  +  sigma_shared² / n  +  sigma_churn² / (n R)

(training-run variation, the test samples' effect common to every run, and the run-by-sample
interaction, "churn"). Its unbiased moment estimate is ``s² / R + c`` where ``s²`` is the variance of the
per-run differences and ``c`` the mean covariance between two runs' sampling errors, estimated by the
jackknife over test units (leave one sample or image out; the same unit for every run). This is the
two-way crossed random-effects ANOVA estimate (Cornfield & Tukey 1956), written for any metric through
the jackknife; degrees of freedom by Welch–Satterthwaite, so that with few seeds the interval has the
t(R - 1) tail it needs and with many test samples it tends to the normal one. It counts churn once: a
percentile bootstrap over seeds and samples counts it twice and lacks the t tail.

Folds that share one test set are training replicates on that set (a copy of one run into five folds
adds nothing). Disjoint test sets are independent strata, combined with equal weight; with one run per
fold, the folds' own spread gives the interval (a t-test over folds, k - 1 degrees of freedom).

No library offers this estimator for arbitrary metrics on a seeds x samples design; statsmodels' mixed
models need per-sample additive scores, which AUROC, QWK and pooled Dice are not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

CHUNK = 256  # leave-one-out rows per block: bounds memory at CHUNK x n
DF_QUANTILE = 0.25  # see seed_df_weight; chosen by the calibration suite
METHOD = ("crossed random effects (training runs x test units): variance s²/R + c from the spread of the "
          "runs and the jackknife covariance of their shared test units, Welch–Satterthwaite degrees of "
          "freedom, t interval and t test")

Key = tuple[int, int]


def jackknife_values(fn: Callable[[np.ndarray], np.ndarray], n: int) -> np.ndarray:
    """``fn(W)`` for every leave-one-out weight row (``1 - I``), in blocks: (n,) values."""
    out = []
    for start in range(0, n, CHUNK):
        rows = np.arange(start, min(n, start + CHUNK))
        W = np.ones((len(rows), n))
        W[np.arange(len(rows)), rows] = 0.0
        out.append(fn(W))
    return np.concatenate(out) if out else np.zeros(0)


def group_by_test_set(folds: list[int], ids: dict[int, np.ndarray] | None) -> tuple[list[list[int]], str]:
    """Folds grouped by their test set: identical test ids share one group. Returns the groups and the
    design in words ("single", "shared", "disjoint", "overlapping")."""
    if len(folds) == 1:
        return [list(folds)], "single"
    if ids is None:
        return [[f] for f in folds], "disjoint"
    groups: list[list[int]] = []
    keys: list[np.ndarray] = []
    for f in folds:
        s = np.sort(np.asarray(ids[f]).astype(str))
        for g, k in zip(groups, keys):
            if len(k) == len(s) and np.array_equal(k, s):
                g.append(f)
                break
        else:
            groups.append([f])
            keys.append(s)
    if len(groups) == 1:
        return groups, "shared"
    seen: set[str] = set()
    overlap = False
    for k in keys:
        ks = set(k.tolist())
        overlap |= bool(ks & seen)
        seen |= ks
    return groups, "overlapping" if overlap else "disjoint"


@dataclass
class GroupEstimate:
    """One test set: its runs' mean, the variance of that mean and its variance components."""

    folds: list[int]
    runs: int
    units: int
    mean: float
    var: float
    parts: list[tuple[float, float]]  # (variance term, degrees of freedom) for Satterthwaite
    tau2: float | None  # training-run variance (None with one run)
    shared: float  # c: covariance of the runs' sampling errors (test units common to all runs)
    churn: float  # per-run sampling variance not shared between runs


@dataclass
class Estimate:
    """The mean over runs of a per-run quantity (a paired difference, or one contender's score), with
    the variance and degrees of freedom of the design."""

    mean: float
    var: float
    df: float
    design: str
    groups: list[GroupEstimate]
    method: str = METHOD
    notes: list[str] = field(default_factory=list)
    fold_spread: float | None = None  # variance of the per-fold means when the folds' spread is the interval

    @property
    def test_units(self) -> int:
        """Distinct test units: folds sharing one test set count it once."""
        return int(sum(g.units for g in self.groups))

    @property
    def se(self) -> float:
        return float(np.sqrt(max(self.var, 0.0)))

    def interval(self, level: float) -> tuple[float, float]:
        if self.var <= 0:
            return self.mean, self.mean
        q = stats.t.ppf(0.5 + level / 2, self.df)
        return self.mean - q * self.se, self.mean + q * self.se

    def components(self) -> dict[str, Any]:
        """What ``bakeoff plan`` needs to predict other designs: per test set, per-run variance components
        in the units of the metric, at the study's test-set size."""
        return {"design": self.design, "pooled_over_folds": self.fold_spread is not None,
                "fold_spread": self.fold_spread, "df": self.df,
                "groups": [{"folds": g.folds, "runs": g.runs, "test_units": g.units, "tau2": g.tau2,
                            "shared": g.shared, "churn": g.churn} for g in self.groups]}


def seed_df_weight(df: float) -> float:
    """How much the training-run term counts when the degrees of freedom are worked out: its upper
    ``DF_QUANTILE`` confidence bound over its estimate, (R - 1) / chi2_q(R - 1). Plain Satterthwaite
    with the estimated term lets the df jump towards n - 1 exactly when few seeds happened to agree,
    which made the t test liberal (0.08 at 3 seeds in the calibration suite); weighting the term at its
    plausible upper value keeps the df near R - 1 unless the test units clearly dominate."""
    return float(df / stats.chi2.ppf(DF_QUANTILE, df)) if df >= 1 else 1.0


def _satterthwaite(parts: list[tuple[float, float]]) -> float:
    parts = [(a, d) for a, d in parts if a > 0 and d > 0]
    if not parts:
        return float("inf")
    return float(sum(a for a, _ in parts) ** 2 / sum(a * a / d for a, d in parts))


def group_estimate(folds: list[int], points: np.ndarray, loo: np.ndarray) -> GroupEstimate:
    """``points`` (R,) per-run values on one test set, ``loo`` (R, n) their leave-one-unit-out values."""
    R, n = loo.shape
    mean = float(np.mean(points))
    if n >= 2:
        centred = loo - loo.mean(1, keepdims=True)
        C = (n - 1) / n * centred @ centred.T
    else:
        C = np.zeros((R, R))
    v_bar = float(np.mean(np.diag(C)))
    if R >= 2:
        c = float((C.sum() - np.trace(C)) / (R * (R - 1)))
        s2 = float(np.var(points, ddof=1))
        shared = max(c, 0.0)
        parts = [(s2 / R * seed_df_weight(R - 1), R - 1), (shared, n - 1)]  # for the df only
        return GroupEstimate(folds, R, n, mean, s2 / R + shared, parts, max(0.0, s2 - max(v_bar - c, 0.0)),
                             shared, max(v_bar - c, 0.0))
    return GroupEstimate(folds, 1, n, mean, v_bar, [(v_bar, n - 1)], None, v_bar, 0.0)


def estimate(points: dict[Key, float], loos: dict[Key, np.ndarray], folds: list[int],
             ids: dict[int, np.ndarray] | None = None) -> Estimate:
    """The design-aware estimate of the mean of ``points`` over runs (keys (seed, fold))."""
    groups, design = group_by_test_set(folds, ids)
    ests = []
    for g in groups:
        keys = sorted(k for k in points if k[1] in g and np.isfinite(points[k]))
        if not keys:
            continue
        pts = np.array([points[k] for k in keys])
        L = np.stack([loos[k] for k in keys])
        L = np.where(np.isfinite(L), L, pts[:, None])  # an undefined leave-one-out value adds no spread
        ests.append(group_estimate(g, pts, L))
    notes = []
    if design == "overlapping":
        notes.append("the folds' test sets overlap partly; they are treated as independent, which understates "
                     "the uncertainty")
    if not ests:
        return Estimate(float("nan"), float("nan"), float("nan"), design, [], notes=["no defined values"])
    G = len(ests)
    means = np.array([e.mean for e in ests])
    if G >= 2 and all(e.runs == 1 for e in ests):
        var = float(np.var(means, ddof=1) / G)
        return Estimate(float(means.mean()), var, G - 1.0, design, ests,
                        method=f"t test over {G} independent test sets (one run each): their spread carries "
                               f"training, fold and test-sample variation; {G - 1} degrees of freedom",
                        notes=notes, fold_spread=float(np.var(means, ddof=1)))
    var = float(sum(e.var for e in ests) / G ** 2)
    df = _satterthwaite([(a / G ** 2, d) for e in ests for a, d in e.parts])
    if all(e.runs == 1 for e in ests):
        notes.append("one training run per contender: the verdict is about these trained models; "
                     "seed-to-seed variation is not estimated (add seeds to judge the training recipe)")
    elif any(e.runs == 1 for e in ests):
        notes.append("some test sets have one run only: their seed-to-seed variation is not estimated")
    if any(e.units < 2 for e in ests):
        notes.append("a test set with one unit: its sampling variation cannot be estimated")
    return Estimate(float(means.mean()), var, df, design, ests, notes=notes)


def zero_variance_p(total_units: int) -> float:
    """The smallest two-sided p-value a sign-flip test over ``total_units`` units can give: the p-value
    when every unit favours one side alike and the estimated variance is zero (never 0)."""
    return float(min(1.0, 2.0 ** (1 - total_units))) if total_units >= 1 else 1.0


def claim_tests(est: Estimate, min_effect: float, alpha: float) -> dict[str, Any]:
    """Interval, p-value against no difference, against the margin, and TOST equivalence p-value."""
    d, se, df = est.mean, est.se, est.df
    if not np.isfinite(d):
        return {"ci_low": float("nan"), "ci_high": float("nan"), "p_value": 1.0, "p_margin": 1.0,
                "p_equivalence": 1.0, "df": float("nan"), "se": float("nan")}
    lo, hi = est.interval(1 - alpha)
    lo90, hi90 = est.interval(1 - 2 * alpha)
    out = {"ci_low": float(lo), "ci_high": float(hi), "ci_equivalence": [float(lo90), float(hi90)],
           "df": float(df), "se": float(se)}
    if se > 1e-12 * max(1.0, abs(d)):  # below that, float noise of an exactly zero variance
        out["p_value"] = float(min(1.0, 2 * stats.t.sf(abs(d) / se, df)))
        out["p_margin"] = float(min(1.0, 2 * stats.t.sf((abs(d) - min_effect) / se, df)))
        out["p_equivalence"] = (float(max(stats.t.sf((d + min_effect) / se, df),
                                          stats.t.sf((min_effect - d) / se, df))) if min_effect > 0 else 1.0)
        return out
    floor = zero_variance_p(est.test_units)
    out["p_floor"] = floor
    out["p_value"] = 1.0 if d == 0 else floor
    out["p_margin"] = floor if abs(d) > min_effect else 1.0
    out["p_equivalence"] = floor if (min_effect > 0 and abs(d) < min_effect) else 1.0
    out["note"] = ("zero estimated variance: every run and test unit agree; p-values are the exact bound "
                   f"of a sign-flip test over the {est.test_units} test units")
    return out


# ------------------------------------------------------------------------------------------- planning

MAX_SEEDS = 50
MAX_TEST_FACTOR = 20.0


def _pooled_tau2(comp: dict[str, Any]) -> tuple[float, float]:
    """With one run per disjoint fold: (training variance, mean sampling variance of a fold). The folds'
    spread mixes both; the sampling part is taken as shared by all runs of a fold, so more seeds help only
    through the training part."""
    groups = comp["groups"]
    sampling = sum(g["shared"] + g["churn"] for g in groups) / len(groups)
    return max(0.0, (comp.get("fold_spread") or 0.0) - sampling), sampling


def seeds_per_test_set(comp: dict[str, Any]) -> int:
    """Seeds in today's study: runs on a test set are its folds x seeds (one run per fold when pooled)."""
    if comp.get("pooled_over_folds"):
        return 1
    g0 = comp["groups"][0]
    return max(1, g0["runs"] // max(1, len(g0["folds"])))


def variance_at(comp: dict[str, Any], seeds_factor: Any, test_factor: Any) -> tuple[np.ndarray, np.ndarray]:
    """(variance, df) of the mean difference if every test set had ``test_factor`` times its units and
    every group ``seeds_factor`` times its runs (components from ``Estimate.components``); the factors
    may be arrays (broadcast)."""
    sf, tf = np.asarray(seeds_factor, float), np.asarray(test_factor, float)
    groups = comp["groups"]
    G = len(groups)
    if comp.get("pooled_over_folds"):
        tau2, sampling = _pooled_tau2(comp)
        var = (tau2 / sf + sampling / tf) / G
        return var, np.maximum(1.0, G * sf - 1) + 0 * tf
    num = np.zeros(np.broadcast(sf, tf).shape)
    den = np.zeros_like(num)
    df_num = np.zeros_like(num)
    for g in groups:
        R = g["runs"] * sf
        n = g["test_units"] * tf
        train = ((g["tau2"] or 0.0) / R + g["churn"] / (tf * R)) / G ** 2
        shared = g["shared"] / tf / G ** 2
        num = num + train + shared
        w = np.vectorize(seed_df_weight)(np.maximum(R - 1, 1.0)) if g["runs"] > 1 else 1.0
        df_num = df_num + train * w + shared
        if g["runs"] > 1:
            den = den + (train * w) ** 2 / np.maximum(R - 1, 1e-9)
        den = den + shared ** 2 / np.maximum(n - 1, 1e-9)
    df = np.where(den > 0, df_num ** 2 / np.where(den > 0, den, 1), np.inf)
    return num, df


def required_size(comp: dict[str, Any], effect: float, min_effect: float, alpha: float,
                  power: float = 0.8) -> dict[str, Any]:
    """Seeds (at today's test sets) or test units (at today's seeds) for the interval to clear the
    margin with probability ``power`` (normal approximation on the t quantile) if the difference stays
    at ``effect``; None for a direction that cannot within ``MAX_SEEDS`` / ``MAX_TEST_FACTOR``."""
    room = abs(effect) - min_effect if abs(effect) > min_effect else min_effect - abs(effect)
    seeds_now = seeds_per_test_set(comp)
    units = sum(g["test_units"] for g in comp["groups"])
    out: dict[str, Any] = {"power": power, "seeds": None, "test_units": None}
    if not np.isfinite(room) or room <= 0:
        out["note"] = "the observed difference sits on the margin: no study size decides it"
        return out

    def enough(sf: np.ndarray, tf: np.ndarray) -> np.ndarray:
        var, df = variance_at(comp, sf, tf)
        need = stats.t.ppf(1 - alpha / 2, np.maximum(df, 1.0)) + stats.norm.ppf(power)
        return need * np.sqrt(var) < room

    seeds = np.arange(1, MAX_SEEDS + 1)
    ok = enough(seeds / seeds_now, np.ones(len(seeds)))
    if ok.any():
        out["seeds"] = int(seeds[ok.argmax()])
    factors = np.geomspace(1.0, MAX_TEST_FACTOR, 60)
    ok = enough(np.ones(len(factors)), factors)
    if ok.any():
        out["test_units"] = int(np.ceil(factors[ok.argmax()] * units))
    if out["seeds"] is None and out["test_units"] is None:
        out["note"] = (f"neither <= {MAX_SEEDS} seeds nor <= {MAX_TEST_FACTOR:g}x test units alone; both "
                       f"together might (bakeoff plan)")
    return out


def simulate_power(comp: dict[str, Any], effect: float, min_effect: float, alpha: float, seeds_factor: float,
                   test_factor: float, sims: int = 2000, seed: int = 0) -> dict[str, float]:
    """Monte Carlo: studies drawn from the estimated components at another size, each judged by the same
    rule as ``estimate`` + ``claim_tests`` (crossed estimate with Satterthwaite df, or the t test over
    folds with one run each). Returns P(better beyond the margin), P(equivalent) and the mean half-width
    of the interval. The jackknife's estimates are drawn as scaled chi-squares on n - 1 df."""
    rng = np.random.default_rng(seed)
    groups = comp["groups"]
    G = len(groups)
    pooled = bool(comp.get("pooled_over_folds"))
    if pooled:
        tau2_all, _ = _pooled_tau2(comp)
    group_means, var_parts = [], []
    for g in groups:
        R = max(1, int(round(g["runs"] * seeds_factor)))
        n = max(2, int(round(g["test_units"] * test_factor)))
        if pooled:
            tau2, shared, churn = tau2_all, (g["shared"] + g["churn"]) / test_factor, 0.0
        else:
            tau2, shared, churn = (g["tau2"] or 0.0), g["shared"] / test_factor, g["churn"] / test_factor
        d = (rng.normal(0, np.sqrt(tau2), (sims, R)) + rng.normal(0, np.sqrt(churn), (sims, R))
             + rng.normal(0, np.sqrt(shared), (sims, 1)))
        group_means.append(d.mean(1))
        if R >= 2:
            var_parts += [(d.var(1, ddof=1) / R, R - 1, seed_df_weight(R - 1)),
                          (shared * rng.chisquare(n - 1, sims) / (n - 1), n - 1, 1.0)]
        else:
            var_parts += [((shared + churn) * rng.chisquare(n - 1, sims) / (n - 1), n - 1, 1.0)]
    M = np.stack(group_means, axis=1)
    means = M.mean(1) + effect
    if G >= 2 and all(max(1, int(round(g["runs"] * seeds_factor))) == 1 for g in groups):
        var_hat, df = M.var(1, ddof=1) / G, np.full(sims, G - 1.0)
    else:
        var_hat = sum(a for a, _, _ in var_parts) / G ** 2
        num = sum(a * w for a, _, w in var_parts) / G ** 2
        den = sum((a * w / G ** 2) ** 2 / d for a, d, w in var_parts)
        df = np.where(den > 0, num ** 2 / np.where(den > 0, den, 1), np.inf)
    se = np.sqrt(var_hat)
    q = stats.t.ppf(1 - alpha / 2, df)
    lo, hi = means - q * se, means + q * se
    q90 = stats.t.ppf(1 - alpha, df)
    better = (lo > min_effect) if effect >= 0 else (hi < -min_effect)
    equiv = (np.abs(means) + q90 * se < min_effect) if min_effect > 0 else np.zeros(sims, bool)
    return {"p_better": float(better.mean()), "p_equivalent": float(equiv.mean()),
            "half_width": float(np.mean(q * se))}
