"""Model registry: ``bakeoff:`` built-ins, ``monai:NAME``, ``timm:NAME`` and ``module.path:callable``."""

from bakeoff.models import builtin as _builtin  # noqa: F401  (registers the built-ins)
from bakeoff.models import seg_models as _seg_models  # noqa: F401
from bakeoff.models.registry import count_parameters, create_model, list_models, register_model, resolve

__all__ = ["count_parameters", "create_model", "list_models", "register_model", "resolve"]
