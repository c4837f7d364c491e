"""A suite: one bake-off over several datasets (``bakeoff run SUITE.yaml --out DIR``).

A suite file names its datasets (each a ``data:`` section, or a study file whose ``data:`` it takes) and
one set of contenders, one protocol and one evaluation shared by all; a dataset may override protocol
settings (recorded in ``suite.json`` and listed). Every dataset's study is exactly what ``bakeoff run``
makes (``DIR/datasets/NAME/``: its runs, report and verdicts), so a suite resumes as its studies do; then
``bakeoff.stats.meta.suite_comparison`` answers across the datasets and ``DIR/suite.json`` holds it, with
a forest plot per pair (``DIR/plots/forest_*.png``).

All datasets' runs go through one executor (``runs.executor.execute_all``), so a Ray pool or a SLURM
queue holds every dataset's runs at once. ``DIR/report.html`` puts the answer first, with the summaries of
``bakeoff.stats.aggregate`` beside it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bakeoff.config import (
    SAFE_NAME,
    StudyConfig,
    _deep_merge,
    apply_overrides,
    check_folder_name,
    format_validation_error,
    read_yaml,
)
from bakeoff.errors import BakeoffError
from bakeoff.utils import read_json, write_json

SUITE_FILE = "suite.json"
SUITE_STUDY = "suite.yaml"


class DatasetEntry(BaseModel):
    """One dataset of a suite: its ``data:`` section, or the study file it comes from (its ``data:``)."""

    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] | None = None
    study: str | None = None  # a study file: its data section (relative paths: to that file)
    protocol: dict[str, Any] = Field(default_factory=dict)  # this dataset's overrides (recorded, listed)
    evaluation: dict[str, Any] = Field(default_factory=dict)  # e.g. another primary metric (normalise: relative)

    @model_validator(mode="after")
    def _one_source(self) -> DatasetEntry:
        if (self.data is None) == (self.study is None):
            raise ValueError("expected exactly one of data: (a data section) or study: (a study file)")
        return self


class SuiteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=SAFE_NAME)
    task: str = "binary_classification"
    datasets: dict[str, DatasetEntry] = Field(min_length=2)
    contenders: dict[str, Any] = Field(min_length=1)
    protocol: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)
    execution: dict[str, Any] = Field(default_factory=dict)
    tracking: dict[str, Any] = Field(default_factory=dict)
    # how datasets' scores are put on one scale before pooling (bakeoff.stats.meta.NORMALISATIONS): "none"
    # (one metric, as measured) or "relative" (a fraction of the baseline's score on each dataset)
    normalise: Literal["none", "relative"] = "none"

    @field_validator("datasets")
    @classmethod
    def _names(cls, v: dict[str, DatasetEntry]) -> dict[str, DatasetEntry]:
        for name in v:  # each dataset's study is the folder datasets/NAME/ of the suite's directory
            check_folder_name(name, "dataset", "datasets/NAME/", "dataset_a")
        return v


def is_suite_file(path: str | Path) -> bool:
    """Whether a YAML file is a suite (it has ``datasets:``) rather than a study."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the study reader says what is wrong with it
    return isinstance(raw, dict) and "datasets" in raw


def is_suite_dir(path: str | Path) -> bool:
    return (Path(path) / SUITE_STUDY).is_file()


class Suite:
    """A validated suite; ``run(out)`` runs every dataset's study and answers across them."""

    def __init__(self, config: SuiteConfig, base_dir: Path) -> None:
        self.config = config
        self.base_dir = base_dir
        self.studies = {name: self._study(name) for name in config.datasets}  # every one checked before any runs
        self._check_metrics()

    def _check_metrics(self) -> None:
        """One scale for pooling: one primary metric, or ``normalise: relative`` over metrics of one direction."""
        from bakeoff.tasks.metric import metric_info

        primary = {n: s.evaluation.primary for n, s in self.studies.items()}
        if len(set(primary.values())) > 1:
            listed = ", ".join(f"{n}: {m}" for n, m in primary.items())
            if self.config.normalise == "none":
                raise BakeoffError(f"datasets: the primary metrics differ ({listed}); expected one metric for all, or "
                                   f"normalise: relative to pool them as fractions of the baseline's score")
            directions = {metric_info(str(m), self.config.task).higher_is_better for m in primary.values()}
            if len(directions) > 1:
                raise BakeoffError(f"datasets: the primary metrics differ in direction ({listed}: some higher is "
                                   f"better, some lower); expected metrics that point the same way")

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Suite:
        path = Path(path)
        raw = read_yaml(path.read_text(encoding="utf-8"), str(path))
        if not isinstance(raw, dict):
            raise BakeoffError(f"{path}: expected a mapping with keys name, task, datasets, contenders, ...")
        raw = apply_overrides(raw, overrides or [])
        try:
            cfg = SuiteConfig.model_validate(raw)
        except ValidationError as exc:
            raise BakeoffError(format_validation_error(exc, str(path), overrides)) from None
        return cls(cfg, path.parent)

    def _study(self, name: str) -> StudyConfig:
        """Dataset ``name``'s study: the suite's contenders, protocol (with the dataset's overrides) and
        evaluation on its data."""
        from bakeoff.tasks import validate_study

        entry = self.config.datasets[name]
        where = f"datasets.{name}"
        base = self.base_dir
        data = entry.data
        if entry.study is not None:
            file = (self.base_dir / entry.study).expanduser()
            if not file.is_file():
                raise BakeoffError(f"{where}.study: {file} not found; expected a study file whose data: section "
                                   f"this dataset uses")
            own = read_yaml(file.read_text(encoding="utf-8"), str(file))
            data, base = (own or {}).get("data"), file.parent
            if not isinstance(data, dict):
                raise BakeoffError(f"{where}.study: {file} has no data: section; expected one")
        raw = {"name": f"{self.config.name}.{name}"[:64], "task": self.config.task, "data": copy.deepcopy(data),
               "protocol": _deep_merge(copy.deepcopy(self.config.protocol), entry.protocol),
               "contenders": copy.deepcopy(self.config.contenders),
               "evaluation": _deep_merge(copy.deepcopy(self.config.evaluation), entry.evaluation),
               "execution": copy.deepcopy(self.config.execution),
               "tracking": copy.deepcopy(self.config.tracking)}
        try:
            return validate_study(raw, source=f"{where}", base_dir=base)
        except BakeoffError as exc:
            raise BakeoffError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None

    def run(self, out: str | Path, progress: Any = None, detach: bool = False) -> dict[str, Any] | None:
        """Every dataset's study in ``out/datasets/NAME`` (resumed where it stopped), all their runs through
        one executor (Ray fills its workers from every dataset; SLURM queues every dataset's jobs before it
        waits), then the answer across them in ``out/suite.json``. ``detach`` (SLURM): submit and return None."""
        from bakeoff.runs.executor import execute_all, executor_for
        from bakeoff.study import Study
        from bakeoff.utils import atomic_write_text

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        saved = out / SUITE_STUDY
        mine = yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False)
        if saved.is_file() and saved.read_text(encoding="utf-8") != mine:
            old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
            if set(old.get("datasets", {})) != set(self.config.datasets) or old.get("name") != self.config.name:
                raise BakeoffError(f"--out {out}: holds suite {old.get('name')!r} with datasets "
                                   f"{sorted(old.get('datasets', {}))}; expected an empty directory or this "
                                   f"suite's own: use another --out")
        atomic_write_text(saved, mine)
        opened = []
        try:
            for name, config in self.studies.items():  # every dataset checked and planned before any training
                study = Study(config)
                try:
                    opened.append((study, *study.open(out / "datasets" / name, progress, detach)))
                except BakeoffError as exc:  # (a missing file, a bad label: which dataset's)
                    where = f"datasets.{name}"
                    raise BakeoffError(str(exc) if str(exc).startswith(where) else f"{where}: {exc}") from None
            if progress is not None:
                from bakeoff.runs.events import Planned

                progress(Planned([r for _, _, runs in opened for r in runs]))
            first = opened[0][0].config.execution  # one execution section for the suite
            execute_all(executor_for(first, detach=detach), [(s.context, store, runs) for s, store, runs in opened],
                        progress)
            if detach:
                return None
            for study, store, _ in opened:
                study.finish(store)
        finally:
            for _, store, _ in opened:
                store.unlock()
        return summarize(out, self.config)


def saved_suite(out: str | Path) -> SuiteConfig:
    """The suite a suite directory was run with (``DIR/suite.yaml``)."""
    return SuiteConfig.model_validate(yaml.safe_load((Path(out) / SUITE_STUDY).read_text(encoding="utf-8")))


def summarize(out: str | Path, config: SuiteConfig | None = None, make_plots: bool = True) -> dict[str, Any]:
    """``suite.json`` from the datasets' saved comparisons and runs (every number from
    ``stats.study.suite_result``), then the figures and the suite's page. Returns suite.json's content with
    ``plots`` (name -> file) and ``report`` (the page) added."""
    from bakeoff.stats.study import suite_result

    out = Path(out)
    config = config or saved_suite(out)
    comparisons = {}
    for name in config.datasets:
        path = out / "datasets" / name / "comparison.json"
        if not path.is_file():
            raise BakeoffError(f"{out}: dataset {name} has no comparison.json yet; expected every dataset's study "
                               f"run: run the suite again to finish it")
        comparisons[name] = read_json(path)
    runs, costs = _dataset_runs(out, config, comparisons)
    overrides = {n: {k: v for k, v in (("protocol", e.protocol), ("evaluation", e.evaluation)) if v}
                 for n, e in config.datasets.items() if e.protocol or e.evaluation}
    try:
        result = suite_result(config.name, comparisons, runs, costs, alpha=float(config.evaluation.get("alpha", 0.05)),
                              normalise=config.normalise, contenders=list(config.contenders), overrides=overrides)
    except ValueError as exc:
        raise BakeoffError(f"{out}: {exc}; expected scores away from 0 for normalise: relative, or normalise: "
                           f"none") from None
    plots: dict[str, str] = {}
    if make_plots:
        from bakeoff.report.plots import forest_plot, performance_profiles, suite_cd_diagram

        folder = out / "plots"
        plots = {f"forest {p['a']} vs {p['b']}": str(forest_plot(p, folder)) for p in result["pairs"]}
        summaries = result["summaries"]
        if "ranks" in summaries:
            plots["critical difference"] = str(suite_cd_diagram(summaries["ranks"], folder))
            plots["performance profiles"] = str(performance_profiles(summaries, folder))
    write_json(out / SUITE_FILE, result)  # the same file with or without figures
    from bakeoff.report.suite_page import write_suite_report

    page = write_suite_report(out, result, config, plots)  # without figures under --no-plots
    return {**result, "plots": plots, "report": str(page)}


def _dataset_runs(out: Path, config: SuiteConfig, comparisons: dict[str, dict[str, Any]]
                  ) -> tuple[dict[str, dict[str, list[float]]], dict[str, Any]]:
    """Each dataset's finished runs' test scores on the primary metric, per contender (its results.csv),
    and the training time summed per contender and over the suite."""
    import pandas as pd

    runs: dict[str, dict[str, list[float]]] = {}
    per_contender: dict[str, float] = {}
    n_runs = 0
    for name, comp in comparisons.items():
        table = pd.read_csv(out / "datasets" / name / "results.csv")
        done = table[table["status"] == "done"]
        column = f"test_{comp['primary']}"
        runs[name] = {str(c): [float(v) for v in g[column].dropna()] for c, g in done.groupby("contender")} \
            if column in done else {}
        n_runs += len(done)
        if "train_time_s" in done:
            for c, g in done.groupby("contender"):
                per_contender[str(c)] = per_contender.get(str(c), 0.0) + float(g["train_time_s"].sum())
    return runs, {"runs": n_runs, "train_time_s": per_contender, "total_train_time_s": sum(per_contender.values())}
