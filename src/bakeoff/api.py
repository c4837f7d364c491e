"""The Python API, and everything the command line asks of bakeoff.

``Study`` (``bakeoff.study``) runs a study file or a few lines of Python; ``Suite`` (``bakeoff.suite``)
runs one over several datasets. The functions below are what each ``bakeoff`` command calls: the command
parses its options, calls one of them and prints what it returns, so the command line holds no study logic
of its own (the layer contract, ``.importlinter``, lets ``bakeoff.cli`` import this module, the errors and
nothing else of bakeoff). They are as usable from a notebook: ``study_status(DIR)`` is the table ``bakeoff
status DIR`` prints.

Nothing heavy is imported here at module level: ``bakeoff status``, ``--help`` and a finished study run
again answer without torch, Lightning or matplotlib (each function imports what it needs; ``Study`` and
the other re-exported names load on first use, PEP 562).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bakeoff.errors import BakeoffError

_LAZY = {"Study": "bakeoff.study", "Suite": "bakeoff.suite", "StudyReport": "bakeoff.report.build",
         "rebuild_report": "bakeoff.report.build", "study_caches": "bakeoff.data.cache",
         "cache_note": "bakeoff.data.cache", "is_suite_file": "bakeoff.suite", "is_suite_dir": "bakeoff.suite",
         "events": "bakeoff.runs", "contender_costs": "bakeoff.runs.status", "run_time_guess": "bakeoff.runs.status",
         "MIN_SEEDS": "bakeoff.stats.sequential", "ASSURANCE": "bakeoff.stats.design",
         "grid_table": "bakeoff.stats.plan", "shares_text": "bakeoff.stats.plan", "SUITE_FILE": "bakeoff.suite",
         "create_trainer": "bakeoff.trainer"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bakeoff.api' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


# --- bakeoff run ---------------------------------------------------------------------------------------------

def load_checked(study: str | Path, overrides: list[str] | None = None) -> Any:
    """The study file validated, with a typo in a model, loss or metric name answered before torch or the
    data load (``bakeoff.tasks.names``): a ``StudyConfig``."""
    from bakeoff.tasks import load_study
    from bakeoff.tasks.names import check_names

    cfg = load_study(study, overrides or [])
    check_names(cfg)
    return cfg


def check_sequential_options(sequential: bool, max_seeds: int | None, detach: bool) -> None:
    """``--max-seeds`` and ``--detach`` against the study's design, before anything is read or trained."""
    if max_seeds is not None and max_seeds < 3:
        raise BakeoffError(f"--max-seeds {max_seeds}: expected at least 3 (a seed-to-seed variance needs 2 degrees "
                           f"of freedom)")
    from bakeoff.config import SequentialConfig

    top = SequentialConfig.model_fields["max_seeds"].metadata  # the study file's own bound (le=100), said once
    cap = next((m.le for m in top if getattr(m, "le", None) is not None), None)
    if max_seeds is not None and cap is not None and max_seeds > cap:
        raise BakeoffError(f"--max-seeds {max_seeds}: expected at most {cap}, as evaluation.sequential.max_seeds "
                           f"(each look spends part of alpha: with that many looks the nominal levels reach 0 and "
                           f"the study would never end)")
    if max_seeds is not None and not sequential:
        raise BakeoffError("--max-seeds: only with --until-decided (or evaluation.sequential in the study file)")
    if detach and sequential:
        raise BakeoffError("--detach: a sequential study decides after each round whether to go on; expected "
                           "--until-decided without --detach (run it where it can wait for the jobs)")


@dataclass
class Finished:
    """A finished study run again with nothing changed: what its saved files say (no torch loaded)."""

    name: str
    runs: int
    pairs: list[dict[str, Any]]  # comparison.json's pairs


def finished_study(cfg: Any, out: str | Path) -> Finished | None:
    """``Finished`` when every run of ``cfg`` is done in ``out`` and nothing changed (settings, data files,
    runs), else None."""
    from bakeoff.runs.finished import nothing_to_do
    from bakeoff.runs.store import StudyStore
    from bakeoff.utils import read_json

    store = StudyStore(out)
    if not (store.root / "study.yaml").is_file() or not nothing_to_do(store, cfg):
        return None
    comp = store.root / "comparison.json"
    pairs = read_json(comp).get("pairs", []) if comp.is_file() else []
    return Finished(cfg.name, len(store.read_plan() or []), pairs)


# --- bakeoff report, evaluate ----------------------------------------------------------------------------------

def rebuild_suite(out: str | Path, make_plots: bool = True) -> dict[str, Any]:
    """A suite directory's reports again from its saved runs: each dataset's, then the answer across them
    (suite.json with ``plots`` and ``report`` added)."""
    from bakeoff.report.build import rebuild_report
    from bakeoff.suite import saved_suite, summarize

    out = Path(out)
    cfg = saved_suite(out)
    for name in cfg.datasets:
        rebuild_report(out / "datasets" / name, make_plots=make_plots)
    return summarize(out, cfg, make_plots=make_plots)


def report_output(result: Any) -> list[tuple[Any, str | None]]:
    """What a study's result shows on a terminal, in order: (a rich renderable or a line, its style)."""
    from bakeoff.report import build as b

    shown: list[tuple[Any, str | None]] = [(b.terminal_table(result), None)]
    if result.comparison.get("pairs"):
        shown.append((b.verdict_table(result), None))
    shown += [(line, None) for line in [*b.design_lines(result.comparison), *b.across_run_lines(result)]]
    if b.ranking_line(result):
        shown.append((b.ranking_line(result), None))
    shown += [(line, None) for line in b.fairness_lines(result)]
    shown += [(line, "red") for line in b.failure_lines(result)]
    shown += [(line, "yellow") for line in b.health_lines(result)]
    missing = result.comparison.get("incomplete")
    if missing:
        shown.append((missing["text"] + " (bakeoff status shows each; the same run command finishes them)", "yellow"))
    return shown


# --- bakeoff clean ---------------------------------------------------------------------------------------------

@dataclass
class Cleaning:
    """What ``clean`` deletes in a study directory: run directories the current study no longer uses, and
    decoded-image folders (path, size) of earlier files or settings; ``current``: those of the current data,
    deleted only with ``cache``."""

    root: Path
    stale: list[Path]
    old: list[tuple[Path, str]]
    current: list[tuple[Path, str]]
    cache: bool

    @property
    def gone(self) -> list[tuple[Path, str]]:
        return self.old + (self.current if self.cache else [])


def suite_datasets(out: str | Path) -> list[tuple[str, Path]] | None:
    """A suite directory's datasets (name, study directory); None when ``out`` is not a suite directory."""
    from bakeoff.suite import is_suite_dir, saved_suite

    out = Path(out)
    return [(n, out / "datasets" / n) for n in saved_suite(out).datasets] if is_suite_dir(out) else None


def cleaning(out: str | Path, cache: bool = False) -> Cleaning:
    """What ``clean_study`` would delete in the study directory ``out`` (nothing is deleted here)."""
    from bakeoff.data.cache import study_caches
    from bakeoff.runs.store import StudyStore

    store = StudyStore(out)
    store.saved_study()  # a study directory, or one line saying it is not
    current, old = study_caches(Path(out))
    return Cleaning(store.root, store.stale(), old, current, cache)


def clean_study(plan: Cleaning) -> None:
    """Delete what ``plan`` lists, with the study directory locked, and the emptied folders of DIR/stale."""
    import shutil

    from bakeoff.runs.store import StudyStore

    store = StudyStore(plan.root)
    store.lock()
    try:
        for p in [*plan.stale, *(p for p, _ in plan.gone)]:
            shutil.rmtree(p)
        for d in sorted((plan.root / "stale").glob("**/"), key=lambda q: -len(q.parts)):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    finally:
        store.unlock()


# --- bakeoff check ---------------------------------------------------------------------------------------------

@dataclass
class Checked:
    """A study checked without training: its data read and split, every contender built and run on a dummy
    batch, its runs planned."""

    name: str
    task: str
    samples: int
    shape: tuple[int, ...] | None
    contenders: list[str]
    runs: int
    cache_note: str = ""


def check_study(study: str | Path | Any, out: str | Path | None = None, overrides: list[str] | None = None) -> Checked:
    """``bakeoff check STUDY``: the file, the data, every contender on a dummy batch, and ``out`` if given
    (``study``: a file, or a validated ``StudyConfig``)."""
    cfg = study if not isinstance(study, (str, Path)) else load_checked(study, overrides)  # (before torch)
    from bakeoff.runs.store import StudyStore

    if out is not None:
        StudyStore(out).check_for(cfg)
    from bakeoff.data.cache import cache_note
    from bakeoff.study import Study

    s = Study(cfg)
    runs = s.plan()
    data = s.context.data
    shape = tuple(data.X.shape[1:]) if hasattr(data, "X") else None
    return Checked(cfg.name, cfg.task, len(data.ids), shape, list(cfg.contenders), len(runs),
                   cache_note(data, cfg.data.cache_dir, None if out is None else Path(out)))


@dataclass
class CheckedSuite:
    name: str
    datasets: list[Checked]
    contenders: list[str]

    @property
    def runs(self) -> int:
        return sum(c.runs for c in self.datasets)


def check_suite(path: str | Path, out: str | Path | None = None, overrides: list[str] | None = None) -> CheckedSuite:
    """``bakeoff check SUITE``: the suite file, then every dataset's study as ``check_study`` checks one."""
    from bakeoff.suite import Suite

    suite = Suite.from_yaml(path, overrides or [])  # every dataset's study validated
    checked = []
    for name, cfg in suite.studies.items():
        try:
            checked.append(check_study(cfg, None if out is None else Path(out) / "datasets" / name))
        except BakeoffError as exc:
            raise BakeoffError(str(exc) if str(exc).startswith("datasets.") else f"datasets.{name}: {exc}") from None
        checked[-1].name = name
    return CheckedSuite(suite.config.name, checked, list(suite.config.contenders))


# --- bakeoff status --------------------------------------------------------------------------------------------

@dataclass
class StudyStatus:
    """Each planned run of a study directory with its state (``runs.status.RunState``), and the time left."""

    name: str
    primary: str
    runs: list[Any]
    states: list[Any]
    eta_s: float | None

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for st in self.states:
            counts[st.state] = counts.get(st.state, 0) + 1
        return counts


def study_status(out: str | Path) -> StudyStatus:
    """``bakeoff status DIR`` on a study directory: read from its files (a directory written before
    plan.json is planned again, which loads the data)."""
    from bakeoff.runs.status import run_states, study_eta
    from bakeoff.runs.store import StudyStore

    store = StudyStore(out)
    study = store.saved_study()
    runs = store.read_plan()
    if runs is None:
        from bakeoff.runs.context import StudyContext
        from bakeoff.runs.tuning import load_tuned

        ctx = StudyContext(study)
        ctx.tuned = load_tuned(store, list(study.contenders))
        runs = ctx.plan()
    states = run_states(store, runs)
    return StudyStatus(study.name, study.evaluation.primary, runs, states, study_eta(runs, states))


@dataclass
class SuiteStatus:
    name: str
    datasets: dict[str, dict[str, int] | None]  # dataset -> its runs counted by state ("runs": planned); None: not started
    answered: bool  # suite.json written

    def total(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for counts in self.datasets.values():
            for k, v in (counts or {}).items():
                if k != "runs":
                    total[k] = total.get(k, 0) + v
        return total


def suite_status(out: str | Path) -> SuiteStatus:
    """``bakeoff status DIR`` on a suite directory: each dataset's runs counted by state (nothing loaded)."""
    from bakeoff.runs.status import run_states
    from bakeoff.runs.store import StudyStore
    from bakeoff.suite import SUITE_FILE, saved_suite

    out = Path(out)
    cfg = saved_suite(out)
    rows: dict[str, dict[str, int] | None] = {}
    for name in cfg.datasets:
        store = StudyStore(out / "datasets" / name)
        runs = store.read_plan() if (store.root / "study.yaml").is_file() else None
        if runs is None:
            rows[name] = None
            continue
        counts = {"runs": len(runs)}
        for st in run_states(store, runs):
            counts[st.state] = counts.get(st.state, 0) + 1
        rows[name] = counts
    return SuiteStatus(cfg.name, rows, (out / SUITE_FILE).is_file())


# --- bakeoff export, compare -----------------------------------------------------------------------------------

def export(out: str | Path, to: str | Path, fmt: str = "safetensors", contender: str | None = None,
           seed: int | None = None, fold: int | None = None) -> dict[str, Any]:
    """One run's selected weights as a file other code loads, with its model card (returned)."""
    from bakeoff.runs.export import export_run

    return export_run(out, to, fmt, contender, seed, fold)


@dataclass
class FileComparison:
    """A verdict on two sets of predictions made elsewhere (``compare_predictions``)."""

    result: dict[str, Any]  # comparison.json's shape: primary, alpha, ..., pairs, multiple_testing
    evaluation: Any  # the EvaluationConfig it was judged with

    def output(self) -> list[str | Any]:
        """What ``bakeoff compare`` prints: the verdict table, the design lines, McNemar and DeLong."""
        from bakeoff.report.build import design_lines, verdict_table_rows

        pair = self.result["pairs"][0]
        mc, dl = pair["per_run"][0]["mcnemar_accuracy"], pair["per_run"][0]["delong_auroc"]
        return [verdict_table_rows(self.result, self.evaluation), *design_lines(self.result),
                f"McNemar (exact) on correctness at threshold {self.result['threshold']}: {mc['a_only_correct']} vs "
                f"{mc['b_only_correct']} discordant samples, p = {mc['p_value']:.4f}; DeLong AUROC {dl['auc_a']:.4f} "
                f"vs {dl['auc_b']:.4f}, p = {dl['p_value']:.4f}"]


def compare_predictions(a: str | Path, b: str | Path, labels: str | Path | None = None, metric: str = "auroc",
                        min_effect: float = 0.0, alpha: float = 0.05, threshold: float = 0.5,
                        out: str | Path | None = None) -> FileComparison:
    """The verdict on two files of per-sample predictions (binary labels, scores in [0, 1]) on the same
    samples: the study's pair statistics on one run each, written to ``out`` as JSON if given."""
    from pydantic import ValidationError

    from bakeoff.config import EvaluationConfig, format_validation_error
    from bakeoff.stats.compare import adjust_pairs, compare_pair
    from bakeoff.stats.external import paired_from_files
    from bakeoff.stats.paired import run_pair_tests
    from bakeoff.tasks import get_task
    from bakeoff.utils import write_json

    a, b = Path(a), Path(b)
    task = get_task("binary_classification")
    if metric not in task.metric_names or not task.metric(metric).resamplable:
        raise BakeoffError(f"--metric {metric!r}: expected one of {list(task.metric_names)}")
    try:
        ev = EvaluationConfig(primary=metric, min_effect=min_effect, alpha=alpha, threshold=threshold)
    except ValidationError as exc:
        raise BakeoffError(format_validation_error(exc, "compare")) from None
    runs = paired_from_files(a, b, None if labels is None else Path(labels), task, metric, threshold)
    pair = compare_pair(runs, a.stem, b.stem, ev,
                        per_run_tests=lambda key: run_pair_tests(task.per_run_tests, runs, key, ev))
    result = {"primary": metric, "alpha": alpha, "min_effect": min_effect, "threshold": threshold,
              "files": {"a": str(a), "b": str(b)}, "pairs": [pair]}
    result["multiple_testing"] = adjust_pairs(result["pairs"], metric, alpha)
    if out is not None:
        write_json(Path(out), result)
    return FileComparison(result, ev)


# --- bakeoff plan ----------------------------------------------------------------------------------------------

def plan_pilot(out: str | Path, *, min_effect: float | None = None, effect: float | None = None, power: float = 0.8,
               seeds: str | None = None, test_factors: str | None = None, sims: int = 2000,
               seed_sd: float | None = None, say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Each pair's plan (``stats.plan.plan_study``) from a pilot study directory, finished or still running:
    its comparison.json is rebuilt first when missing or older than a finished run (``say`` tells so)."""
    from bakeoff.stats.plan import DEFAULT_SEEDS, DEFAULT_TEST_FACTORS, plan_study
    from bakeoff.utils import read_json

    out = Path(out)
    path = out / "comparison.json"
    if seed_sd is not None and not seed_sd > 0:
        raise BakeoffError(f"--seed-sd {seed_sd}: expected a positive standard deviation in the metric's units")
    if not path.is_file() or _older_than_runs(path, out):
        if not (out / "study.yaml").is_file():
            raise BakeoffError(f"{path}: not found; expected a study directory (run `bakeoff run` first)")
        from bakeoff.report.build import rebuild_report

        say(f"{out}: reading the finished runs (comparison.json is missing or older than them)")
        rebuild_report(out, make_plots=False)
        if not path.is_file():
            raise BakeoffError(f"{path}: not written: no pair of contenders has a finished run in common yet; "
                               f"expected at least one finished run of each (bakeoff status {out})")
    if not 0 < power < 1:
        raise BakeoffError(f"--power {power}: expected a probability between 0 and 1, e.g. 0.8")
    try:
        seed_grid = tuple(int(x) for x in seeds.split(",")) if seeds else DEFAULT_SEEDS
        factor_grid = tuple(float(x) for x in test_factors.split(",")) if test_factors else DEFAULT_TEST_FACTORS
    except ValueError:
        raise BakeoffError(f"--seeds {seeds!r} / --test-factors {test_factors!r}: expected comma-separated "
                           f"numbers, e.g. --seeds 1,3,5 --test-factors 1,2") from None
    if min(seed_grid) < 1 or min(factor_grid) <= 0:
        raise BakeoffError("--seeds must be >= 1 and --test-factors > 0")
    try:
        comparison = read_json(path)
    except ValueError as exc:
        raise BakeoffError(f"{path}: not valid JSON ({exc}); rebuild it with `bakeoff report {out}`") from None
    return plan_study(comparison, min_effect=min_effect, effect=effect, seeds=seed_grid, test_factors=factor_grid,
                      target=power, sims=sims, seed_sd=seed_sd)


def write_plan(path: str | Path, plans: list[dict[str, Any]]) -> None:
    """``bakeoff plan --out FILE``: the plans as JSON."""
    from bakeoff.utils import write_json

    write_json(Path(path), {"pairs": plans})


def _older_than_runs(path: Path, out: Path) -> bool:
    """Whether a run finished after ``path`` was written (a study still running, or resumed)."""
    stamp = path.stat().st_mtime_ns
    return any(p.stat().st_mtime_ns > stamp for p in (out / "runs").glob("*/*/run.json"))


def suite_plan_lines(out: str | Path) -> list[str]:
    """What more datasets would buy, for each pair of a suite's answer (``stats.meta.more_datasets``)."""
    from bakeoff.stats.meta import more_datasets
    from bakeoff.suite import SUITE_FILE
    from bakeoff.utils import read_json

    path = Path(out) / SUITE_FILE
    return [more_datasets(p) for p in read_json(path)["pairs"] if p["k"] >= 2] if path.is_file() else []


# --- bakeoff list ----------------------------------------------------------------------------------------------

@dataclass
class Listing:
    """A registry as a table: its title, columns, rows and a caption."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    caption: str | None = None


def listing(kind: str, pattern: str = "*", provider: str | None = None) -> Listing:
    """``bakeoff list KIND [PATTERN]``: models, losses, sources, metrics or tasks whose names match."""
    kinds = {"models": _models, "losses": _losses, "sources": _sources, "tasks": _tasks, "metrics": _metrics}
    if kind not in kinds:
        raise BakeoffError(f"bakeoff list: unknown kind {kind!r}; expected models, losses, sources, metrics or tasks")
    return kinds[kind](pattern, provider)


def _models(pattern: str, provider: str | None) -> Listing:
    from bakeoff.models import list_models
    from bakeoff.models.registry import installed_providers, model_doc

    if provider is None:  # a search looks everywhere; the bare listing shows the built-ins
        provider = "bakeoff" if pattern == "*" else "all"
    names = list_models(pattern, provider)
    where = "every installed provider's" if provider == "all" else provider
    out = Listing(f"{where} models matching {pattern!r} (any case): {len(names)}", ["name", "description"],
                  [[n, model_doc(n)] for n in names])
    others = installed_providers()[1:] if provider == "bakeoff" and pattern == "*" else []
    if others:
        out.caption = (f"and {', '.join(others)}'s models: search with a pattern (bakeoff list models '*unet*') "
                       f"or --provider {others[0]}")
    return out


def _losses(pattern: str, provider: str | None) -> Listing:
    from bakeoff.losses import LOSSES, LossSpec
    from bakeoff.tasks import known_tasks

    own = [LossSpec(n, fn, (cls.name,)) for cls in known_tasks().values() for n, fn in cls.own_losses.items()]
    specs = [spec for spec in [*LOSSES.values(), *own] if fnmatch.fnmatch(spec.name, pattern)]
    return Listing(f"losses matching {pattern!r}: {len(specs)} (or your own package.module:callable)",
                   ["name", "tasks", "params (defaults)"],
                   [[s.name, ", ".join(s.kinds), ", ".join(f"{k}={v}" for k, v in s.params.items())] for s in specs])


def _sources(pattern: str, provider: str | None) -> Listing:
    from bakeoff.data.registry import load_sources
    from bakeoff.tasks import known_tasks

    sources = load_sources()
    known_tasks()  # a task's own built-in data register with it
    specs = [spec for spec in sources.values() if fnmatch.fnmatch(spec.name, pattern)]
    return Listing(f"data sources matching {pattern!r}: {len(specs)} (data.source: NAME[:ARGUMENT])",
                   ["name", "tasks", "description"],
                   [[s.name, "instance segmentation" if s.instances else "segmentation, particle picking" if s.dense
                     else "classification, regression", s.doc]
                    for s in specs])


def _tasks(pattern: str, provider: str | None) -> Listing:
    from bakeoff.tasks import known_tasks

    def settings(cls: Any) -> str:  # the task's own evaluation keys, with their defaults
        fields = cls.evaluation_settings.model_fields if cls.evaluation_settings is not None else {}
        return ", ".join(f"{k}={f.default}" for k, f in fields.items())

    return Listing("tasks (task: NAME in the study file)",
                   ["name", "default primary", "unit", "own evaluation settings", "description"],
                   [[n, c.default_primary, c.unit, settings(c), " ".join((c.__doc__ or "").split())]
                    for n, c in known_tasks().items() if fnmatch.fnmatch(n, pattern)])


def _metrics(pattern: str, provider: str | None) -> Listing:
    from bakeoff.tasks import known_tasks
    from bakeoff.tasks.metric import REGISTRY

    known_tasks()  # each task module registers its own metrics when it loads (tasks.metric._registered)
    by_name: dict[str, list[Any]] = {}
    for (task, name), m in REGISTRY.items():
        if fnmatch.fnmatch(name, pattern):
            by_name.setdefault(name, []).append((task, m))
    out = Listing(f"metrics matching {pattern!r}: {len(by_name)} (per-class ones follow each study's classes; "
                  f"your own: evaluation.metrics)", ["name", "better", "threshold", "tasks", "description"])
    for name, entries in by_name.items():
        m = entries[0][1]
        out.rows.append([name, "higher" if m.higher_is_better else "lower", "" if m.threshold_free else "yes",
                         ", ".join(t.replace("_classification", "").replace("semantic_", "") for t, _ in entries),
                         next((e.description for _, e in entries if e.description), "")])
    return out
