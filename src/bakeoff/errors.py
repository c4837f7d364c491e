"""User-facing errors: one line that names the culprit and what was expected."""


class BakeoffError(Exception):
    """An error caused by the user's input (study file, data, arguments, output directory).

    The CLI prints it as one line and exits non-zero, without a traceback unless ``--debug``.
    """


class StorageFull(BakeoffError):
    """The disk or quota ran out under a study: the user's to fix, never a contender's failure. Raised where it
    happens (also in a Ray worker, whose driver then stops the study with it)."""


def storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the file system refusing a write for want of space (disk full, quota reached)."""
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def storage_full_error(exc: OSError | None, doing: str, where: object = None) -> StorageFull:
    """One line for a full disk or quota: which file (else ``where``: what other libraries' writes, such as
    TensorBoard's and the CSV logger's, do not name), what was being done, and how to go on. ``exc`` None:
    known only from elsewhere (a SLURM job's word), so whether disk or quota is not known."""
    filename = exc.filename if exc is not None else None
    reason = exc.strerror if exc is not None and exc.strerror else "No space left on device (or quota exceeded)"
    named = f"{filename or where}: " if filename or where else ""
    return StorageFull(f"{named}{reason} while {doing}; expected free space "
                         f"there: free some (or give another --out) and run the same command again: finished runs "
                         f"are kept and an interrupted one resumes")
