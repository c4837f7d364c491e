"""Tables, plots and terminal output, rendered only from what runs saved on disk."""

from bakeoff.report.build import build_report

__all__ = ["build_report"]
