"""bakeoff: fair, reproducible bake-offs of deep-learning architectures on scientific images.

The public names are imported when first used (PEP 562), so that ``import bakeoff`` and the command
line's ``--help`` or ``status`` do not pay for torch, Lightning and matplotlib.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {"Study": "bakeoff.study", "rebuild_report": "bakeoff.report.build", "BakeoffError": "bakeoff.errors",
         "ArrayTrainer": "bakeoff.trainer", "create_trainer": "bakeoff.trainer", "load_trainer": "bakeoff.trainer",
         "register_metric": "bakeoff.tasks.metric", "register_model": "bakeoff.models.registry",
         "register_loss": "bakeoff.losses", "register_source": "bakeoff.data.sources"}
__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bakeoff' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
