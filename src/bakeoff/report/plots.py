"""Plots rendered from saved files: training curves, metric bars, confusion matrices, ROC curves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator, NullFormatter, ScalarFormatter  # noqa: E402

from bakeoff.report import figsave  # noqa: E402
from bakeoff.report.tables import task_for  # noqa: E402
from bakeoff.runs.store import CSV_LOG, DONE, FEATURES_FILE, GRADCAM_FILE, StudyStore  # noqa: E402
from bakeoff.tasks import task_class  # noqa: E402


def _colors(order: list[str]) -> dict[str, Any]:
    """One colour per contender, by its place in the study file: the same in every figure."""
    cmap = plt.get_cmap("tab10")
    return {c: cmap(i % 10) for i, c in enumerate(order)}


def _sd(x: list[float]) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def read_history(run_dir: Path) -> pd.DataFrame:
    """Per-epoch metrics from the run's CSV log (Lightning writes train and val rows separately)."""
    path = run_dir / CSV_LOG
    if not path.is_file():
        return pd.DataFrame()
    df = pd.read_csv(path)
    return df.groupby("epoch").first().reset_index()


def training_curves(store: StudyStore, df: pd.DataFrame, order: list[str], primary: str, out: Path) -> Path:
    colors = _colors(order)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ["loss", primary]):
        for contender in order:
            sub = df[(df["contender"] == contender) & (df["status"] == DONE)]
            hists = [read_history(store.run_path(contender, r)) for r in sub["run_id"]]
            for part, style in (("train", "--"), ("val", "-")):
                col = f"{part}/{metric}"
                series = [h.set_index("epoch")[col] + 0 for h in hists if col in h]
                if not series:
                    continue
                table = pd.concat(series, axis=1)
                x = table.index.to_numpy() + 1
                mean = table.mean(axis=1).to_numpy()
                ax.plot(x, mean, style, color=colors[contender], label=f"{contender} {part}")
                if table.shape[1] > 1:
                    ax.fill_between(x, table.min(axis=1), table.max(axis=1), color=colors[contender], alpha=0.12)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs: no 1.5, 2.5
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} (mean over runs; band: min-max)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out / "training_curves.png")


def bars_in_range(means: list[float], spreads: list[float],
                  bounds: list[tuple[float, float] | None]) -> np.ndarray:
    """Asymmetric error bars (2, n): mean ± spread, cut at each metric's range (a Dice bar never
    reaches past 1, an AUROC bar never below 0)."""
    lower, upper = [], []
    for m, sd, b in zip(means, spreads, bounds):
        lo, hi = b if b is not None else (-np.inf, np.inf)
        lower.append(0.0 if not np.isfinite(m) else max(0.0, min(sd, m - lo)))
        upper.append(0.0 if not np.isfinite(m) else max(0.0, min(sd, hi - m)))
    return np.array([lower, upper])


def metric_bars(df: pd.DataFrame, order: list[str], threshold: float, out: Path, task: str) -> Path:
    """The task's scores (its registered metrics where higher is better), one group of bars each."""
    from bakeoff.tasks import metric_info, overall_metrics

    done = df[df["status"] == DONE]
    metrics = [m for m in overall_metrics(task) if metric_info(m, task).higher_is_better and f"test_{m}" in done]
    colors = _colors(order)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(metrics) * max(1, len(order)) / 2), 4.2))
    width = 0.8 / max(len(order), 1)
    rng = np.random.default_rng(0)
    for i, contender in enumerate(order):
        sub = done[done["contender"] == contender]
        if sub.empty:  # no finished run yet (an unfinished study): no bar, no empty mean
            continue
        vals = [sub[f"test_{m}"].to_numpy(dtype=float) for m in metrics]
        x = np.arange(len(metrics)) + (i - (len(order) - 1) / 2) * width
        means = [np.mean(v) for v in vals]
        stds = [np.std(v, ddof=1) if len(v) > 1 else 0 for v in vals]
        ax.bar(x, means, width, yerr=bars_in_range(means, stds, [metric_info(m, task).bounds for m in metrics]),
               capsize=3, color=colors[contender], alpha=0.8, label=contender)
        for xi, v in zip(x, vals):
            ax.scatter(xi + rng.uniform(-width / 5, width / 5, len(v)), v, s=8, color="black", zorder=3)
    ax.set_xticks(np.arange(len(metrics)), [m.replace("_", "\n") for m in metrics], fontsize=8)
    ax.set_ylabel("test score")
    from bakeoff.tasks import task_class

    where = f"; threshold {threshold} where it applies" if task_class(task).thresholded else ""
    ax.set_title(f"Test metrics, mean ± std over runs, within each metric's range (dots: runs{where})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out / "metric_bars.png")


def confusion_matrices(evaluations: dict, order: list[str], threshold: float | None, out: Path,
                       class_names: list[str] | None = None) -> Path:
    """Test confusion matrices side by side (summed over runs): counts as text, row-normalised colour,
    rows and columns labelled with the class names (the labels when the data name none). ``threshold``
    is stated for binary tasks only (None otherwise)."""
    K = max((len(v["eval"]["test_confusion"]) for v in evaluations.values()), default=2)
    side = max(3.8, 0.42 * K + 1.6)
    fig, axes = plt.subplots(1, len(order), figsize=(side * len(order), side * 0.95), squeeze=False)
    for ax, contender in zip(axes[0], order):
        mats = [np.asarray(v["eval"]["test_confusion"]) for (c, _), v in evaluations.items() if c == contender]
        if not mats:
            ax.set_axis_off()
            continue
        m = np.sum(mats, axis=0)
        norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        big = m.max() >= 10_000  # pixel counts: show the row share only
        for (r, c), v in np.ndenumerate(m):
            if K > 6 and v == 0:
                continue
            text = f"{norm[r, c]:.0%}" if big else (f"{v}" if K > 6 else f"{v}\n{norm[r, c]:.0%}")
            ax.text(c, r, text, ha="center", va="center", fontsize=9 if K <= 6 else 7,
                    color="white" if norm[r, c] > 0.5 else "black")
        labels = [str(class_names[k]) if class_names and k < len(class_names) else str(k) for k in range(m.shape[0])]
        long = max(map(len, labels)) > 3
        ax.set_xticks(range(m.shape[1]), labels, rotation=40 if long else 0, ha="right" if long else "center",
                      fontsize=8)
        ax.set_yticks(range(m.shape[0]), labels, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{contender}\n(test, {len(mats)} run(s) summed)", fontsize=9)
    what = "pixels, " if any(np.sum(v["eval"]["test_confusion"]) >= 10_000 for v in evaluations.values()) else ""
    thr = f"threshold {threshold}; " if threshold is not None else ""
    fig.suptitle(f"Confusion matrices ({what}{thr}colour: share of each true class)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "confusion_matrices.png")


def roc_curves(evaluations: dict, order: list[str], task_name: str, out: Path) -> Path | None:
    """ROC and precision-recall curves on test, one line per run (torchmetrics' curves)."""
    colors = _colors(order)
    fig, (ax, ax_pr) = plt.subplots(1, 2, figsize=(10, 4.8))
    drawn = False
    for contender in order:
        runs = [v for (c, _), v in evaluations.items() if c == contender]
        aucs, aps = [], []
        for j, v in enumerate(runs):
            d = v["preds"]["test"]
            curves = task_for(task_name, v["preds"]).curves(d["y"], d["probs"])
            if "roc" not in curves:
                continue
            fpr, tpr = curves["roc"]
            aucs.append(v["eval"]["test"]["auroc"])
            aps.append(v["eval"]["test"].get("average_precision", np.nan))
            last = j == len(runs) - 1
            ax.plot(fpr, tpr, color=colors[contender], alpha=0.6, lw=1,
                    label=f"{contender}: AUROC {np.mean(aucs):.3f} ± {_sd(aucs):.3f}" if last else None)
            if "pr" in curves:
                rec, prec = curves["pr"]
                ax_pr.plot(rec, prec, color=colors[contender], alpha=0.6, lw=1,
                           label=f"{contender}: AP {np.mean(aps):.3f} ± {_sd(aps):.3f}" if last else None)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curves on test (one line per run)")
    ax.legend(fontsize=8, loc="lower right")
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("Precision-recall curves on test (one line per run)")
    if ax_pr.lines:
        ax_pr.legend(fontsize=8, loc="lower left")
    else:
        ax_pr.set_axis_off()
    fig.tight_layout()
    return _save(fig, out / "roc_curves.png")


def reliability(calibration: dict[str, Any], order: list[str], out: Path) -> Path | None:
    """Reliability diagrams on test from ``comparison.json → calibration`` (``bakeoff.stats.summary``):
    each contender's binned confidence against its observed frequency, with its ECE in the legend."""
    colors = _colors(order)
    curves = calibration.get("curves") or {}
    names = [c for c in order if c in curves]
    if not names:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for contender in names:
        cv = curves[contender]
        ax.plot(cv["confidence"], cv["frequency"], "o-", color=colors[contender], ms=4,
                label=f"{contender}: ECE {calibration['ece'][contender]:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect calibration")
    top = any(curves[c].get("top_label") for c in names)
    ax.set_xlabel("predicted probability" + (" (top-label confidence)" if top else ""))
    ax.set_ylabel("observed frequency" + (" (accuracy)" if top else ""))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability on test ({calibration.get('n_bins', 10)} bins, runs pooled)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out / "reliability.png")


def cd_diagram(table: pd.DataFrame, result: dict[str, Any], path: Path) -> Path:
    """Critical-difference diagram (scikit-posthocs): average ranks, Nemenyi post-hoc significance as bars."""
    import scikit_posthocs as sp

    sig = sp.posthoc_nemenyi_friedman(table.to_numpy())
    sig.index = sig.columns = list(table.columns)
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.35 * table.shape[1]))
    sp.critical_difference_diagram(pd.Series(result["average_ranks"]), sig, ax=ax, alpha=result["alpha"])
    ax.set_title(f"Average ranks over {result['n_blocks']} (seed, fold) blocks; Friedman p = "
                 f"{result['p_value']:.3g}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def pareto_front(cost: np.ndarray, quality: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Indices of the points no other point beats on both axes (lower cost, better quality)."""
    q = quality if higher_is_better else -quality
    keep = []
    for i in range(len(cost)):
        dominated = np.any((cost <= cost[i]) & (q >= q[i]) & ((cost < cost[i]) | (q > q[i])))
        if not dominated and np.isfinite(cost[i]) and np.isfinite(q[i]):
            keep.append(i)
    return np.array(sorted(keep, key=lambda i: cost[i]), dtype=int)


COST_AXES = (("latency_ms", "inference latency (ms / sample)"), ("n_parameters", "parameters"),
             ("device_hours", "training device-hours"))


def cost_unit(col: str, largest: float) -> tuple[float, str]:
    """The factor and axis label that show a cost in a unit a reader knows at its size: latency in µs below
    a millisecond, training time in device-seconds or -minutes below an hour (engineering prefixes on these
    read wrongly: "1.6m device-hours", "35m ms"); parameters keep theirs (18k, 1.5M)."""
    if col == "latency_ms" and largest < 1:
        return 1000.0, "inference latency (µs / sample)"
    if col == "device_hours" and largest < 1 / 60:
        return 3600.0, "training device-seconds"
    if col == "device_hours" and largest < 1:
        return 60.0, "training device-minutes"
    return 1.0, dict(COST_AXES)[col]


def quality_vs_cost(costs: pd.DataFrame, order: list[str], primary: str, higher_is_better: bool, out: Path
                    ) -> Path | None:
    """The primary metric (mean over runs) against each cost, one colour per contender; the Pareto front
    (no contender both cheaper and better) joined by a line. ``costs``: one row per contender."""
    axes_spec = [(c, label) for c, label in COST_AXES if c in costs and costs[c].notna().any()]
    if not axes_spec or primary not in costs:
        return None
    colors = _colors(order)
    fig, axes = plt.subplots(1, len(axes_spec), figsize=(4.6 * len(axes_spec), 4.2), squeeze=False)
    for ax, (col, label) in zip(axes[0], axes_spec):
        sub = costs.loc[[c for c in order if c in costs.index]].dropna(subset=[col, primary]).copy()
        scale, label = cost_unit(col, float(sub[col].max()) if len(sub) else 0.0)
        sub[col] = sub[col] * scale
        for c, r in sub.iterrows():
            ax.scatter(r[col], r[primary], s=60, color=colors[c], label=c, zorder=3)
        front = pareto_front(sub[col].to_numpy(float), sub[primary].to_numpy(float), higher_is_better)
        if len(front) > 1:
            ax.plot(sub[col].to_numpy(float)[front], sub[primary].to_numpy(float)[front], "--", color="grey",
                    zorder=2, label="Pareto front")
        elif len(front) == 1:
            ax.scatter(sub[col].to_numpy(float)[front], sub[primary].to_numpy(float)[front], s=160,
                       facecolors="none", edgecolors="grey", label="Pareto front")
        if col == "n_parameters" and len(sub) and sub[col].max() / max(sub[col].min(), 1) > 20:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        # readable ticks: few of them, never run together; parameters in engineering notation (18k, 1.5M)
        ax.xaxis.set_major_formatter(EngFormatter(sep="") if col == "n_parameters" else
                                     ScalarFormatter(useOffset=False))
        ax.xaxis.set_minor_formatter(NullFormatter())
        if ax.get_xscale() != "log":
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.set_ylabel(f"test {primary}" + ("" if higher_is_better else " (lower is better)"))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Quality vs cost (mean over runs)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "quality_vs_cost.png")


def rank_blobs(stability: dict[str, Any], order: list[str], out: Path) -> Path:
    """challengeR's blob plot: for each contender, circles at each rank sized by the share of bootstrap
    replicates giving it that rank; a cross at its full-data rank, a bar over the 95 % rank interval."""
    colors = _colors(order)
    names = [c for c in order if c in stability["rank_share"]]
    k = len(names)
    fig, ax = plt.subplots(figsize=(max(5.5, 1.1 * k + 2), 3.2 + 0.35 * k))
    for i, c in enumerate(names):
        share = np.asarray(stability["rank_share"][c])
        ranks = np.arange(1, k + 1)
        ax.scatter(np.full(k, i)[share > 0], ranks[share > 0], s=900 * share[share > 0], color=colors[c], alpha=0.55,
                   edgecolors="none")
        lo, hi = stability["rank_interval"][c]
        ax.plot([i, i], [lo, hi], color="black", lw=1)
        ax.scatter([i], [stability["rank"][c]], marker="x", color="black", s=40, zorder=3)
    ax.set_xticks(range(k), names, rotation=20 if k > 3 else 0)
    ax.set_xlim(-0.7, k - 0.3)
    ax.set_yticks(range(1, k + 1))
    ax.set_ylim(k + 0.6, 0.4)
    ax.set_ylabel("rank (1 = best)")
    ax.set_title(f"Rank stability: {stability['n_boot']} bootstrap resamples\n"
                 f"(area: share of resamples; x: full-data rank; bar: 95 % interval)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out / "rank_stability.png")


SIGNIFICANCE_COLOURS = {"better": "#2ca02c", "worse": "#d62728", "equivalent": "#1f77b4", "inconclusive": "#dddddd"}


def significance_plot(sig: dict[str, Any], metric: str, out: Path) -> Path:
    """Every pair's Holm-adjusted paired verdict: row better / worse than column, equivalent or inconclusive;
    a verdict about trained weights only (one seed: ``scopes``) is labelled so in its cell and under the map."""
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    names = sig["contenders"]
    k = len(names)
    img = np.ones((k, k, 3))
    longest = max((len(n) for n in names), default=0)  # names label both axes: room for them (up to 64 characters)
    fig, ax = plt.subplots(figsize=(1.0 * k + 3.2 + 0.08 * longest, 0.9 * k + 1.6 + 0.04 * longest))
    scopes = sig.get("scopes") or {}
    weights_only = False
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            v = sig["cells"][a][b]
            if v is not None:
                img[i, j] = to_rgb(SIGNIFICANCE_COLOURS[v])
                label = {"better": "better", "worse": "worse", "equivalent": "≈", "inconclusive": "?"}[v]
                if v in ("better", "worse") and (scopes.get(a) or {}).get(b) == "trained weights":
                    label, weights_only = f"{label}†", True
                ax.text(j, i, label, ha="center", va="center", fontsize=8,
                        color="white" if v in ("better", "worse") else "black")
    ax.imshow(img)
    ax.set_xticks(range(k), names, rotation=30, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("column contender")
    ax.set_ylabel("row contender")
    ax.set_title(f"Paired verdicts on {metric} (row vs column; Holm-adjusted)", fontsize=9)
    ax.legend(handles=[Patch(color=c, label=f"row {n}" if n in ("better", "worse") else n)
                       for n, c in SIGNIFICANCE_COLOURS.items()], fontsize=7, loc="upper left",
              bbox_to_anchor=(1.02, 1))
    if weights_only:
        fig.text(0.01, 0.01, "† one seed: about these trained weights, not the training recipe", fontsize=7)
    fig.tight_layout(rect=(0, 0.04 if weights_only else 0, 1, 1))
    return _save(fig, out / "significance_map.png")


def class_scores(df: pd.DataFrame, order: list[str], class_names: list[str], out: Path,
                 metric: str = "dice") -> Path | None:
    """Per-class test Dice (or another per-class metric) across contenders: mean ± std over runs."""
    from bakeoff.tasks.metric import builtin_bounds

    done = df[df["status"] == DONE]
    cols = [(n, f"test_{metric}_{n}") for n in class_names if f"test_{metric}_{n}" in done]
    if not cols:
        return None
    colors = _colors(order)
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(cols) * max(1, len(order)) / 2), 4))
    width = 0.8 / max(len(order), 1)
    for i, contender in enumerate(order):
        sub = done[done["contender"] == contender]
        vals = [sub[c].to_numpy(dtype=float) for _, c in cols]
        x = np.arange(len(cols)) + (i - (len(order) - 1) / 2) * width
        means = [np.nanmean(v) if np.any(~np.isnan(v)) else np.nan for v in vals]
        stds = [np.nanstd(v, ddof=1) if np.sum(~np.isnan(v)) > 1 else 0 for v in vals]
        ax.bar(x, means, width, yerr=bars_in_range(means, stds, [builtin_bounds(metric)] * len(means)), capsize=3,
               color=colors[contender], alpha=0.8, label=contender)
    ax.set_xticks(np.arange(len(cols)), [n.replace("_", "\n") for n, _ in cols], fontsize=8)
    ax.set_ylabel(f"test {metric}")
    ax.set_title(f"Per-class test {metric}, mean ± std over runs (within its range)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, out / f"per_class_{metric}.png")


def qualitative(evaluations: dict, order: list[str], out: Path, instances: bool = False) -> Path | None:
    """The same validation images for every contender: image, truth and each contender's prediction
    (from each contender's first run: lowest seed, fold 0). ``instances``: each object in its own colour
    with its outline, so that merged and split objects show."""
    first: dict[str, Any] = {}
    for (c, _run_id), v in sorted(evaluations.items(), key=lambda kv: kv[0][1]):
        if c in order and c not in first:
            first[c] = v["preds"]["val"]
    if not first:
        return None
    ref = first[order[0] if order[0] in first else next(iter(first))]
    rows = [j for j, im in enumerate(ref.get("image") or []) if im is not None]
    if not rows:
        return None
    K = len(ref["class_names"])
    cols = 2 + len(first)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.4 * cols, 2.4 * len(rows)), squeeze=False)
    cmap = plt.get_cmap("tab10", max(K, 2))
    for r, j in enumerate(rows):
        img = np.asarray(ref["image"][j], dtype=float)
        img = img[0] if img.ndim == 3 else img[0, img.shape[1] // 2]  # first channel; middle slice in 3D
        panels = [("image", None), ("truth", ref["y"][j])] + [(c, first[c]["pred"][j]) for c in first]
        for ax, (title, lab) in zip(axes[r], panels):
            ax.imshow(img, cmap="gray")
            if lab is not None:
                lab = np.asarray(lab)
                lab = lab if lab.ndim == 2 else lab[lab.shape[0] // 2]
                if instances:
                    _objects(ax, lab)
                else:
                    ax.imshow(np.ma.masked_equal(lab, 0), cmap=cmap, vmin=0, vmax=max(K - 1, 1), alpha=0.6,
                              interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
        axes[r][0].set_ylabel(str(ref["ids"][j]), fontsize=8)
    fig.suptitle("Validation images: truth and predictions (" + ("each object its own colour, outlined"
                                                                  if instances else "colour = class") + ")",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "qualitative.png")


def _objects(ax: Any, labels: np.ndarray) -> None:
    """Each object of an instance label image in its own colour (ids cycled over tab20) and outlined."""
    from skimage.segmentation import find_boundaries

    shown = np.ma.masked_equal(np.where(labels > 0, (labels - 1) % 20 + 1, 0), 0)
    ax.imshow(shown, cmap="tab20", vmin=1, vmax=20, alpha=0.45, interpolation="nearest")
    edge = find_boundaries(labels, mode="inner") & (labels > 0)
    ax.imshow(np.ma.masked_equal(edge.astype(int), 0), cmap="autumn", alpha=1.0, interpolation="nearest")


def ap_vs_iou(df: pd.DataFrame, order: list[str], out: Path) -> Path | None:
    """Instance segmentation: each contender's AP (TP / (TP + FP + FN), mean over test images) at every IoU
    threshold (results.csv's ``test_ap50`` ... ``test_ap90``), mean over runs with the runs' range."""
    done = df[df["status"] == DONE]
    cols = sorted((c for c in done.columns if c.startswith("test_ap") and c[7:].isdigit()), key=lambda c: int(c[7:]))
    if not cols or not len(done):
        return None
    x = [int(c[7:]) / 100 for c in cols]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for c in order:
        runs = done[done["contender"] == c][cols].to_numpy(float)
        if not len(runs):
            continue
        line, = ax.plot(x, runs.mean(0), marker="o", label=f"{c} ({len(runs)} run{'s' * (len(runs) > 1)})")
        ax.fill_between(x, runs.min(0), runs.max(0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel("IoU threshold for a match")
    ax.set_ylabel("AP = TP / (TP + FP + FN), mean over images")
    ax.set_ylim(0, 1)
    ax.set_title("Matched objects against the IoU a match needs (band: runs' range)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out / "ap_vs_iou.png")


def feature_maps(store: StudyStore, df: pd.DataFrame, order: list[str], out: Path) -> Path | None:
    """Each contender's saved activations of its named layer on the same validation image (first run)."""
    done = df[df["status"] == DONE]
    found = []
    for c in order:
        for run_id in sorted(done[done["contender"] == c]["run_id"]):
            f = store.run_path(c, run_id) / FEATURES_FILE
            if f.is_file():
                with np.load(f) as z:
                    found.append((c, z["features"].astype(np.float32), z["input"].astype(np.float32),
                                  str(z["image_id"])))
                break
    if not found:
        return None
    cols = 1 + max(len(feat) for _, feat, _, _ in found)
    fig, axes = plt.subplots(len(found), cols, figsize=(1.9 * cols, 2.0 * len(found)), squeeze=False)

    for r, (c, feat, inp, image_id) in enumerate(found):
        for ax in axes[r]:
            ax.set_axis_off()
        axes[r][0].imshow(inp[0] if inp[0].ndim == 2 else inp[0, inp.shape[1] // 2], cmap="gray")
        axes[r][0].set_title(f"{c}\n{image_id}", fontsize=8)
        for k, fm in enumerate(feat, start=1):
            axes[r][k].imshow(fm if fm.ndim == 2 else fm[fm.shape[0] // 2], cmap="magma")
            axes[r][k].set_title(f"channel {k - 1}", fontsize=7)
    fig.suptitle("Feature maps of each contender's named layer (first channels)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "feature_maps.png")


EMPTY_MAP = 1e-6  # a heatmap whose range is below this shows nothing: said as such, not drawn blank


def gradcam_choice(runs: dict[str, dict[str, np.ndarray]], n: int) -> list[str]:
    """``n`` sample ids shown for every contender: taken in turn from each true class, and within a class
    first where the contenders disagree (some right, some wrong), then one every contender gets right, then
    one every contender gets wrong, so that the grids show both correct and wrong predictions."""
    first = next(iter(runs.values()))
    common = [str(i) for i in first["ids"] if all(str(i) in {str(j) for j in d["ids"]} for d in runs.values())]
    truth = {str(i): int(t) for i, t in zip(first["ids"], first["y"])}
    right = {i: 0 for i in common}
    for d in runs.values():
        for i, t, k in zip(d["ids"], d["y"], d["classes"]):
            if str(i) in right:
                right[str(i)] += int(int(t) == int(k))
    kind = {i: (0 if 0 < right[i] < len(runs) else 1 if right[i] == len(runs) else 2) for i in common}
    queues = []
    for k in sorted(set(truth[i] for i in common)):
        by_kind = [[i for i in common if truth[i] == k and kind[i] == c] for c in range(3)]
        order: list[str] = []
        while any(by_kind):  # disagree, all right, all wrong, in turn
            order.extend(q.pop(0) for q in by_kind if q)
        queues.append(order)
    chosen: list[str] = []
    while len(chosen) < n and any(queues):
        for q in queues:
            if q and len(chosen) < n:
                chosen.append(q.pop(0))
    return chosen


def _as_picture(img: np.ndarray) -> np.ndarray:
    img = img.astype(np.float32)
    img = np.moveaxis(img, 0, -1) if img.shape[0] == 3 else img[0]
    return (img - img.min()) / max(float(img.max() - img.min()), 1e-8)


def gradcam_pictures(store: StudyStore, df: pd.DataFrame, order: list[str], out: Path) -> list[Path]:
    """plots/gradcam/<contender>.png: one grid per contender (the image over its Grad-CAM overlay, one
    column per sample) from its first run that saved Grad-CAM; the samples are the same for every
    contender (``gradcam_choice``), each titled with its true class and the contender's prediction (✓/✗).
    A map with nothing on it says so."""
    runs: dict[str, dict[str, np.ndarray]] = {}
    done = df[df["status"] == DONE]
    for c in order:
        for run_id in sorted(done[done["contender"] == c]["run_id"]):
            f = store.run_path(c, run_id) / GRADCAM_FILE
            if f.is_file():
                with np.load(f) as z:
                    runs[c] = {k: z[k] for k in z.files} | {"run_id": np.asarray(run_id)}
                break
    if not runs:
        return []
    first = next(iter(runs.values()))
    n = int(first["shown"]) if "shown" in first else len(first["ids"])  # older runs: every saved image
    chosen = gradcam_choice(runs, n)
    if not chosen:  # no sample every contender explained
        return []
    names = [str(v) for v in first["class_names"]]

    def name(k: int) -> str:
        return names[k] if 0 <= k < len(names) else str(k)

    made = []
    for c, d in runs.items():
        where = {str(i): j for j, i in enumerate(d["ids"])}
        cols = [where[i] for i in chosen]
        fig, axes = plt.subplots(2, len(cols), figsize=(1.9 * len(cols) + 0.4, 4.3), squeeze=False)
        for col, j in enumerate(cols):
            img, heat = _as_picture(d["inputs"][j]), d["heatmaps"][j].astype(np.float32)
            truth, said = int(d["y"][j]), int(d["classes"][j])
            top, bottom = axes[0, col], axes[1, col]
            top.imshow(img, cmap=None if img.ndim == 3 else "gray")
            top.set_title(f"{_short_id(d['ids'][j])}\ntrue {name(truth)}", fontsize=7)
            bottom.imshow(img, cmap=None if img.ndim == 3 else "gray")
            if float(heat.max() - heat.min()) < EMPTY_MAP:
                bottom.text(0.5, 0.5, "empty map:\nno gradient\nat this layer", transform=bottom.transAxes,
                            ha="center", va="center", fontsize=7, color="white",
                            bbox={"facecolor": "black", "alpha": 0.6, "pad": 2})
            else:
                bottom.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ok = truth == said
            bottom.set_title(f"predicted {name(said)} {'✓' if ok else '✗'}", fontsize=7,
                             color="#1a7f37" if ok else "#cf222e")
            for ax in (top, bottom):
                ax.set_axis_off()
        fig.suptitle(f"{c} ({d['run_id']}): Grad-CAM at {str(d['layer'])[:50]}", fontsize=8)
        fig.tight_layout()
        made.append(_save(fig, out / "gradcam" / f"{c}.png"))
    return made


def forest_plot(pair: dict[str, Any], out: Path) -> Path:
    """One pair across datasets (``stats.meta.across_datasets``): each dataset's difference with its own
    interval, the pooled mean with its interval, and the prediction interval for a new dataset."""
    rows = list(pair.get("per_dataset", {}).items())
    fig, ax = plt.subplots(figsize=(6.4, 1.2 + 0.42 * (len(rows) + 2)))
    for i, (_, d) in enumerate(rows):
        y = len(rows) + 1 - i
        ax.plot([d["ci_low"], d["ci_high"]], [y, y], color="tab:blue", lw=1.5)
        ax.plot(d["difference"], y, "s", color="tab:blue")
        ax.text(1.02, y, d["verdict"], transform=ax.get_yaxis_transform(), va="center", fontsize=7)
    if "ci_low" in pair:
        ax.plot([pair["ci_low"], pair["ci_high"]], [0.5, 0.5], color="black", lw=3)
        ax.plot(pair["difference"], 0.5, "D", color="black")
        ax.text(1.02, 0.5, pair["verdict"], transform=ax.get_yaxis_transform(), va="center", fontsize=7,
                weight="bold")
    if pair.get("prediction_interval"):
        lo, hi = pair["prediction_interval"]
        ax.plot([lo, hi], [0.0, 0.0], color="grey", lw=1, ls="--")
    ax.axvline(0, color="grey", lw=0.8)
    m = pair.get("min_effect") or 0
    if m:
        ax.axvspan(-m, m, color="grey", alpha=0.12, lw=0)
    labels = [n for n, _ in rows]
    ax.set_yticks([len(rows) + 1 - i for i in range(len(rows))] + [0.5, 0.0],
                  labels + ["pooled (mean, interval)", "a new dataset (prediction)"], fontsize=8)
    direction = "higher is better" if pair.get("higher_is_better", True) else "lower is better"
    ax.set_xlabel(f"{pair['a']} − {pair['b']} ({direction})")
    ax.set_title(f"{pair['a']} vs {pair['b']} across {pair['k']} datasets", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / f"forest_{pair['a']}_vs_{pair['b']}.png")


# -- the figures a task names (Task.figures): each drawn from what the study saved -----------------------
FigureFn = Callable[[StudyStore, Any, pd.DataFrame, dict, list[str], Path], "Path | list[Path] | None"]
TASK_FIGURES: dict[str, FigureFn] = {}


def task_figure(name: str) -> Callable[[FigureFn], FigureFn]:
    """Decorator: ``fn(store, study, df, evaluations, order, out)`` draws the figure a task names ``name``."""

    def wrap(fn: FigureFn) -> FigureFn:
        TASK_FIGURES[name] = fn
        return fn

    return wrap


@task_figure("confusion_matrices")
def _confusion(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path) -> Path:
    thresholded = task_class(study.task).thresholded
    return confusion_matrices(ev, order, study.evaluation.threshold if thresholded else None, out,
                              class_names_of(store, ev))


def class_names_of(store: StudyStore, evaluations: dict) -> list[str] | None:
    """The classes' names, label k first: the data's (data_checks.json), or a dense task's predictions'."""
    from bakeoff.runs.store import DATA_CHECKS_FILE
    from bakeoff.utils import read_json

    path = store.root / DATA_CHECKS_FILE
    named = (read_json(path).get("class_names") or {}) if path.is_file() else {}
    if named:
        return [str(named.get(str(k), k)) for k in range(max(int(k) for k in named) + 1)]
    for v in evaluations.values():
        names = (v.get("preds") or {}).get("test", {}).get("class_names")
        if names:
            return [str(n) for n in names]
    return None


@task_figure("roc_curves")
def _roc(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path) -> Path | None:
    return roc_curves(ev, order, study.task, out)


@task_figure("gradcam")
def _gradcam(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path) -> list[Path]:
    return gradcam_pictures(store, df, order, out)


@task_figure("class_scores")
def _class_scores(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path
                  ) -> Path | None:
    first = next(iter(ev.values()))["preds"]["test"]
    return class_scores(df, order, first["class_names"], out)


@task_figure("qualitative")
def _qualitative(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path
                 ) -> Path | None:
    return qualitative(ev, order, out)


@task_figure("instances")
def _instances(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path
               ) -> list[Path]:
    """Instance segmentation's figures: AP against the IoU threshold, and the objects outlined."""
    drawn = [ap_vs_iou(df, order, out), qualitative(ev, order, out, instances=True)]
    return [p for p in drawn if p is not None]


@task_figure("feature_maps")
def _feature_maps(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path
                  ) -> Path | None:
    return feature_maps(store, df, order, out)


@task_figure("predicted_vs_true")
def predicted_vs_true(store: StudyStore, study: Any, df: pd.DataFrame, ev: dict, order: list[str], out: Path
                      ) -> Path | None:
    """Regression on test: prediction against truth (top) and residual against truth (bottom), one column
    per contender, every run's test samples as points (one colour per contender, runs overlaid)."""
    colors = _colors(order)
    cols = [c for c in order if any(k[0] == c for k in ev)]
    if not cols:
        return None
    fig, axes = plt.subplots(2, len(cols), figsize=(3.6 * len(cols), 6.4), squeeze=False, sharex=True)
    ys = np.concatenate([np.asarray(v["preds"]["test"]["y"], float) for v in ev.values()])
    lo, hi = float(ys.min()), float(ys.max())
    pad = 0.05 * (hi - lo or 1.0)
    for j, contender in enumerate(cols):
        runs = [v for (c, _), v in ev.items() if c == contender]
        y = np.concatenate([np.asarray(v["preds"]["test"]["y"], float) for v in runs])
        p = np.concatenate([np.asarray(v["preds"]["test"]["probs"], float).reshape(-1) for v in runs])
        maes = [v["eval"]["test"].get("mae", np.nan) for v in runs]
        top, bottom = axes[0, j], axes[1, j]
        top.scatter(y, p, s=6, alpha=0.35, color=colors[contender], lw=0)
        top.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ":", color="grey")
        top.set_title(f"{contender}\nMAE {np.nanmean(maes):.3g} ± {_sd(maes):.2g} ({len(runs)} run(s))", fontsize=9)
        bottom.scatter(y, p - y, s=6, alpha=0.35, color=colors[contender], lw=0)
        bottom.axhline(0, ls=":", color="grey")
        bottom.set_xlabel("true value")
        if j == 0:
            top.set_ylabel("predicted value")
            bottom.set_ylabel("residual (predicted - true)")
    fig.suptitle("Predictions on test: predicted vs true and residuals (all runs)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "predicted_vs_true.png")


def suite_cd_diagram(ranks: dict[str, Any], out: Path) -> Path:
    """Mean ranks over datasets (``stats.aggregate.mean_ranks``) as a critical-difference diagram
    (scikit-posthocs): contenders joined by a bar are not told apart by Wilcoxon + Holm over the datasets
    (with too few datasets to test, every contender is joined, and the title says so)."""
    import scikit_posthocs as sp

    avg = pd.Series(ranks["average_ranks"], dtype=float)
    names = list(avg.index)
    sig = pd.DataFrame([[1.0 if ranks["p_holm"][a][b] is None else ranks["p_holm"][a][b] for b in names]
                        for a in names], index=names, columns=names)
    fig, ax = plt.subplots(figsize=(7, 0.9 + 0.35 * len(names)))
    sp.critical_difference_diagram(avg, sig, ax=ax, alpha=ranks["alpha"])
    tested = "" if not ranks.get("note") else "\n(too few datasets to test: a picture of the ranks)"
    ax.set_title(f"Mean ranks over {ranks['n_datasets']} datasets; a bar joins contenders that Wilcoxon + Holm "
                 f"cannot tell apart{tested}", fontsize=8.5)
    fig.tight_layout()
    return _save(fig, out / "cd_diagram.png")


def performance_profiles(summaries: dict[str, Any], out: Path) -> Path:
    """rliable's performance profiles: for each score t, the fraction of runs above t (averaged over
    datasets), one line per contender."""
    prof = summaries["estimates"]["profiles"]
    t = np.asarray(prof["thresholds"])
    colors = _colors(list(prof["fraction_above"]))
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for c, frac in prof["fraction_above"].items():
        ax.step(t, frac, where="post", label=c, color=colors[c])
    sign = "" if summaries["higher_is_better"] else "−"
    ax.set_xlabel(f"{sign}{summaries['metric']} (threshold t)")
    ax.set_ylabel("fraction of runs above t")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    ax.set_title("Performance profiles over every run of every dataset", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "performance_profiles.png")


def _short_id(sample_id: Any, width: int = 18) -> str:
    """A sample's id as a panel title: its file name without the folders, shortened with an ellipsis."""
    text = str(sample_id).replace("\\", "/").rsplit("/", 1)[-1]
    return text if len(text) <= width else text[:width - 1] + "…"


def _save(fig: plt.Figure, path: Path) -> Path:
    """PNG (what the report embeds) and SVG (for papers) side by side, each written atomically; within the
    report's ``figsave.in_background`` block by a forked writer while the report goes on."""
    figsave.save(fig, path, _png_and_svg, plt.close)
    return path


def saving_in_background() -> Any:
    """The report's block in which figures are written by forked writers (``figsave``); files on leaving."""
    return figsave.in_background(_png_and_svg, plt.close)


def _png_and_svg(fig: plt.Figure, path: Path) -> None:
    save_figure(fig, path, dpi=110)
    save_figure(fig, path.with_suffix(".svg"))


def save_figure(fig: plt.Figure, path: Path, **kwargs: Any) -> None:
    """``fig.savefig`` whole or not at all (a kill or a full disk never leaves half a picture)."""
    import io

    from bakeoff.utils import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip("."), **kwargs)
    atomic_write_bytes(path, buf.getvalue())
