"""What the published "+3.2% accuracy" SE-ResNet3D vs Simple CNN result can and cannot show.

Reconstructs the two models' validation confusion matrices on the smallest set consistent with the quoted
figures (250 patches, 45 true spots; 42 found by both; 15 vs 7 false positives) and runs bakeoff's
paired tests on them. Run: python examples/published_scenario.py
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from bakeoff.config import EvaluationConfig
from bakeoff.stats.compare import adjust_pairs, compare_pair
from bakeoff.stats.paired import mcnemar_exact, paired_runs
from bakeoff.tasks import get_task

N, POS = 250, 45
y = np.r_[np.ones(POS, int), np.zeros(N - POS, int)]


def predictions(false_pos: np.ndarray) -> np.ndarray:
    hard = np.r_[np.ones(42, int), np.zeros(3, int), np.zeros(N - POS, int)]  # 42 of 45 found, as quoted
    hard[POS + false_pos] = 1
    return hard


def report(label: str, cnn_fp: np.ndarray, se_fp: np.ndarray) -> None:
    cnn, se = predictions(cnn_fp), predictions(se_fp)
    acc = lambda h: np.mean(h == y)  # noqa: E731
    prec = lambda h: np.sum(h & y) / np.sum(h)  # noqa: E731
    print(f"\n{label}")
    print(f"  accuracy SE {acc(se):.3f} vs CNN {acc(cnn):.3f}; precision {prec(se):.3f} vs {prec(cnn):.3f}; "
          f"recall {np.mean(se[:POS]):.3f} both")
    m = mcnemar_exact(se == y, cnn == y)
    print(f"  exact McNemar: SE-only correct {m['a_only_correct']}, CNN-only correct {m['b_only_correct']}, "
          f"p = {m['p_value']:.4f}")
    ids = np.arange(N)
    runs = paired_runs(get_task("binary_classification"), "accuracy",
                       {(0, 0): {"ids": ids, "y": y, "probs": se.astype(float)}},
                       {(0, 0): {"ids": ids, "y": y, "probs": cnn.astype(float)}})
    pair = compare_pair(runs, "SE-ResNet3D", "Simple CNN", EvaluationConfig(primary="accuracy", min_effect=0.02),
                        extras=False)
    adjust_pairs([pair], "accuracy")
    print(f"  accuracy difference {pair['difference']:+.3f}, 95% CI [{pair['ci_low']:+.3f}, {pair['ci_high']:+.3f}] "
          f"(paired t on the patches), p = {pair['p_value']:.4f}; verdict with min_effect 0.02: {pair['verdict']}")
    need = pair.get("to_resolve") or {}
    if need.get("test_units"):
        print(f"  to decide against the 0.02 margin with 80% power: about {need['test_units']:,} test patches, "
              f"if the difference held (a verdict on these two trained models: one seed)")
    elif need:
        from bakeoff.stats.design import MAX_TEST_FACTOR

        print(f"  to decide against the 0.02 margin with 80% power: more than {int(MAX_TEST_FACTOR * N):,} test "
              f"patches ({MAX_TEST_FACTOR:g}x this test set), if the difference held")


if __name__ == "__main__":
    # Which negatives each model calls positive is not published: the two extremes bracket every case.
    report("Nested false positives (SE's 7 are among CNN's 15): the most favourable case for SE",
           cnn_fp=np.arange(15), se_fp=np.arange(7))
    report("Disjoint false positives: the least favourable case",
           cnn_fp=np.arange(15), se_fp=np.arange(15, 22))
    # AUROC 0.973 vs 0.976: the Hanley-McNeil standard error of one AUC of 0.975 on 45 vs 205 samples.
    a, n1, n2 = 0.975, POS, N - POS
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se_auc = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2))
    print(f"\nAUROC 0.973 vs 0.976: one AUC here has a standard error of about {se_auc:.3f}; a 0.003 "
          f"difference is {0.003 / se_auc:.2f} standard errors of a single AUC (the paired difference is "
          f"smaller only as far as the two models' scores correlate). p for the null of equal AUCs, if the "
          f"scores were independent: {2 * stats.norm.sf(0.003 / (se_auc * np.sqrt(2))):.2f}")
    print("\nAll of this is one split and one seed: none of it says whether retraining would flip the result. "
          "bakeoff's default is several seeds, and its verdicts model seed-to-seed variation (docs/statistics.md).")
