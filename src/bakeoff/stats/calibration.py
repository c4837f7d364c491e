"""Simulated studies for calibrating the verdict rule: per-sample predictions of two contenders over
seeds and folds, drawn under the null (no difference) or under a real effect, judged by the very
functions a real study calls (``paired_runs`` and ``compare_pair`` through the metric registry, then
``adjust_pairs``).

The generators (ours: no library simulates paired model predictions):
- binary: a logit ``sep * (2y - 1) + 0.8 z_i + 0.4 k_i + 0.6 e`` per run; ``z_i`` is the test sample's
  own difficulty (shared by every run and both contenders), ``k_i`` the contender's own affinity for
  that sample (shared by its seeds), ``e`` per-run noise (churn) and ``sep`` the run's quality,
  ``1.2 + effect + tau * N(0, 1)`` (tau: seed-to-seed quality variation, in logit units);
- ordinal / multi-class: a latent grade ``y + z_i + sigma (0.5 k_i + 0.85 e)`` read off as the nearest
  grade, with a per-run noise level ``sigma = 0.9 exp(tau N(0, 1)) - effect``;
- dense: per image and class, Dice = ``0.75 + g_i + k_i + u + h + effect`` (image effect g common to
  both contenders, the contender's own image effect k (sd 0.02) shared by its seeds, run effect u with
  sd tau, per-run per-image churn h, sd 0.03) on a random region size, as the (num, den) tables the
  task saves;
- instances: per image, ``1 + Poisson(10)`` true objects; each predicted object's IoU with its true one
  is ``sigmoid(1.2 + g_i + k_i + u + h + e + effect)`` (image g, sd 0.5, common to both contenders; the
  contender's own image effect k, sd 0.15; run effect u with sd tau; per-run per-image churn h, sd 0.1;
  per-object e, sd 1, in logit units), a true positive at each IoU threshold it reaches (0.50 ... 0.90),
  else a false positive and a false negative, plus ``Poisson(1)`` spurious objects; the image's AP at a
  threshold is TP / (TP + FP + FN) and ``mean_ap`` their mean, as the task's per-image table.
In every generator ``pair_corr`` couples a seed's run of B to its run of A (the run effect and the
per-run noise, correlation ``pair_corr``), as when both contenders are one network trained with another
setting; ``run_corr`` couples only their run effects (a seed's shared data order or augmentation stream
making both runs good or bad, or, negative, one good where the other is bad, without erring on the same
units); ``tau_ratio`` makes A's seed-to-seed sd that many times B's. By default a seed's runs of the two
contenders are independent. ``streams`` is the study's ``protocol.seed_streams``: the verdict pools the
two contenders' seed spreads only for ``per_contender`` streams (independent runs by construction), and a
scenario of those streams must not couple the runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import stats

from bakeoff.config import EvaluationConfig


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # binary | multiclass | dense | instances
    metric: str
    seeds: int = 3
    folds: int = 1
    shared: bool = False  # folds share one test set
    n: int = 200  # test samples (images for dense) per test set; disjoint folds split them
    tau: float = 0.0
    effect: float = 0.0
    min_effect: float = 0.0
    expect: str = "null"  # null | margin | power
    # correlation of one seed's run quality across folds (the same seed in every fold, overlapping training)
    fold_corr: float = 0.0
    seed_sd_known: bool = False  # one seed, judged with evaluation.seed_sd set to the true seed-to-seed sd
    # correlation of A's and B's run of one seed (their quality and their per-sample noise), as when both
    # contenders are the same network (the same initialisation and data order) trained with another setting
    pair_corr: float = 0.0
    run_corr: float = 0.0  # correlation of A's and B's run effect of one seed only (not their per-unit noise)
    tau_ratio: float = 1.0  # A's seed-to-seed sd over B's
    streams: str = "shared"  # protocol.seed_streams of the simulated study

    def __post_init__(self) -> None:
        if self.streams == "per_contender" and (self.pair_corr or self.run_corr):
            raise ValueError(f"{self.name}: per-contender seed streams make a seed's runs independent")


def _run_effects(sc: Scenario, rng: np.random.Generator) -> dict[tuple[int, int, str], float]:
    """Each run's quality deviation (sd ``tau``, A's ``tau_ratio`` times that): a part shared by one seed's
    runs in every fold (correlation ``fold_corr``) and the run's own; B's correlated ``pair_corr`` (or
    ``run_corr``) with A's."""
    seed_part = {(s, w): rng.normal() for s in range(sc.seeds) for w in "ab"}
    r = sc.fold_corr
    out = {(s, f, w): np.sqrt(r) * seed_part[s, w] + np.sqrt(1 - r) * rng.normal()
           for s in range(sc.seeds) for f in range(sc.folds) for w in "ab"}
    rho = sc.pair_corr or sc.run_corr
    if rho:
        for s in range(sc.seeds):
            for f in range(sc.folds):
                out[s, f, "b"] = _coupled(rho, out[s, f, "a"], out[s, f, "b"])
    return {k: sc.tau * (sc.tau_ratio if k[2] == "a" else 1.0) * v for k, v in out.items()}


def _coupled(rho: float, a: Any, b: Any) -> Any:
    """B's draw correlated ``rho`` with A's (both standardised alike)."""
    return rho * a + np.sqrt(1 - rho ** 2) * b


def _run_noise(sc: Scenario, rng: np.random.Generator, size: Any, sd: float = 1.0) -> dict[str, np.ndarray]:
    """One seed's per-sample run noise for A and B, correlated ``pair_corr``."""
    e = {w: rng.normal(0, sd, size) for w in "ab"}
    if sc.pair_corr:
        e["b"] = _coupled(sc.pair_corr, e["a"], e["b"])
    return e


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _test_sets(sc: Scenario) -> list[np.ndarray]:
    """Sample ids of each fold's test set."""
    if sc.folds == 1 or sc.shared:
        return [np.arange(sc.n)] * sc.folds
    per = sc.n // sc.folds
    return [np.arange(f * per, (f + 1) * per) for f in range(sc.folds)]


def _paired(sc: Scenario, task: Any, sets: list[np.ndarray], a: dict, b: dict, y: dict | None = None) -> Any:
    """The runs as a study pairs them: each run's test part (labels and probabilities, or for dense
    tasks the per-image tables) through ``paired_runs`` on the scenario's metric."""
    from bakeoff.stats.paired import paired_runs

    def part(key: tuple[int, int], v: Any) -> dict[str, Any]:
        ids = sets[key[1]]
        return {"ids": ids, "tables": {sc.metric: v}} if y is None else {"ids": ids, "y": y[key[1]], "probs": v}

    return paired_runs(task, sc.metric, {k: part(k, v) for k, v in a.items()}, {k: part(k, v) for k, v in b.items()})


def binary_runs(sc: Scenario, rng: np.random.Generator):
    from bakeoff.tasks import get_task

    sets = _test_sets(sc)
    y, a, b = {}, {}, {}
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    u = _run_effects(sc, rng)
    for f, ids in enumerate(sets):
        key = int(ids[0])
        if key not in cache:
            n = len(ids)
            yy = np.zeros(n, int)
            yy[rng.permutation(n)[: max(2, round(0.3 * n))]] = 1
            cache[key] = (yy, rng.normal(size=n), {"a": rng.normal(size=n), "b": rng.normal(size=n)})
        yy, z, k = cache[key]
        y[f] = yy
        for s in range(sc.seeds):
            e = _run_noise(sc, rng, len(yy))
            for which, out in (("a", a), ("b", b)):
                sep = 1.2 + (sc.effect if which == "a" else 0.0) + u[s, f, which]
                out[s, f] = _sigmoid(sep * (2 * yy - 1) + 0.8 * z + 0.4 * k[which] + 0.6 * e[which])
    return _paired(sc, get_task("binary_classification"), sets, a, b, y)


def multiclass_runs(sc: Scenario, rng: np.random.Generator, K: int = 5):
    from bakeoff.tasks import get_task

    sets = _test_sets(sc)
    y, a, b = {}, {}, {}
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    grades = np.arange(K)
    u = _run_effects(sc, rng)
    for f, ids in enumerate(sets):
        key = int(ids[0])
        if key not in cache:
            n = len(ids)
            cache[key] = (rng.permutation(np.arange(n) % K), 0.5 * rng.normal(size=n),
                          {"a": rng.normal(size=n), "b": rng.normal(size=n)})
        yy, z, k = cache[key]
        y[f] = yy
        for s in range(sc.seeds):
            e = _run_noise(sc, rng, len(yy))
            for which, out in (("a", a), ("b", b)):
                sigma = 0.9 * np.exp(u[s, f, which]) - (sc.effect if which == "a" else 0.0)
                latent = yy + z + sigma * (0.5 * k[which] + 0.85 * e[which])
                logits = -((latent[:, None] - grades[None]) ** 2)
                p = np.exp(logits - logits.max(1, keepdims=True))
                out[s, f] = p / p.sum(1, keepdims=True)
    return _paired(sc, get_task("ordinal_classification", K), sets, a, b, y)


def dense_runs(sc: Scenario, rng: np.random.Generator, classes: int = 2):
    from bakeoff.tasks import get_task

    sets = _test_sets(sc)
    a, b = {}, {}
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    u_run = _run_effects(sc, rng)
    for f, ids in enumerate(sets):
        key = int(ids[0])
        if key not in cache:
            n = len(ids)
            cache[key] = (rng.uniform(500, 2000, (n, classes)), rng.normal(0, 0.08, (n, classes)),
                          {"a": rng.normal(0, 0.02, (n, classes)), "b": rng.normal(0, 0.02, (n, classes))})
        den, g, k = cache[key]
        for s in range(sc.seeds):
            e = _run_noise(sc, rng, g.shape, 0.03)
            for which, out in (("a", a), ("b", b)):
                u = u_run[s, f, which]
                dice = 0.75 + g + k[which] + u + e[which] + (sc.effect if which == "a" else 0.0)
                out[s, f] = (np.clip(dice, 0.01, 0.99) * den, den.copy())
    return _paired(sc, get_task("semantic_segmentation", classes + 1), sets, a, b)


def instance_runs(sc: Scenario, rng: np.random.Generator):
    from bakeoff.tasks import get_task

    thresholds = 0.5 + 0.05 * np.arange(9)
    sets = _test_sets(sc)
    a, b = {}, {}
    cache: dict[int, tuple[np.ndarray, np.ndarray, dict]] = {}
    u_run = _run_effects(sc, rng)
    for f, ids in enumerate(sets):
        key = int(ids[0])
        if key not in cache:
            n = len(ids)
            cache[key] = (1 + rng.poisson(10, n), rng.normal(0, 0.5, n),
                          {"a": rng.normal(0, 0.15, n), "b": rng.normal(0, 0.15, n)})
        objects, g, k = cache[key]
        for s in range(sc.seeds):
            h = _run_noise(sc, rng, len(ids), 0.1)
            for which, out in (("a", a), ("b", b)):
                base = 1.2 + g + k[which] + u_run[s, f, which] + h[which] + (sc.effect if which == "a" else 0.0)
                ap = np.empty(len(ids))
                for i, (m, mu) in enumerate(zip(objects, base)):
                    iou = _sigmoid(mu + rng.normal(0, 1, m))
                    tp = (iou[:, None] >= thresholds).sum(0)
                    spurious = rng.poisson(1.0)
                    ap[i] = np.mean(tp / (tp + 2 * (m - tp) + spurious))  # TP / (TP + FP + FN)
                out[s, f] = (ap[:, None], np.ones((len(ids), 1)))
    return _paired(sc, get_task("instance_segmentation", 2), sets, a, b)


GENERATORS = {"binary": binary_runs, "multiclass": multiclass_runs, "dense": dense_runs, "instances": instance_runs}


def judge(sc: Scenario, runs: Any, ev: EvaluationConfig) -> dict[str, Any]:
    """One simulated study through the real comparison: the pair's result after Holm."""
    from bakeoff.stats import compare

    res = compare.compare_pair(runs, "A", "B", ev, extras=False, own_scale=False,
                               independent_runs=sc.streams == "per_contender")
    compare.adjust_pairs([res], ev.primary, ev.alpha, advise=False)
    return res


def run_scenario(sc: Scenario, sims: int, seed: int = 0, alpha: float = 0.05) -> dict[str, float]:
    """Rates over ``sims`` simulated studies: a false (or, under an effect, true) "better", a false
    "equivalent", and a "better beyond the margin" when the true difference sits on the margin."""
    rng = np.random.default_rng(seed)
    ev = EvaluationConfig(primary=sc.metric, min_effect=sc.min_effect, alpha=alpha, n_boot=200, n_permutations=99,
                          seed_sd=true_seed_sd(sc) if sc.seed_sd_known else None)
    counts = {"better": 0, "a_better": 0, "equivalent": 0, "recipe_better": 0}
    diffs = []
    for _ in range(sims):
        res = judge(sc, GENERATORS[sc.kind](sc, rng), ev)
        diffs.append(res["difference"] * (1 if res["higher_is_better"] else -1))
        v = res["verdict"]
        counts["better"] += "better" in v
        counts["a_better"] += v.startswith("A better")
        counts["equivalent"] += v.startswith("equivalent")
        counts["recipe_better"] += "better" in v and res["scope"] == "training recipe"  # a claim about the recipe
    d = np.array(diffs)
    # the oracle: a z test that knows the variance of the mean difference (its spread over these studies)
    oracle = float(np.mean(d / d.std(ddof=1) > stats.norm.ppf(1 - alpha / 2))) if sims > 2 and d.std() > 0 else 0.0
    return {**{k: c / sims for k, c in counts.items()}, "oracle_power": oracle}


# power rows run with both kinds of seed streams (the default shared and per-contender)
_POWER_POOLED = [
    Scenario("power: Dice, 10 images, 5 seeds, tau 0, +0.02", "dense", "mean_dice", seeds=5, n=10, effect=0.02,
             expect="power"),
    Scenario("power: Dice, 100 images, 3 seeds, tau 0, +0.01", "dense", "mean_dice", seeds=3, n=100, effect=0.01,
             expect="power"),
    Scenario("power: binary AUROC, 3 seeds, tau 0, sep +0.3", "binary", "auroc", seeds=3, effect=0.3,
             expect="power"),
    Scenario("power: binary AUROC, 3 seeds, tau 0.10, sep +0.3", "binary", "auroc", seeds=3, tau=0.10, effect=0.3,
             expect="power"),
]

# The table (issue 10), one row each; "power" rows carry a real effect.
# instance segmentation: per-image AP over IoU thresholds (instance_runs), whole images the units
INSTANCE_SCENARIOS = [
    Scenario("instances: mean AP, 10 images, 1 seed", "instances", "mean_ap", seeds=1, n=10),
    Scenario("instances: mean AP, 20 images, 3 seeds, tau 0.2", "instances", "mean_ap", seeds=3, n=20, tau=0.2),
    Scenario("instances: mean AP, 50 images, 5 seeds, tau 0.1", "instances", "mean_ap", seeds=5, n=50, tau=0.1),
    Scenario("instances: mean AP, 10 images x 5 disjoint folds, 3 seeds, tau 0.2", "instances", "mean_ap", seeds=3,
             folds=5, n=50, tau=0.2),
    Scenario("instances: mean AP, 20 images, 3 seeds, tau 0.3, a seed's run quality of A and B correlated -0.5",
             "instances", "mean_ap", seeds=3, n=20, tau=0.3, run_corr=-0.5),
    Scenario("power, instances: mean AP, 50 images, 5 seeds, tau 0.1, +0.3 logit", "instances", "mean_ap", seeds=5,
             n=50, tau=0.1, effect=0.3, expect="power"),
]

SCENARIOS = [
    Scenario("binary AUROC, 1 seed", "binary", "auroc", seeds=1),
    Scenario("binary AUROC, 3 seeds, tau 0", "binary", "auroc", seeds=3),
    Scenario("binary AUROC, 3 seeds, tau 0.10", "binary", "auroc", seeds=3, tau=0.10),
    Scenario("binary AUROC, 3 seeds, tau 0.15", "binary", "auroc", seeds=3, tau=0.15),
    Scenario("binary AUROC, 3 seeds, tau 0.30", "binary", "auroc", seeds=3, tau=0.30),
    Scenario("binary AUROC, 2 seeds, tau 0.15", "binary", "auroc", seeds=2, tau=0.15),
    Scenario("binary AUROC, 5 seeds, tau 0.10", "binary", "auroc", seeds=5, tau=0.10),
    Scenario("binary AUROC, 5 folds sharing one test set, tau 0.10", "binary", "auroc", seeds=1, folds=5,
             shared=True, tau=0.10),
    Scenario("binary AUROC, 5 disjoint folds, tau 0.10", "binary", "auroc", seeds=1, folds=5, tau=0.10),
    Scenario("binary AUROC, 5 disjoint folds x 3 seeds, tau 0.10", "binary", "auroc", seeds=3, folds=5, tau=0.10),
    Scenario("binary AUROC, 1 seed, tau 0.15 (verdicts about the trained weights)", "binary", "auroc", seeds=1,
             tau=0.15, expect="weights"),
    Scenario("binary AUROC, 1 seed, tau 0.15, evaluation.seed_sd stated", "binary", "auroc", seeds=1, tau=0.15,
             seed_sd_known=True),
    Scenario("binary AUROC, 5 disjoint folds x 3 seeds, tau 0.20, fold correlation 0.5", "binary", "auroc",
             seeds=3, folds=5, tau=0.20, fold_corr=0.5),
    Scenario("binary AUROC, 5 disjoint folds x 1 seed, tau 0.20, fold correlation 0.25", "binary", "auroc",
             seeds=1, folds=5, tau=0.20, fold_corr=0.25),
    Scenario("binary AUROC, 5 disjoint folds x 1 seed, tau 0.20, fold correlation 0.5", "binary", "auroc",
             seeds=1, folds=5, tau=0.20, fold_corr=0.5),
    Scenario("binary Brier, 3 seeds, tau 0.10", "binary", "brier", seeds=3, tau=0.10),
    Scenario("ordinal QWK, 1 seed", "multiclass", "qwk", seeds=1),
    Scenario("ordinal QWK, 3 seeds, tau 0", "multiclass", "qwk", seeds=3),
    Scenario("ordinal QWK, 3 seeds, tau 0.10", "multiclass", "qwk", seeds=3, tau=0.10),
    Scenario("multi-class macro-F1, 3 seeds, tau 0.10", "multiclass", "f1", seeds=3, tau=0.10),
    Scenario("Dice, 10 images, 1 seed", "dense", "mean_dice", seeds=1, n=10),
    Scenario("Dice, 10 images, 5 seeds, tau 0.01", "dense", "mean_dice", seeds=5, n=10, tau=0.01),
    Scenario("Dice, 10 images, 5 seeds, tau 0.02", "dense", "mean_dice", seeds=5, n=10, tau=0.02),
    Scenario("Dice, 100 images, 3 seeds, tau 0.01", "dense", "mean_dice", seeds=3, n=100, tau=0.01),
    Scenario("Dice, 10 images x 5 disjoint folds, 3 seeds, tau 0.02", "dense", "mean_dice", seeds=3, folds=5,
             n=50, tau=0.02),
    Scenario("binary AUROC, 3 seeds, tau 0.10, a seed's runs of A and B correlated 0.9", "binary", "auroc", seeds=3,
             tau=0.10, pair_corr=0.9),
    Scenario("Dice, 100 images, 3 seeds, tau 0.01, a seed's runs of A and B correlated 0.9", "dense", "mean_dice",
             seeds=3, n=100, tau=0.01, pair_corr=0.9),
    # a seed that couples the two contenders' run quality, not their errors on the units (issue 43): the same
    # data order or augmentation stream making both runs good or bad (+0.8) or one good where the other is bad
    # (-0.5); and A's seed-to-seed sd three times B's
    *[Scenario(f"binary AUROC, {r} seeds, tau 0.30, a seed's run quality of A and B correlated {c:+.1f}", "binary",
               "auroc", seeds=r, tau=0.30, run_corr=c) for r in (3, 5) for c in (-0.5, 0.8)],
    *[Scenario(f"Dice, 100 images, {r} seeds, tau 0.02, a seed's run quality of A and B correlated {c:+.1f}",
               "dense", "mean_dice", seeds=r, n=100, tau=0.02, run_corr=c) for r in (3, 5) for c in (-0.5, 0.8)],
    *[Scenario(f"binary AUROC, {r} seeds, tau 0.30, A's seed sd 3x B's", "binary", "auroc", seeds=r, tau=0.30,
               tau_ratio=3.0) for r in (3, 5)],
    *[Scenario(f"Dice, 100 images, {r} seeds, tau 0.02, A's seed sd 3x B's", "dense", "mean_dice", seeds=r, n=100,
               tau=0.02, tau_ratio=3.0) for r in (3, 5)],
    # per-contender seed streams: runs independent by construction, the two seed spreads pooled
    Scenario("per-contender streams: binary AUROC, 3 seeds, tau 0.10", "binary", "auroc", seeds=3, tau=0.10,
             streams="per_contender"),
    Scenario("per-contender streams: binary AUROC, 2 seeds, tau 0.30", "binary", "auroc", seeds=2, tau=0.30,
             streams="per_contender"),
    *[Scenario(f"per-contender streams: binary AUROC, {r} seeds, tau 0.30, A's seed sd 3x B's", "binary", "auroc",
               seeds=r, tau=0.30, tau_ratio=3.0, streams="per_contender") for r in (3, 5)],
    *[Scenario(f"per-contender streams: Dice, 100 images, {r} seeds, tau 0.02, A's seed sd 3x B's", "dense",
               "mean_dice", seeds=r, n=100, tau=0.02, tau_ratio=3.0, streams="per_contender") for r in (3, 5)],
    Scenario("per-contender streams: Dice, 10 images, 5 seeds, tau 0.02", "dense", "mean_dice", seeds=5, n=10,
             tau=0.02, streams="per_contender"),
    Scenario("per-contender streams: binary AUROC, 5 disjoint folds x 3 seeds, tau 0.20, fold correlation 0.5",
             "binary", "auroc", seeds=3, folds=5, tau=0.20, fold_corr=0.5, streams="per_contender"),
    Scenario("Dice at the margin (true diff = min_effect 0.02), 100 images, 3 seeds, tau 0.01", "dense",
             "mean_dice", seeds=3, n=100, tau=0.01, effect=0.02, min_effect=0.02, expect="margin"),
    Scenario("power: ordinal QWK, 3 seeds, tau 0, sigma 0.9 vs 0.8", "multiclass", "qwk", seeds=3, effect=0.1,
             expect="power"),
    Scenario("power: macro-F1, 3 seeds, tau 0, sigma 0.9 vs 0.8", "multiclass", "f1", seeds=3, effect=0.1,
             expect="power"),
    *_POWER_POOLED,
    Scenario("power: Dice, 100 images, 3 seeds, tau 0.01, +0.01 (858dedb over-rejects at this tau)", "dense",
             "mean_dice", seeds=3, n=100, tau=0.01, effect=0.01, expect="power"),
    Scenario("power: Dice, 10 images, 5 seeds, tau 0.01, +0.02 (858dedb over-rejects at this tau)", "dense",
             "mean_dice", seeds=5, n=10, tau=0.01, effect=0.02, expect="power"),
    Scenario("power: binary AUROC, 3 seeds, tau 0.10, sep +0.3, a seed's runs of A and B correlated 0.9", "binary",
             "auroc", seeds=3, tau=0.10, effect=0.3, pair_corr=0.9, expect="power"),
    Scenario("power: binary AUROC, 3 seeds, tau 0.30, sep +0.3, a seed's run quality of A and B correlated +0.8",
             "binary", "auroc", seeds=3, tau=0.30, effect=0.3, run_corr=0.8, expect="power"),
    # the same designs with per-contender seed streams: what pooling the two seed spreads buys where it is honest
    *[replace(sc, name=sc.name.replace("power: ", "power, per-contender streams: "), streams="per_contender")
      for sc in list(_POWER_POOLED)],
    *INSTANCE_SCENARIOS,
]


# ------------------------------------------------------------------------------------ planner calibration

_SEED_SD: dict[tuple, float] = {}


def _big_differences(sc: Scenario, rng_seed: int, n: int, seeds: int, **overrides: Any) -> list[float]:
    """Each run's paired difference A - B of scenario ``sc`` redrawn with ``seeds`` seeds on one test set
    of ``n`` units (so large that sampling adds next to nothing), in the metric's units."""
    from dataclasses import replace

    big = replace(sc, seeds=seeds, folds=1, shared=False, n=n, **overrides)
    runs = GENERATORS[sc.kind](big, np.random.default_rng(rng_seed))
    one = np.ones((1, n))
    return [float(runs.values(k, "a", one)[0] - runs.values(k, "b", one)[0]) for k in runs.keys]


def true_seed_sd(sc: Scenario, n: int = 20000, seeds: int = 60) -> float:
    """The sd of one run's paired difference from seed to seed (training variation only), in the
    metric's units (Monte Carlo, cached)."""
    key = (sc.kind, sc.metric, sc.tau, sc.effect)
    if key not in _SEED_SD:
        _SEED_SD[key] = float(np.std(_big_differences(sc, 98, n, seeds, fold_corr=0.0), ddof=1))
    return _SEED_SD[key]


def true_difference(sc: Scenario, seed: int = 99, n: int = 4000, seeds: int = 24) -> float:
    """The scenario's true mean difference A - B in the metric's units: the mean paired difference of
    many runs on a large test set (Monte Carlo; the generators are defined in their own units)."""
    return float(np.mean(_big_differences(sc, seed, n, seeds)))


def plan_calibration(sc: Scenario, pilots: int, sims_per_design: int, seed: int = 0, target: float = 0.8,
                     plan_sims: int = 400, seeds_grid: tuple[int, ...] | None = None,
                     factors: tuple[float, ...] | None = None) -> dict[str, Any]:
    """The planner judged by what its plans deliver: ``pilots`` pilot studies of design ``sc`` (drawn under
    its effect), each planned by ``plan_pair`` (on ``bakeoff plan``'s grid unless given) for the true
    difference; each proposed design's real power is the rate of 'A better' over ``sims_per_design``
    studies of that design simulated from the generator and judged by the real rule. Returns the rows
    (predicted, its 10-90 % range, delivered) and their summary: mean and median absolute error, the
    share within ±0.10, and the share of delivered powers inside the stated range."""
    from bakeoff.stats.plan import DEFAULT_SEEDS, DEFAULT_TEST_FACTORS, plan_pair

    rng = np.random.default_rng(seed)
    ev = EvaluationConfig(primary=sc.metric, min_effect=sc.min_effect, alpha=0.05, n_boot=200, n_permutations=99)
    effect = true_difference(sc)
    delivered: dict[tuple[int, int], float] = {}
    rows = []
    for i in range(pilots):
        pair = judge(sc, GENERATORS[sc.kind](sc, rng), ev)
        plan = plan_pair(pair, 0.05, effect=effect, seeds=seeds_grid or DEFAULT_SEEDS,
                         test_factors=factors or DEFAULT_TEST_FACTORS, target=target, sims=plan_sims)
        best = plan["smallest_design"]
        if best is None:
            rows.append({"pilot": i, "design": None, "predicted": None, "delivered": None})
            continue
        design = (best["seeds"], best["test_units"])
        if design not in delivered:
            big = replace(sc, seeds=design[0], n=design[1])
            delivered[design] = run_scenario(big, sims_per_design, seed=seed + 7)["a_better"]
        rows.append({"pilot": i, "design": design, "predicted": best["power"], "range": best["power_range"],
                     "delivered": delivered[design]})
    planned = [r for r in rows if r["design"] is not None]
    pred = np.array([r["predicted"] for r in planned]) if planned else np.zeros(0)
    got = np.array([r["delivered"] for r in planned]) if planned else np.zeros(0)
    err = pred - got
    nan = float("nan")
    inside = [r["range"][0] - 0.05 <= r["delivered"] <= r["range"][1] + 0.05 for r in planned]  # 0.05: MC error
    return {"scenario": sc.name, "true_difference": effect, "pilots": pilots, "planned": len(planned),
            "studies_per_design": sims_per_design,
            "mean_predicted": float(pred.mean()) if planned else nan,
            "mean_delivered": float(got.mean()) if planned else nan,
            "mean_error": float(err.mean()) if planned else nan,
            "median_abs_error": float(np.median(np.abs(err))) if planned else nan,
            "within_010": float(np.mean(np.abs(err) <= 0.10)) if planned else nan,
            "range_covers": float(np.mean(inside)) if planned else nan,
            "designs": sorted({r["design"] for r in planned}), "rows": rows}


# Pilot designs the planner is calibrated on (the issue's: binary, Dice, k-fold), each under a real effect.
PLAN_SCENARIOS = [
    Scenario("plan: binary AUROC pilot, 200 samples x 3 seeds, tau 0.10", "binary", "auroc", seeds=3, n=200,
             tau=0.10, effect=0.25),
    Scenario("plan: Dice pilot, 20 images x 3 seeds, tau 0.01", "dense", "mean_dice", seeds=3, n=20, tau=0.01,
             effect=0.02),
    Scenario("plan: binary AUROC pilot, 5 disjoint folds x 3 seeds, tau 0.10", "binary", "auroc", seeds=3, folds=5,
             n=200, tau=0.10, effect=0.3),
]


# ------------------------------------------------------------------------------ sequential calibration

def run_sequential(sc: Scenario, sims: int, max_seeds: int = 10, spending: str = "obrien_fleming", seed: int = 0,
                   alpha: float = 0.05, information: str = "estimated") -> dict[str, float]:
    """The sequential procedure of ``bakeoff.stats.sequential`` over ``sims`` simulated studies: each
    draws ``max_seeds`` seeds' runs at once and is looked at after 3, 4, ... seeds (the runs of the first
    s seeds), judged by the real verdict rule at each look's nominal level, stopped as a real study would
    be. Returns the rates of each final verdict and the mean number of seeds used."""
    from dataclasses import replace

    from bakeoff.config import SequentialConfig
    from bakeoff.stats.sequential import judge_look, settings

    rng = np.random.default_rng(seed)
    ev = EvaluationConfig(primary=sc.metric, min_effect=sc.min_effect, alpha=alpha, n_boot=200, n_permutations=99)
    rule = settings(SequentialConfig(max_seeds=max_seeds, spending=spending), sc.seeds)
    rule["information"] = information
    counts = {"better": 0, "a_better": 0, "equivalent": 0, "futile": 0, "budget": 0}
    used = []
    for _ in range(sims):
        full = GENERATORS[sc.kind](replace(sc, seeds=max_seeds), rng)
        history: list[dict] = []
        for s in rule["looks"]:
            runs = replace(full, a={k: v for k, v in full.a.items() if k[0] < s},
                           b={k: v for k, v in full.b.items() if k[0] < s})
            res = judge(sc, runs, ev)
            look = judge_look({"pairs": [res], "primary": sc.metric}, s, rule, alpha, history)
            history.append(look)
            if look["stop"]:
                break
        v = look["verdicts"]["A - B"]
        counts["better"] += "better" in v
        counts["a_better"] += v.startswith("A better")
        counts["equivalent"] += v.startswith("equivalent")
        counts["futile"] += look["stop"] == "futile"
        counts["budget"] += look["stop"] == "budget"
        used.append(s)
    return {**{k: c / sims for k, c in counts.items()}, "mean_seeds": float(np.mean(used))}


def fixed_seeds_for_power(sc: Scenario, power: float, sims: int, seed: int = 0, top: int = 30) -> int | None:
    """The fewest seeds of a fixed design whose simulated power reaches ``power``."""
    from dataclasses import replace

    for s in range(3, top + 1):
        if run_scenario(replace(sc, seeds=s), sims, seed=seed)["a_better"] >= power:
            return s
    return None


SEQUENTIAL_SCENARIOS = [
    Scenario("sequential: binary AUROC, tau 0.10, no difference", "binary", "auroc", seeds=3, tau=0.10),
    Scenario("sequential: Dice, 20 images, tau 0.01, no difference", "dense", "mean_dice", seeds=3, n=20, tau=0.01),
    Scenario("sequential: binary AUROC, 5 disjoint folds, tau 0.20, fold correlation 0.5, no difference", "binary",
             "auroc", seeds=3, folds=5, tau=0.20, fold_corr=0.5),
    Scenario("sequential: binary AUROC, tau 0.10, sep +0.35", "binary", "auroc", seeds=3, tau=0.10, effect=0.35,
             expect="power"),
]
