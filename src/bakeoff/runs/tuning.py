"""Equal-budget tuning: the same number of Optuna trials over the same space for every contender.

Trials train on the first fold's training split with the first seed and are judged by the selection
metric on its validation split; the test split is never seen. Each contender's trials live in an
Optuna SQLite study under ``DIR/tuning/``, so an interrupted study resumes its tuning too.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from bakeoff.config import SearchDimension
from bakeoff.errors import BakeoffError
from bakeoff.runs.events import Progress, TrialDone, TrialFailed
from bakeoff.runs.store import CHECKPOINTS_DIR, StudyStore
from bakeoff.utils import read_json, write_json

if TYPE_CHECKING:  # the report reads load_tuned without torch: the training side is imported where it trains
    from bakeoff.runs.context import StudyContext

TUNING_DIR = "tuning"
FINISHED = ("COMPLETE", "FAIL", "PRUNED")


def _suggest(trial: Any, path: str, dim: SearchDimension) -> Any:
    if dim.choices is not None:
        return trial.suggest_categorical(path, dim.choices)
    if float(dim.low).is_integer() and float(dim.high).is_integer() and not dim.log and \
            isinstance(dim.low, int) and isinstance(dim.high, int):
        return trial.suggest_int(path, int(dim.low), int(dim.high))
    return trial.suggest_float(path, float(dim.low), float(dim.high), log=dim.log)


def _objective(ctx: StudyContext, contender: str, params: dict[str, Any], run_dir) -> float:
    from bakeoff.runs.runner import train_model
    from bakeoff.train.fit import seed_everything

    protocol = ctx.config.protocol_for(contender, params)
    seed = protocol.stream_seed(protocol.seeds[0], contender)
    seed_everything(seed, protocol.deterministic)
    model = ctx.build_model(contender, protocol)
    result = train_model(ctx, model, protocol, 0, seed, run_dir)
    shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)
    if result.best_score is None:
        raise RuntimeError(f"no value of {protocol.select.monitor} was recorded")
    return float(result.best_score)


def tune(ctx: StudyContext, store: StudyStore,
         progress: Progress | None = None) -> dict[str, dict[str, Any]]:
    """Run (or resume) every contender's trials; returns the best setting per contender."""
    cfg = ctx.config.tuning
    if cfg.mode == "none":
        return {}
    try:
        import optuna
    except ImportError:
        raise BakeoffError("tuning.mode equal_budget needs optuna: pip install 'bakeoff[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    root = store.root / TUNING_DIR
    root.mkdir(parents=True, exist_ok=True)
    best: dict[str, dict[str, Any]] = {}
    for name in ctx.config.contenders:
        direction = "maximize" if ctx.config.protocol_for(name).select.mode == "max" else "minimize"
        study = optuna.create_study(study_name=name, storage=f"sqlite:///{root / (name + '.db')}",
                                    load_if_exists=True, direction=direction,
                                    sampler=optuna.samplers.TPESampler(seed=cfg.seed))
        used = sum(t.state.name in FINISHED for t in study.trials)
        for i in range(used, cfg.trials):
            trial = study.ask()
            params = {path: _suggest(trial, path, dim) for path, dim in cfg.space.items()}
            if progress:
                progress(TrialDone(name, i + 1, cfg.trials, params))
            try:
                value = _objective(ctx, name, params, root / name / f"trial{trial.number}")
            except Exception as exc:  # noqa: BLE001 - a failed trial uses its share of the budget, like any other
                error = " ".join(f"{type(exc).__name__}: {exc}".split())[:400]  # one line
                trial.set_user_attr("error", error)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if progress:
                    progress(TrialFailed(name, trial.number, str(error)))
                continue
            study.tell(trial, value)
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            errors = [t.user_attrs.get("error") for t in study.trials if t.user_attrs.get("error")]
            raise BakeoffError(f"tuning: every trial of contender {name!r} failed"
                               + (f"; the first: {errors[0]}" if errors else f"; see {root / name}"))
        best[name] = dict(study.best_params)
        write_json(root / f"{name}.json", {
            "contender": name, "mode": cfg.mode, "budget": cfg.trials, "best_params": best[name],
            "best_value": study.best_value, "monitor": ctx.config.protocol_for(name).select.monitor,
            "trials": [{"number": t.number, "state": t.state.name, "params": t.params, "value": t.value,
                        **({"error": t.user_attrs["error"]} if "error" in t.user_attrs else {})}
                       for t in study.trials]})
    return best


def load_tuned(store: StudyStore, contenders: list[str]) -> dict[str, dict[str, Any]]:
    """The best settings a finished tuning left on disk (empty for contenders not tuned)."""
    out = {}
    for name in contenders:
        path = store.root / TUNING_DIR / f"{name}.json"
        if path.is_file():
            out[name] = read_json(path)["best_params"]
    return out
