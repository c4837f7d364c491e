"""The Study API: ``Study`` runs a study file (or a few lines of Python) into its output directory. The
command line reaches it through ``bakeoff.api``, which re-exports it with the functions each command calls."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bakeoff.config import StudyConfig
from bakeoff.data.sources import ArrayData
from bakeoff.errors import BakeoffError
from bakeoff.report.build import StudyReport, build_report, rebuild_report
from bakeoff.runs.context import RunSpec, StudyContext
from bakeoff.runs.evaluate import EVALUATED_FILE
from bakeoff.runs.events import Progress
from bakeoff.runs.executor import executor_for, executor_spec
from bakeoff.runs.store import DATA_CHECKS_FILE, StudyStore
from bakeoff.runs.tuning import tune
from bakeoff.tasks import load_study, resolve_study, validate_study
from bakeoff.utils import read_json, write_json

# progress: a callback of typed events, bakeoff.runs.events (Started, EpochDone, Finished, ...)


class Study:
    """A validated study; ``run(out)`` trains whatever is not done yet and returns the report."""

    def __init__(self, config: StudyConfig, data: ArrayData | None = None) -> None:
        self.config = resolve_study(config)  # what the study leaves to its task, filled in
        self.context = StudyContext(self.config, data)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Study:
        return cls(load_study(path, overrides))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], data: ArrayData | None = None) -> Study:
        return cls(validate_study(raw), data)

    def plan(self) -> list[RunSpec]:
        self.context.validate()
        return self.context.plan()

    def run(self, out: str | Path, progress: Progress | None = None, detach: bool = False) -> StudyReport | None:
        """Run every run not yet done in ``out`` and build the report. ``detach`` (SLURM): submit the jobs
        and return None at once; ``bakeoff status`` / ``bakeoff report`` read the directory later."""
        store, runs = self.open(out, progress, detach)
        try:
            executor_for(self.config.execution, detach=detach).execute(self.context, store, runs, progress)
            return None if detach else self.finish(store)
        finally:
            store.unlock()

    def open(self, out: str | Path, progress: Progress | None = None, detach: bool = False
             ) -> tuple[StudyStore, list[RunSpec]]:
        """Everything before training: ``out`` checked and locked, the study planned and checked (everything
        that can fail does so here), tuning done, the plan written. The caller runs the runs through an
        executor, then ``finish``; and unlocks the store (``store.unlock()``) either way."""
        if detach and not executor_spec(self.config.execution.backend).detaches:
            raise BakeoffError(f"--detach: needs execution.backend: slurm (got {self.config.execution.backend!r}); "
                               f"expected an executor that submits jobs: local and Ray runs end with this process")
        store = StudyStore(out)
        store.check_for(self.config)  # the output directory first: seconds, before the data are loaded
        runs = self.plan()  # everything that can fail does so before any training
        if (store.root / EVALUATED_FILE).exists():
            raise BakeoffError(f"--out {store.root}: holds checkpoints evaluated with 'bakeoff evaluate'; training "
                               f"there would replace them. Use another --out directory")
        store.open_for(self.config)
        try:
            self.context.use_cache(store.root)  # image files decoded now, once, into DIR/cache (or data.cache_dir)
            write_json(store.root / DATA_CHECKS_FILE, self.context.data_checks)
            if self.config.tuning.mode != "none":
                self.context.tuned = tune(self.context, store, progress)
                runs = self.context.plan()
            store.write_plan(runs)
            store.adopt_earlier(runs, self.context.earlier_hash)
        except BaseException:
            store.unlock()
            raise
        return store, runs

    def finish(self, store: StudyStore) -> StudyReport:
        """The report from the runs in ``store`` (after the executor), stamped when nothing failed."""
        report = build_report(store, self.config)
        if len(report.failed) == 0 and self.context._data is None:
            from bakeoff.runs.finished import write_stamp

            write_stamp(store, self.config)  # a rerun with nothing changed returns without torch
        return report

    def with_seeds(self, seeds: list[int]) -> Study:
        """This study with another list of seeds (for every contender: they share the seeds)."""
        raw = self.config.model_dump(mode="json")
        raw["protocol"]["seeds"] = list(seeds)
        for c in raw["contenders"].values():
            if "seeds" in (c.get("protocol") or {}):
                c["protocol"]["seeds"] = list(seeds)
        return Study(validate_study(raw), self.context._data)

    def run_until_decided(self, out: str | Path, progress: Progress | None = None, max_seeds: int | None = None,
                          on_look: Callable[[dict[str, Any]], None] | None = None) -> StudyReport:
        """A sequential bake-off (``bakeoff.stats.sequential``): train the study's seeds (at least 3), look,
        and add one seed for every contender while a pair is undecided and can still be decided, up to
        ``max_seeds`` (default ``evaluation.sequential.max_seeds``). Each round is one batch for the
        executor; finished runs are reused, so a rerun resumes. The looks are kept in sequential.json and the
        report's verdicts are those of the last look."""
        from bakeoff.config import SequentialConfig
        from bakeoff.runs.store import SEQUENTIAL_FILE
        from bakeoff.stats.sequential import judge_look, settings

        ev = self.config.evaluation
        rule = settings(ev.sequential or SequentialConfig(), len(self.config.protocol.seeds), max_seeds)
        seeds = list(self.config.protocol.seeds)
        while len(seeds) < rule["first"]:
            seeds.append(max(seeds) + 1)
        record: dict[str, Any] = {"rule": "group-sequential, Lan–DeMets alpha spending", "first": rule["first"],
                                  "max_seeds": rule["max_seeds"], "spending": rule["spending"],
                                  "information": "estimated from the variance components at each look", "looks": []}
        path = Path(out) / SEQUENTIAL_FILE
        while True:
            study = self.with_seeds(seeds)
            report = study.run(out, progress)
            assert report is not None
            look = judge_look(report.comparison, len(seeds), rule, ev.alpha, record["looks"])
            record["looks"].append(look)
            write_json(path, record)  # after every look: a study stopped between rounds keeps what it saw
            if on_look is not None:
                on_look(look)
            if look["stop"]:
                break
            seeds.append(max(seeds) + 1)
        return rebuild_report(out)

    def evaluate(self, out: str | Path, checkpoints: list[str], fold: int = 0) -> StudyReport:
        """Evaluate given checkpoints (``NAME=PATH``) on split ``fold`` (validation and test parts), without
        training; the outputs are those of a full run. Every file is checked before anything is written."""
        from bakeoff.runs.evaluate import evaluate_checkpoint, load_state, match_state, parse_checkpoints

        self.context.validate()
        ctx, cfg = self.context, self.config
        chosen = parse_checkpoints(checkpoints, list(cfg.contenders))
        if not 0 <= fold < len(ctx.splits):
            raise BakeoffError(f"--fold {fold}: the study has {len(ctx.splits)} split(s); expected 0..{len(ctx.splits) - 1}")
        for name, path in chosen.items():
            match_state(ctx.build_model(name, fold=fold), load_state(path), path, cfg.contenders[name].model,
                        cfg.contenders[name].params)
        store = StudyStore(out)
        if store.root.exists() and (store.root / "runs").exists() and not (store.root / EVALUATED_FILE).exists():
            raise BakeoffError(f"--out {store.root}: holds trained runs; evaluating checkpoints there would replace "
                               f"them. Use another --out directory")
        store.open_for(cfg)
        ctx.use_cache(store.root)
        write_json(store.root / DATA_CHECKS_FILE, ctx.data_checks)
        try:
            done = read_json(store.root / EVALUATED_FILE) if (store.root / EVALUATED_FILE).exists() else {}
            for name, path in chosen.items():
                info = evaluate_checkpoint(ctx, store, name, path, fold)
                done[name] = {"checkpoint": info.get("checkpoint"), "sha256": info.get("checkpoint_sha256"),
                              "fold": fold, "status": info.get("status")}
            write_json(store.root / EVALUATED_FILE, done)
            return build_report(store, cfg)
        finally:
            store.unlock()
