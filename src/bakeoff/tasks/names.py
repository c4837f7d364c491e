"""What the study file alone can get wrong, checked before torch, the data or any network is loaded.

``check_names`` answers a typo in a built-in model's or loss's name, a metric name or a loss that does not
fit the task within about a second of ``bakeoff check`` or ``bakeoff run`` (the names come from
``bakeoff.catalog``; torch is not imported). Names of other providers (``monai:``, ``timm:``, a user's
``package.module:callable``) need their package and are checked next, still before any data are read
(``StudyContext.validate_names``).
"""

from __future__ import annotations

import difflib
from typing import Any

from bakeoff.catalog import did_you_mean
from bakeoff.errors import BakeoffError
from bakeoff.tasks.base import task_class
from bakeoff.tasks.metric import load_user_metrics, metric_info, metrics_for


def check_models(cfg: Any) -> None:
    """Every ``bakeoff:`` (or bare) model name is a built-in network."""
    from bakeoff.catalog import BUILTIN_MODELS

    for name, c in cfg.contenders.items():
        provider, sep, model = c.model.partition(":")
        if not sep:
            provider, model = "bakeoff", c.model
        if provider == "bakeoff" and model not in BUILTIN_MODELS:
            raise BakeoffError(f"contenders.{name}.model: unknown model {c.model!r}"
                               f"{did_you_mean(model, list(BUILTIN_MODELS), 'bakeoff:')}; expected a registered model: "
                               f"`bakeoff list models` lists them")


def check_losses(cfg: Any) -> None:
    """Every contender's loss is a built-in loss that fits the task, one of the task's own, or a user's
    ``package.module:callable`` (imported when the loss is built)."""
    from bakeoff.catalog import BUILTIN_LOSSES, KIND_WORDS

    cls = task_class(cfg.task)
    kind, own = cls.loss_kind, dict(cls.own_losses)
    fits = sorted([n for n, kinds in BUILTIN_LOSSES.items() if kind in kinds] + list(own))
    for name in cfg.contenders:
        p = cfg.protocol_for(name)
        where = "protocol" if not cfg.contenders[name].protocol else f"contenders.{name}.protocol"
        loss = p.loss.name or cls.default_loss
        if ":" in loss or loss in own:
            continue
        if loss not in BUILTIN_LOSSES:
            raise BakeoffError(f"{where}.loss.name: unknown loss {loss!r}{did_you_mean(loss, [*BUILTIN_LOSSES, *own])}; "
                               f"expected one of {fits} or package.module:callable")
        if kind not in BUILTIN_LOSSES[loss]:
            words = " or ".join(KIND_WORDS.get(k, k) for k in BUILTIN_LOSSES[loss])
            raise BakeoffError(f"{where}.loss.name: {loss} is for {words}; this study is "
                               f"{KIND_WORDS.get(kind, kind)}: expected one of {fits}")


def check_metrics(cfg: Any) -> None:
    """The primary metric and every selection and early-stopping metric are metrics of the task (the
    user's metrics imported first); per-class names wait for the data's classes."""
    ev = cfg.evaluation
    load_user_metrics(list(ev.metrics))
    known = sorted({m.name for m in metrics_for(cfg.task)} | {"loss"})
    checks = [(ev.primary, "evaluation.primary")]
    for name in cfg.contenders:
        p = cfg.protocol_for(name)
        where = "protocol" if not cfg.contenders[name].protocol else f"contenders.{name}.protocol"
        checks.append((p.select.monitor.split("/", 1)[-1], f"{where}.select.monitor"))
        if p.early_stopping and p.early_stopping.monitor:
            checks.append((p.early_stopping.monitor.split("/", 1)[-1], f"{where}.early_stopping.monitor"))
    for metric, where in checks:
        if metric == "loss":
            continue
        try:
            metric_info(metric, cfg.task)
        except KeyError:
            close = difflib.get_close_matches(metric, known, n=1)
            raise BakeoffError(f"{where}: unknown metric {metric!r} for {cfg.task}"
                               + (f" (did you mean {close[0]!r}?)" if close else "")
                               + f"; expected one of {known}") from None


def check_names(cfg: Any) -> None:
    """Built-in model and loss names and metric names (see the module docstring)."""
    check_models(cfg)
    check_losses(cfg)
    check_metrics(cfg)
