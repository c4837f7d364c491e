"""The design model behind every verdict, against reference formulas, and one test per defect of issue 10."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score

from bakeoff.config import EvaluationConfig
from bakeoff.measure.weighted import weighted_binary_metrics
from bakeoff.stats.compare import adjust_pairs
from bakeoff.stats.design import (
    PAIRED_LEVEL,
    estimate,
    group_by_test_set,
    jackknife_values,
    run_spread,
    runs_vary_together,
    satterthwaite,
)
from bakeoff.stats.paired import delong
from tests.stats.helpers import Dense, Sample, compare


def _ev(metric="accuracy", **kw):
    return EvaluationConfig(primary=metric, **kw)


def _binary(rng, n=200, seeds=1, folds=1, shared=True, skill_a=1.0, skill_b=1.0):
    sets = [np.arange(n)] * folds if shared else [np.arange(f * n, (f + 1) * n) for f in range(folds)]
    y, a, b, ids = {}, {}, {}, {}
    for f, s_ids in enumerate(sets):
        yy = (np.arange(len(s_ids)) % 3 == 0).astype(int)
        y[f], ids[f] = yy, s_ids
        for s in range(seeds):
            a[s, f] = 1 / (1 + np.exp(-(skill_a * (2 * yy - 1) + rng.normal(size=len(yy)))))
            b[s, f] = 1 / (1 + np.exp(-(skill_b * (2 * yy - 1) + rng.normal(size=len(yy)))))
    return Sample(y=y, a=a, b=b, ids=ids)


def test_weighted_metrics_match_sklearn_sample_weights():
    rng = np.random.default_rng(0)
    y = (rng.random(150) < 0.4).astype(int)
    p = np.round(rng.random(150), 2)  # ties
    w = rng.integers(0, 4, 150).astype(float)
    got = weighted_binary_metrics(p, y, w[None], 0.5)
    assert got["auroc"][0] == pytest.approx(roc_auc_score(y, p, sample_weight=w), abs=1e-12)
    assert got["accuracy"][0] == pytest.approx(accuracy_score(y, p > 0.5, sample_weight=w), abs=1e-12)
    assert got["brier"][0] == pytest.approx(brier_score_loss(y, p, sample_weight=w), abs=1e-12)


def test_jackknife_of_a_mean_is_the_sample_variance_over_n():
    x = np.random.default_rng(1).normal(size=40)
    loo = jackknife_values(lambda W: (W @ x) / W.sum(1), len(x))
    var = (len(x) - 1) / len(x) * np.sum((loo - loo.mean()) ** 2)
    assert var == pytest.approx(np.var(x, ddof=1) / len(x), rel=1e-10)


def test_one_run_accuracy_is_the_paired_t_test_on_samples():
    runs = _binary(np.random.default_rng(2), skill_a=1.3)
    res = compare(runs, "A", "B", _ev("accuracy"), extras=False)
    ca = (runs.a[0, 0] >= 0.5) == runs.y[0]
    cb = (runs.b[0, 0] >= 0.5) == runs.y[0]
    ref = stats.ttest_rel(ca.astype(float), cb.astype(float))
    assert res["difference"] == pytest.approx(ca.mean() - cb.mean())
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert res["df"] == pytest.approx(len(ca) - 1)


def test_seeds_on_one_test_set_give_the_crossed_anova_variance():
    """Accuracy differences over R seeds x n samples: the variance of the grand mean is the two-way
    random-effects ANOVA estimate (MS_seeds + MS_samples - MS_interaction) / (n R) (shared seed streams, the
    default); with per-contender streams, the paired differences' spread over seeds (MS_seeds / n) replaced
    by the two contenders' own spreads pooled (``run_spread``)."""
    rng = np.random.default_rng(3)
    runs = _binary(rng, n=120, seeds=4)
    res = compare(runs, "A", "B", _ev("accuracy"), extras=False, independent_runs=True)
    shared = compare(runs, "A", "B", _ev("accuracy"), extras=False)
    correct = {w: np.stack([((p[s, 0] >= 0.5) == runs.y[0]).astype(float) for s in range(4)])
               for w, p in (("a", runs.a), ("b", runs.b))}
    D = correct["a"] - correct["b"]  # (R, n)
    R, n = D.shape
    grand = D.mean()
    ms_r = n * np.sum((D.mean(1) - grand) ** 2) / (R - 1)
    ms_c = R * np.sum((D.mean(0) - grand) ** 2) / (n - 1)
    resid = D - D.mean(1, keepdims=True) - D.mean(0, keepdims=True) + grand
    ms_rc = np.sum(resid ** 2) / ((R - 1) * (n - 1))
    pooled = sum(np.var(correct[w].mean(1), ddof=1) for w in "ab")
    loo = {w: (correct[w].sum(1, keepdims=True) - correct[w]) / (n - 1) for w in "ab"}
    assert not runs_vary_together(loo["a"], loo["b"])  # independent runs: pooled
    assert res["se"] ** 2 == pytest.approx((n * pooled + ms_c - ms_rc) / (n * R), rel=1e-9)
    points = {(s, 0): float(D[s].mean()) for s in range(R)}
    loos = {(s, 0): (D[s].sum() - D[s]) / (n - 1) for s in range(R)}
    assert estimate(points, loos, [0]).var == pytest.approx((ms_r + ms_c - ms_rc) / (n * R), rel=1e-9)
    assert shared["se"] ** 2 == pytest.approx((ms_r + ms_c - ms_rc) / (n * R), rel=1e-9)
    assert res["df"] > shared["df"]  # pooled: two spreads of R - 1 df each


def test_the_seed_spread_is_pooled_over_the_contenders_unless_their_runs_vary_together():
    """Pooled: Var(A) + Var(B) on Satterthwaite's degrees of freedom of two spreads of R - 1 each; the
    paired spread where a seed's runs of the two err on the same units (identical runs: no seed term)."""
    rng = np.random.default_rng(0)
    a, b = np.array([0.80, 0.84, 0.78]), np.array([0.75, 0.74, 0.79])
    la, lb = a[:, None] + rng.normal(0, 0.01, (3, 50)), b[:, None] + rng.normal(0, 0.01, (3, 50))
    s2, parts, share = run_spread(a - b, ((a, la), (b, lb)))
    va, vb = np.var(a, ddof=1), np.var(b, ddof=1)
    assert s2 == pytest.approx(va + vb) and share == pytest.approx(va / (va + vb))
    assert [d for _, d in parts] == [2, 2] and satterthwaite(parts) > 2
    s2, parts, share = run_spread(a - a, ((a, la), (a, la)))  # an A/A study of identical runs
    assert s2 == 0.0 and share is None and [d for _, d in parts] == [2]
    coupled = 0.6 * la + 0.4 * (b[:, None] + rng.normal(0, 0.01, (3, 50)))  # one network, another setting
    s2, parts, share = run_spread(a - coupled.mean(1), ((a, la), (coupled.mean(1), coupled)))
    assert share is None and s2 == pytest.approx(np.var(a - coupled.mean(1), ddof=1))


@pytest.mark.parametrize("R, n, power", [(2, 40, 0.25), (3, 200, 0.99), (5, 20, 0.5)])
def test_runs_vary_together_holds_its_level_and_finds_coupled_runs(R, n, power):
    """Independent runs are called coupled at about PAIRED_LEVEL (2,000 simulated pairs of (R, n)
    leave-one-out tables with run effects); runs whose unit errors correlate 0.3 almost always."""
    rng = np.random.default_rng(R)
    calls, found = [], []
    for _ in range(2000):
        base = rng.normal(size=(1, n))  # the units' own difficulty, shared by every run
        ea, eb = rng.normal(size=(2, R, n))
        la = base + rng.normal(size=(R, 1)) + ea
        calls.append(runs_vary_together(la, base + rng.normal(size=(R, 1)) + eb))
        found.append(runs_vary_together(la, base + rng.normal(size=(R, 1)) + 0.3 * ea + np.sqrt(0.91) * eb))
    assert abs(np.mean(calls) - PAIRED_LEVEL) < 0.008
    print(R, n, np.mean(calls), np.mean(found))
    assert np.mean(found) > power  # the normal approximation's power: 0.34, 1.0, 0.65


def test_disjoint_folds_with_one_run_each_is_the_t_test_over_folds():
    runs = _binary(np.random.default_rng(4), n=60, folds=5, shared=False, skill_a=1.2)
    res = compare(runs, "A", "B", _ev("auroc"), extras=False)
    d = [roc_auc_score(runs.y[f], runs.a[0, f]) - roc_auc_score(runs.y[f], runs.b[0, f]) for f in range(5)]
    # Nadeau & Bengio's corrected resampled t: the folds' variance x (1/k + n_test/n_train), n_test/n_train = 1/(k-1)
    t = np.mean(d) / np.sqrt(np.var(d, ddof=1) * (1 / 5 + 1 / 4))
    assert res["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 4), rel=1e-9)
    assert res["p_value"] > stats.ttest_1samp(d, 0).pvalue  # wider than the plain t test over folds
    assert res["design"]["test_sets"] == "disjoint" and res["df"] == 4


def test_group_by_test_set():
    a, b = np.array(["x", "y"]), np.array(["z"])
    assert group_by_test_set([0, 1, 2], {0: a, 1: a[::-1], 2: a}) == ([[0, 1, 2]], "shared")
    assert group_by_test_set([0, 1], {0: a, 1: b}) == ([[0], [1]], "disjoint")
    assert group_by_test_set([0, 1], {0: a, 1: np.array(["y", "q"])})[1] == "overlapping"
    assert group_by_test_set([0], None) == ([[0]], "single")


# ---- one test per defect of issue 10 (each failed on 858dedb and passes now) ----------------------------


def _dice_runs(per_seed_diffs, n=200, noise=0.002, seed=0, folds=1, shared=True):
    rng = np.random.default_rng(seed)
    den = rng.uniform(500, 1500, (n, 1))
    base = 0.7 + 0.05 * rng.normal(size=(n, 1))
    a, b = {}, {}
    for f in range(folds):
        for s, d in enumerate(per_seed_diffs):
            b[s, f] = (base * den, den)
            a[s, f] = ((base + d + noise * rng.normal(size=(n, 1))) * den, den)
    ids = {f: (np.arange(n) if shared else np.arange(n) + f * n).astype(str) for f in range(folds)}
    return Dense(a, b, {f: n for f in range(folds)}, ids=ids)


def test_defect1_three_seeds_disagreeing_are_not_significant():
    """Seeds with differences +0.01, +0.03, +0.05 on 200 images: 858dedb said 'A better', p = 0.001; the
    seeds' own t-interval includes 0, and so must the verdict's."""
    runs = _dice_runs([0.01, 0.03, 0.05])
    res = compare(runs, "A", "B", _ev("mean_dice"), extras=False)
    lo, hi = stats.t.interval(0.95, 2, loc=0.03, scale=np.std([0.01, 0.03, 0.05], ddof=1) / np.sqrt(3))
    assert res["ci_low"] < 0 < res["ci_high"]
    assert res["ci_low"] == pytest.approx(lo, abs=0.003) and res["ci_high"] == pytest.approx(hi, abs=0.003)
    assert res["p_value"] > 0.05 and res["verdict"] == "inconclusive"


def test_defect2_copying_a_run_into_five_shared_folds_changes_nothing():
    one = _binary(np.random.default_rng(5), n=150, skill_a=1.15)
    five = Sample(y={f: one.y[0] for f in range(5)}, a={(0, f): one.a[0, 0] for f in range(5)},
                      b={(0, f): one.b[0, 0] for f in range(5)}, ids={f: np.arange(150) for f in range(5)})
    r1 = compare(one, "A", "B", _ev("auroc"), extras=False)
    r5 = compare(five, "A", "B", _ev("auroc"), extras=False)
    assert r5["design"]["test_sets"] == "shared"
    assert r5["p_value"] == pytest.approx(r1["p_value"], rel=1e-9)
    assert (r5["ci_low"], r5["ci_high"]) == pytest.approx((r1["ci_low"], r1["ci_high"]), rel=1e-9)
    assert r5["n_test_samples"] == 150


def test_defect3_bayesian_probabilities_follow_the_metric_direction():
    """Brier (lower is better) over 5 disjoint folds where A is clearly better: P(A better) must be high."""
    runs = _binary(np.random.default_rng(6), n=80, folds=5, shared=False, skill_a=2.5, skill_b=0.5)
    res = compare(runs, "A", "B", _ev("brier"))
    assert res["difference"] < 0 and res["verdict"] == "A better"
    ct = res["across_runs"]["correlated_ttest"]
    assert ct["p_a_better"] > 0.95 and ct["p_b_better"] < 0.05


def test_defect4_tiny_test_sets_and_large_families_can_reach_better():
    # five images where A is better on every one: the exact permutation floor 0.0625 made this inconclusive
    runs = _dice_runs([0.10], n=5, noise=0.01)
    res = compare(runs, "A", "B", _ev("mean_dice"), extras=False)
    adjust_pairs([res], "mean_dice")
    assert res["verdict"] == "A better (these trained weights, 1 seed)" and res["p_value_holm"] < 0.05
    # 55 pairs: the permutation floor (1 / 1000) x 55 was 0.055; a clear pair must still be called
    pairs = [dict(res, a=f"A{i}") for i in range(55)]
    adjust_pairs(pairs, "mean_dice")
    assert all(p["verdict"].startswith("A") and "better" in p["verdict"] for p in pairs)
    # a design that truly cannot reach significance says so: zero variance on 3 images, 5 pairs
    flat = _dice_runs([0.10], n=3, noise=0.0)
    res0 = compare(flat, "A", "B", _ev("mean_dice"), extras=False)
    assert res0["p_floor"] == pytest.approx(0.25)
    fam = [dict(res0, a=f"A{i}") for i in range(5)]
    adjust_pairs(fam, "mean_dice")
    assert fam[0]["verdict"] == "inconclusive" and "cannot reach significance" in fam[0]["unreachable"]


def test_defect5_what_would_decide_knows_which_source_dominates():
    """Test-image variance dominates (seeds agree exactly): more seeds cannot decide, more images can.
    858dedb answered '~57 seeds' for such a pair."""
    rng = np.random.default_rng(7)
    n = 30
    den = rng.uniform(500, 1500, (n, 1))
    base = 0.7 + 0.05 * rng.normal(size=(n, 1))
    gain = 0.01 + 0.05 * rng.normal(size=(n, 1))  # a per-image effect, identical for every seed
    runs = Dense({(s, 0): ((base + gain) * den, den) for s in range(3)}, {(s, 0): (base * den, den) for s in range(3)},
                     {0: n}, ids={0: np.arange(n).astype(str)})
    res = compare(runs, "A", "B", _ev("mean_dice"), extras=False)
    adjust_pairs([res], "mean_dice")
    assert res["verdict"] == "inconclusive"
    need = res["to_resolve"]
    assert need["seeds"] is None and need["test_units"] > n
    assert res["design"]["variance_shares"]["test_units"] > 0.9


def test_defect6_delong_never_gives_zero_or_nan():
    y = np.array([1, 0, 0, 0, 0, 0])
    one_pos = delong(y, np.array([0.9, 0.1, 0.2, 0.3, 0.4, 0.5]), np.array([0.3, 0.1, 0.2, 0.4, 0.5, 0.6]))
    assert 0 < one_pos["p_value"] <= 1 and np.isfinite(one_pos["p_value"])
    y = np.array([1, 1, 1, 0, 0, 0])
    perfect = delong(y, np.array([0.9, 0.8, 0.7, 0.1, 0.2, 0.3]), np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.7]))
    assert 0 < perfect["p_value"] <= 1
    # exact over the 2^6 swap patterns: the identity and the full swap are the only ones as extreme
    assert perfect["p_value"] == pytest.approx(2 / 64)
    same = delong(y, np.full(6, 0.5), np.full(6, 0.5))
    assert same["p_value"] == 1.0


def test_defect7_tests_of_independent_replicates_are_not_run_on_one_test_set(tmp_path):
    from bakeoff.stats.calibration import Scenario, binary_runs
    from bakeoff.stats.ranks import friedman_ranks, rank_table
    from bakeoff.stats.tables import summarize

    # samples have their own difficulty, shared by every seed: the runs' test errors are correlated
    runs = binary_runs(Scenario("s", "binary", "auroc", seeds=6), np.random.default_rng(8))
    res = compare(runs, "A", "B", _ev("auroc"))
    assert res["across_runs"]["wilcoxon"]["p_value"] is None and "not independent" in res["across_runs"]["note"]
    assert res["across_runs"]["bca"]["ci_low"] is None
    rows = [{"contender": c, "seed": s, "fold": 0, "status": "done", "run_id": f"{c}{s}",
             "test_auroc": 0.8 + 0.01 * k + 0.001 * s} for k, c in enumerate("xyz") for s in range(8)]
    df = pd.DataFrame(rows)
    ranking = friedman_ranks(rank_table(df, "test_auroc", list("xyz"), True), independent=False)
    assert ranking["p_value"] is None and ranking["average_ranks"]["z"] == 1.0
    summary = summarize(df, list("xyz")).set_index(["contender", "metric"])
    assert np.isnan(summary.loc[("x", "test_auroc"), "ci_low"])  # no t-interval over runs on one test set
    given = {"test_auroc": {"x": {"ci_low": 0.7, "ci_high": 0.9, "method": "design"}}}
    summary = summarize(df, list("xyz"), given).set_index(["contender", "metric"])
    assert summary.loc[("x", "test_auroc"), "ci_low"] == 0.7
    # the contender's own interval covers the shared test set: wider than a t-interval over the 6 seeds
    own = res["contenders"]["A"]
    scores = [roc_auc_score(runs.parts_a[s, 0]["y"], runs.parts_a[s, 0]["probs"]) for s in range(6)]
    t_lo, t_hi = stats.t.interval(0.95, 5, loc=np.mean(scores), scale=stats.sem(scores))
    assert own["ci_high"] - own["ci_low"] > 2 * (t_hi - t_lo)


def test_defect8_equivalence_is_a_tost_at_alpha_and_holm_is_fast():
    # per-image differences centred on 0.004 with a 95% interval reaching past the 0.02 margin but a
    # 90% interval inside it: TOST at alpha = 0.05 says equivalent
    rng = np.random.default_rng(9)
    runs = _dice_runs([0.0], n=12, noise=0.0, seed=9)
    (num, den) = runs.a[0, 0]
    runs.a[0, 0] = (num + (0.004 + 0.025 * rng.standard_t(30, size=num.shape)) * den, den)
    res = compare(runs, "A", "B", _ev("mean_dice", min_effect=0.02), extras=False)
    lo90, hi90 = res["ci_equivalence"] if "ci_equivalence" in res else (None, None)
    adjust_pairs([res], "mean_dice")
    assert "TOST" in res["equivalence_test"] and "90%" in res["equivalence_test"]
    inside90 = -0.02 < res["difference"] - stats.t.ppf(0.95, res["df"]) * res["se"] and \
        res["difference"] + stats.t.ppf(0.95, res["df"]) * res["se"] < 0.02
    assert res["verdict"].startswith("equivalent") == inside90
    assert lo90 is None or lo90 > -1
    from bakeoff.stats.across import holm

    start = time.perf_counter()
    for _ in range(200):
        holm([0.01, 0.02, 0.04])
    assert time.perf_counter() - start < 0.5


def test_estimate_is_robust_to_undefined_values():
    pts = {(0, 0): 0.1, (1, 0): float("nan"), (2, 0): 0.2}
    loos = {k: np.full(5, v) for k, v in pts.items()}
    est = estimate(pts, loos, [0])
    assert est.mean == pytest.approx(0.15) and est.groups[0].runs == 2


@pytest.mark.parametrize("metric", ["accuracy", "f1", "mcc", "auroc", "brier", "balanced_accuracy"])
def test_closed_form_leave_one_out_equals_the_weighted_jackknife(metric):
    from bakeoff.measure.weighted import leave_one_out_metric

    rng = np.random.default_rng(10)
    y = (rng.random(120) < 0.35).astype(int)
    p = np.round(rng.random(120), 2)  # ties
    slow = jackknife_values(lambda W: weighted_binary_metrics(p, y, W, 0.5, (metric,))[metric], len(y))
    assert leave_one_out_metric(p, y, 0.5, metric) == pytest.approx(slow, abs=1e-12)
    keep = np.arange(len(y)) != 7
    if metric == "auroc":  # and against scikit-learn on the data without sample 7
        assert leave_one_out_metric(p, y, 0.5, metric)[7] == pytest.approx(roc_auc_score(y[keep], p[keep]))


def test_a_contenders_own_interval_covers_its_true_score():
    """Defect 7: a t-interval over seeds on one test set covered the true AUROC 0.76 of the time with 3
    seeds and 0.45 with 8 in the audit; the design interval covers it about 95% of the time."""
    from bakeoff.stats.calibration import Scenario, binary_runs

    rng = np.random.default_rng(0)
    big = binary_runs(Scenario("big", "binary", "auroc", seeds=1, n=400_000), rng)
    truth = roc_auc_score(big.parts_a[0, 0]["y"], big.parts_a[0, 0]["probs"])  # the population AUROC of a run (no seed variation)
    for seeds in (3, 8):
        hit = hit_t = 0
        for _ in range(300):
            runs = binary_runs(Scenario("s", "binary", "auroc", seeds=seeds), rng)
            own = compare(runs, "A", "B", _ev("auroc"), extras=False)["contenders"]["A"]
            hit += own["ci_low"] <= truth <= own["ci_high"]
            scores = [roc_auc_score(runs.parts_a[s, 0]["y"], runs.parts_a[s, 0]["probs"]) for s in range(seeds)]
            lo, hi = stats.t.interval(0.95, seeds - 1, loc=np.mean(scores), scale=stats.sem(scores))
            hit_t += lo <= truth <= hi
        print(f"{seeds} seeds: design interval covers {hit / 300:.2f}, t over seeds {hit_t / 300:.2f}")
        assert hit / 300 >= 0.90
        if seeds == 8:
            assert hit_t / 300 < 0.75


def test_a_one_seed_pairs_design_line_says_its_scope_once():
    """The terminal's design line of a one-seed pair said 'about these trained models' twice (the design note
    and the verdict's scope); the scope alone says it now, and comparison.json keeps both."""
    from bakeoff.report.build import design_lines
    from bakeoff.stats.design import ONE_RUN_NOTE

    res = compare(_binary(np.random.default_rng(5), n=150, skill_a=1.15), "A", "B", _ev("auroc"), extras=False)
    assert ONE_RUN_NOTE in res["design"]["notes"] and res["scope"] == "trained weights"
    (line,) = design_lines({"pairs": [res]})
    assert "seed-to-seed variation is not estimated" not in line
    assert line.count("about these two trained models") == 1, line
