"""A methods paragraph generated from the resolved study and what the runs recorded (data sizes, splits,
protocol, seeds, hardware, tests, corrections, margin), with a BibTeX block for what it cites."""

from __future__ import annotations

from typing import Any

from bakeoff.tasks import task_class

BIB = {
    "bouthillier2021": """@inproceedings{bouthillier2021,
  author    = {Bouthillier, Xavier and Delaunay, Pierre and Bronzi, Mirko and others},
  title     = {Accounting for Variance in Machine Learning Benchmarks},
  booktitle = {Proceedings of Machine Learning and Systems},
  volume    = {3}, pages = {747--769}, year = {2021}
}""",
    "nadeau2003": """@article{nadeau2003,
  author  = {Nadeau, Claude and Bengio, Yoshua},
  title   = {Inference for the Generalization Error},
  journal = {Machine Learning},
  volume  = {52}, number = {3}, pages = {239--281}, year = {2003}
}""",
    "jennison2000": r"""@book{jennison2000,
  author    = {Jennison, Christopher and Turnbull, Bruce W.},
  title     = {Group Sequential Methods with Applications to Clinical Trials},
  publisher = {Chapman \& Hall/CRC}, year = {2000}
}""",
    "holm1979": """@article{holm1979,
  author  = {Holm, Sture},
  title   = {A Simple Sequentially Rejective Multiple Test Procedure},
  journal = {Scandinavian Journal of Statistics},
  volume  = {6}, number = {2}, pages = {65--70}, year = {1979}
}""",
    "delong1988": """@article{delong1988,
  author  = {DeLong, Elizabeth R. and DeLong, David M. and Clarke-Pearson, Daniel L.},
  title   = {Comparing the Areas under Two or More Correlated Receiver Operating Characteristic Curves:
             A Nonparametric Approach},
  journal = {Biometrics}, volume = {44}, number = {3}, pages = {837--845}, year = {1988}
}""",
    "mcnemar1947": """@article{mcnemar1947,
  author  = {McNemar, Quinn},
  title   = {Note on the Sampling Error of the Difference Between Correlated Proportions or Percentages},
  journal = {Psychometrika}, volume = {12}, number = {2}, pages = {153--157}, year = {1947}
}""",
    "wiesenfarth2021": """@article{wiesenfarth2021,
  author  = {Wiesenfarth, Manuel and Reinke, Annika and Landman, Bennett A. and Eisenmann, Matthias and
             Aguilera Saiz, Laura and Cardoso, M. Jorge and Maier-Hein, Lena and Kopp-Schneider, Annette},
  title   = {Methods and Open-Source Toolkit for Analyzing and Visualizing Challenge Results},
  journal = {Scientific Reports}, volume = {11}, pages = {2369}, year = {2021}
}""",
    "demsar2006": """@article{demsar2006,
  author  = {Dem{\\v{s}}ar, Janez},
  title   = {Statistical Comparisons of Classifiers over Multiple Data Sets},
  journal = {Journal of Machine Learning Research}, volume = {7}, pages = {1--30}, year = {2006}
}""",
    "paszke2019": """@inproceedings{paszke2019,
  author    = {Paszke, Adam and others},
  title     = {{PyTorch}: An Imperative Style, High-Performance Deep Learning Library},
  booktitle = {Advances in Neural Information Processing Systems 32}, pages = {8024--8035}, year = {2019}
}""",
    "falcon2019": """@software{falcon2019,
  author = {Falcon, William and {The PyTorch Lightning team}},
  title  = {{PyTorch Lightning}}, year = {2019}, doi = {10.5281/zenodo.3828935}
}""",
    "detlefsen2022": """@article{detlefsen2022,
  author  = {Detlefsen, Nicki Skafte and others},
  title   = {{TorchMetrics} -- Measuring Reproducibility in {PyTorch}},
  journal = {Journal of Open Source Software}, volume = {7}, number = {70}, pages = {4101}, year = {2022}
}""",
    "virtanen2020": """@article{virtanen2020,
  author  = {Virtanen, Pauli and others},
  title   = {{SciPy} 1.0: Fundamental Algorithms for Scientific Computing in {Python}},
  journal = {Nature Methods}, volume = {17}, pages = {261--272}, year = {2020}
}""",
    "seabold2010": """@inproceedings{seabold2010,
  author    = {Seabold, Skipper and Perktold, Josef},
  title     = {statsmodels: Econometric and Statistical Modeling with {Python}},
  booktitle = {Proceedings of the 9th Python in Science Conference}, pages = {92--96}, year = {2010}
}""",
    "cardoso2022": """@article{cardoso2022,
  author  = {Cardoso, M. Jorge and others},
  title   = {{MONAI}: An Open-Source Framework for Deep Learning in Healthcare},
  journal = {arXiv preprint arXiv:2211.02701}, year = {2022}
}""",
    "wightman2019": """@software{wightman2019,
  author = {Wightman, Ross},
  title  = {{PyTorch} Image Models}, year = {2019}, doi = {10.5281/zenodo.4414861}
}""",
}

def _split_words(split: Any, n_folds: int, grouped: bool = False, by_label: bool = True) -> str:
    how = ", stratified by class" if split.stratify and by_label else ""  # (dense tasks: split unstratified)
    how += ", each group of samples kept whole in one part" if grouped else ""
    if split.kind == "holdout":  # grouped, the fractions are those asked for; the sizes follow in the text
        return (f"one hold-out split ({1 - split.val_fraction - split.test_fraction:.0%} training, "
                f"{split.val_fraction:.0%} validation, {split.test_fraction:.0%} test{' asked' if grouped else ''}"
                f"{how})")
    if split.kind == "kfold":
        return (f"{split.folds}-fold cross-validation (each fold the test set once, {split.val_fraction:.0%} of "
                f"the rest held out for validation{how})")
    return f"the data's own {n_folds} predefined fold(s) ({split.kind})"


def _optimizer_words(opt: Any) -> str:
    """The optimizer with every setting that shapes it (weight decay; SGD's momentum, 0 in PyTorch)."""
    name = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD"}.get(opt.name, opt.name)
    extra = [f"learning rate {opt.lr:g}", f"weight decay {opt.weight_decay:g}"]
    if opt.name == "sgd":
        extra.append(f"momentum {opt.momentum:g}")
    return f"{name} ({', '.join(extra)}"


def methods_paragraph(study: Any, infos: list[dict], comparison: dict, checks: dict, stability: dict | None
                      ) -> tuple[str, str]:
    """The paragraph and its BibTeX: what was compared and how it was trained (``_design_sentences``), how
    it was judged (``_statistics_sentences``), and the software."""
    cites: list[str] = ["paszke2019", "falcon2019", "detlefsen2022", "virtanen2020", "seabold2010"]
    models = [c.model for c in study.contenders.values()]
    if any(m.startswith("monai:") for m in models):
        cites.append("cardoso2022")
    if any(m.startswith("timm:") for m in models):
        cites.append("wightman2019")
    done = [i for i in infos if i.get("status") == "done"]
    s = _design_sentences(study, done, comparison, checks)
    s += _statistics_sentences(study, comparison, stability, cites)
    versions = done[0].get("versions", {}) if done else {}
    lib = ", ".join(f"{k} {versions[k]}" for k in ("torch", "lightning", "torchmetrics") if k in versions)
    s.append(f" Analyses used bakeoff {versions.get('bakeoff', '')} with {lib} [paszke2019; falcon2019; "
             f"detlefsen2022], SciPy [virtanen2020] and statsmodels [seabold2010]"
             + ("; networks from MONAI [cardoso2022]" if "cardoso2022" in cites else "")
             + ("; networks from timm [wightman2019]" if "wightman2019" in cites else "") + ".")
    return "".join(s), "\n\n".join(BIB[k] for k in dict.fromkeys(cites))


def _design_sentences(study: Any, done: list[dict], comparison: dict, checks: dict) -> list[str]:
    """What was compared on which data and split, and how every contender was trained, on what."""
    names = list(study.contenders)
    p = study.protocol
    folds = sorted({i["fold"] for i in done})
    kind = task_class(study.task)
    unit = f"{kind.unit}s"
    counted = (done[0].get("split_sizes") or {}) if done else {}  # the parts' real sizes
    sizes = ", ".join(f"{part} {v:,}" for part, v in counted.items())
    n = checks.get("n_samples")
    s = [f"We compared {len(names)} contenders ({', '.join(names)}) for {kind.words or study.task.replace('_', ' ')} "
         f"on {n:,} {unit}" if isinstance(n, int) else f"We compared {len(names)} contenders ({', '.join(names)})",
         f" from {study.data.source}."]
    split_words = _split_words(study.data.split, len(folds), bool(checks.get("grouped_split")),
                               kind.stratify_by_label)
    s.append(f" Every contender used the same {split_words}"
             + (f" ({unit} per part in fold {folds[0]}: {sizes})" if sizes else "") + ".")
    dups = checks.get("exact_duplicates") or []
    if dups:
        s.append(f" {len(dups)} {unit} had a pixel-identical copy in another part of the split and were kept at the "
                 f"user's request (data.allow_duplicates), which can inflate the test scores.")
    mv = getattr(study.data, "mask_values", None)
    if mv:
        s.append(f" The mask values {', '.join(map(str, mv))} were read as classes {', '.join(map(str, range(len(mv))))}"
                 f" (data.mask_values).")
    s.append(_training_sentence(study, folds))
    missing = comparison.get("incomplete")
    if missing:
        per = {c: sum(i.get("contender") == c for i in done) for c in names}
        s.append(f" The study was unfinished when this was written: {missing['done']} of {missing['planned']} planned "
                 f"runs had finished ({', '.join(f'{c}: {n}' for c, n in per.items())}); every number below is from "
                 f"those runs, and the verdicts are provisional.")
    devices = sorted({str(i.get("device")) for i in done if i.get("device")})
    gpus = sorted({g for i in done for g in (i.get("hardware") or {}).get("gpus", [])})
    hw = ", ".join(gpus) if gpus and any(d.startswith("cuda") for d in devices) else "CPU"
    det = {((i.get("training") or {}).get("determinism") or {}).get("mode") for i in done} - {None}
    s.append(f" Training ran on {hw} at {p.precision} precision"
             + (f" with deterministic kernels ({', '.join(sorted(det))})" if det else "") + ".")
    decoded = checks.get("decoded") or {}
    if decoded.get("decode_s") is not None:  # image files: prepared once, apart from training
        s.append(f" The {decoded['images']:,} image files were decoded once, before training, into "
                 f"{'one array' if decoded.get('stored', '').split(' ')[0] in ('uint8', 'uint16', 'float32') else 'files'}"
                 f" of their stored type ({decoded['stored']}, {decoded['bytes'] / 1e6:,.1f} MB) in "
                 f"{decoded['decode_s']:,.1f} s, which every run read; intensities were normalised as they were read "
                 f"({study.data.normalize}).")
    return s


def _training_sentence(study: Any, folds: list[int]) -> str:
    p = study.protocol
    sched = "" if p.schedule.name == "none" else f" and a {p.schedule.name} learning-rate schedule"
    cw = p.loss.class_weights
    loss = (p.loss.name or f"{task_class(study.task).default_loss} (the task's default)") + (
        "" if cw in ("none", None) else f" ({cw if isinstance(cw, str) else 'given'} class weights)")
    overridden = sorted({k for c in study.contenders.values() for k in (c.protocol or {})})
    es = (f", stopping early after {p.early_stopping.patience} epochs without improvement"
          if p.early_stopping else "")
    return (f" Each contender was trained with {len(p.seeds)} seed(s) ({', '.join(map(str, p.seeds))})"
            f"{f' on each of {len(folds)} folds' if len(folds) > 1 else ''} for up to {p.epochs} epochs with "
            f"{_optimizer_words(p.optimizer)}, batch size {p.batch_size}){sched}, "
            f"loss {loss}"
            f"{', augmentation ' + ', '.join(p.augment) if p.augment else ''}, keeping the epoch with the best "
            f"{p.select.monitor}{es}; every other setting was identical across contenders"
            + (f", except the declared {', '.join(overridden)} per contender" if overridden else "")
            + " (the fairness audit lists every difference).")


def _statistics_sentences(study: Any, comparison: dict, stability: dict | None, cites: list[str]) -> list[str]:
    """How the contenders were judged; adds what it cites to ``cites``."""
    s: list[str] = []
    ev = study.evaluation
    pairs = comparison.get("pairs", [])
    if pairs:
        cites.append("holm1979")
        s.append(f" We report the test {ev.primary} as the mean over runs with its {1 - ev.alpha:.0%} confidence "
                 f"interval from a model of the design ({pairs[0]['ci_method']}).")
        s.append(f" Contenders were compared {'pairwise' if ev.pairs == 'all' else f'against {study.baseline}'} on "
                 f"{ev.primary} with paired tests on the shared test {pairs[0].get('unit', 'sample')}s and seeds; "
                 f"p-values were adjusted with Holm's method [holm1979] over {len(pairs)} comparison(s) at "
                 f"α = {ev.alpha:g}" + (f", and a difference was called better only beyond a margin of "
                                        f"{ev.min_effect:g} (equivalence by two one-sided tests)" if ev.min_effect else "")
                 + ".")
        s += _scope_sentences(ev, comparison, pairs, cites)
        s += _per_run_sentences(pairs, cites)
    if stability:
        cites.append("wiesenfarth2021")
        tau = stability["kendall_tau"].get("median")
        s.append(f" Ranking stability was assessed over {stability['n_boot']} bootstrap resamples of the "
                 f"{stability['resampled']} [wiesenfarth2021]"
                 + (f" (median Kendall's τ {tau:.2f} against the full-data ranking)" if tau is not None else "") + ".")
    if (comparison.get("ranking") or {}).get("p_value") is not None:
        cites.append("demsar2006")
        s.append(" Average ranks over independent test sets were compared with Friedman's test and Nemenyi's "
                 "critical difference [demsar2006].")
    return s


def _scope_sentences(ev: Any, comparison: dict, pairs: list[dict], cites: list[str]) -> list[str]:
    s: list[str] = []
    if any(pr.get("scope") == "trained weights" for pr in pairs):
        s.append(" With one seed per contender, seed-to-seed variation was not estimated: each verdict is about "
                 "the two trained models, not about the architectures or their training recipes [bouthillier2021].")
        cites.append("bouthillier2021")
    elif any(pr.get("seed_sd") for pr in pairs):
        s.append(f" With one seed per contender, a seed-to-seed standard deviation of the difference of "
                 f"{ev.seed_sd:g} was assumed (stated, not estimated) so that the verdicts concern the training "
                 f"recipes [bouthillier2021].")
        cites.append("bouthillier2021")
    if any("Nadeau" in pr.get("ci_method", "") for pr in pairs):
        s.append(" Folds trained with one seed were compared with the corrected resampled t test [nadeau2003].")
        cites.append("nadeau2003")
    seq = comparison.get("sequential")
    if seq:
        s.append(" " + seq["text"] + " [jennison2000]")
        cites.append("jennison2000")
    return s


def _per_run_sentences(pairs: list[dict], cites: list[str]) -> list[str]:
    per_run = {k for pr in pairs for r in pr.get("per_run", []) for k in r if k not in ("seed", "fold")}
    if "delong_auroc" in per_run:
        cites.append("delong1988")
    if any(k.startswith("mcnemar") for k in per_run):
        cites.append("mcnemar1947")
    if not per_run:
        return []
    named = [x for x, k in (("DeLong's test [delong1988]", "delong_auroc"),) if k in per_run]
    named += ["McNemar's exact test [mcnemar1947]"] if any(k.startswith("mcnemar") for k in per_run) else []
    named += ["Wilcoxon signed-rank tests over images"] if any(k.startswith("wilcoxon") for k in per_run) else []
    return [f" Per run we also report {' and '.join(named)}."] if named else []
