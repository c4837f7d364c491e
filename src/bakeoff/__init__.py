"""bakeoff: fair, reproducible bake-offs of deep-learning architectures on scientific images."""

__version__ = "0.1.0"

from bakeoff.api import Study, report  # noqa: E402
from bakeoff.errors import BakeoffError  # noqa: E402
from bakeoff.trainer import ArrayTrainer, create_trainer, load_trainer  # noqa: E402

__all__ = ["ArrayTrainer", "BakeoffError", "Study", "create_trainer", "load_trainer", "report", "__version__"]
