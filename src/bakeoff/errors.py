"""User-facing errors: one line that names the culprit and what was expected."""


class BakeoffError(Exception):
    """An error caused by the user's input (study file, data, arguments, output directory).

    The CLI prints it as one line and exits non-zero, without a traceback unless ``--debug``.
    """
