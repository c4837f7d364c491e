"""Figures written while the report goes on: each finished figure is encoded (PNG, then SVG) by a forked
copy of this process, so that a second core encodes while this one draws the next figure and computes
the page. Encoding is most of a report's figure work (0.06-0.26 s a file, 16 files for a binary study on
a 2-core machine). With the figures drawn first and written this way, the demo's report took 2.05 s
against 2.92 s (medians of 6 alternating rebuilds of the same study).

Why a fork, and not a pool of processes: a fork shares the drawn figure as it is, with matplotlib already
imported. A spawned helper would first import matplotlib and receive each figure pickled, and measured no
faster than saving here (2.6-2.8 s against 2.8 s). Where fork is not there or not safe to rely on (not
Linux, one core, a Ray driver), or a child fails or hangs, the figure is saved in this process as before,
so the files are the same either way. Each file is written atomically by whichever process writes it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHILD_TIMEOUT_S = 120.0  # a child that has not written its figure by then is killed and the figure saved here
_POLL_S = 0.005


class BackgroundSaves:
    """Forked writers for finished figures, at most ``slots`` at a time; ``wait()`` returns once every figure
    handed over is on disk (those whose child failed saved here)."""

    def __init__(self, write: Callable[[Any, Path], None], close: Callable[[Any], None], slots: int) -> None:
        self.write, self.close, self.slots = write, close, max(1, slots)
        self.pending: list[tuple[int, Any, Path, float]] = []
        self.forked = self.inline = 0

    def save(self, fig: Any, path: Path) -> None:
        while len(self.pending) >= self.slots:
            self._reap(self.pending[0])
        try:
            with warnings.catch_warnings():  # Python >= 3.12 warns on fork with threads (torch's pool): the
                warnings.simplefilter("ignore", DeprecationWarning)  # child never enters them; see the timeout
                pid = os.fork()
        except OSError:  # no memory or process slot left for a child: here, as without one
            self._here(fig, path)
            return
        if pid == 0:  # the child: write, then leave at once (no atexit, no flush of the parent's buffers)
            status = 1
            try:
                for sig in (signal.SIGINT, signal.SIGTERM):  # end it quietly, never run the parent's handlers
                    signal.signal(sig, signal.SIG_DFL)
                self.write(fig, path)
                status = 0
            finally:
                os._exit(status)
        self.forked += 1
        self.pending.append((pid, fig, path, time.monotonic()))

    def wait(self) -> None:
        while self.pending:
            self._reap(self.pending[0])

    def abandon(self) -> None:
        """Stop every child (this process failed or was interrupted): nothing half-written stays, since
        every file is written whole or not at all."""
        for pid, fig, _, _ in self.pending:
            _kill(pid)
            self.close(fig)
        self.pending = []

    def _reap(self, item: tuple[int, Any, Path, float]) -> None:
        pid, fig, path, started = item
        self.pending.remove(item)
        code = None
        while code is None:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
            elif time.monotonic() - started > CHILD_TIMEOUT_S:
                _kill(pid)
                code = -1
            else:
                time.sleep(_POLL_S)
        if code == 0:
            self.close(fig)
        else:
            self._here(fig, path)

    def _here(self, fig: Any, path: Path) -> None:
        self.inline += 1
        try:
            self.write(fig, path)
        finally:
            self.close(fig)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ChildProcessError, ProcessLookupError):
        pass


def fork_usable() -> bool:
    """Forking pays where there is a second core and is safe to rely on: Linux (macOS's system frameworks
    are not fork-safe), no Ray driver in this process (its gRPC threads)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return False
    if len(os.sched_getaffinity(0)) < 2 or os.environ.get("BAKEOFF_FIGURES_INLINE") == "1":
        return False
    ray = sys.modules.get("ray")
    return not (ray is not None and getattr(ray, "is_initialized", lambda: False)())


_active: list[BackgroundSaves] = []


@contextmanager
def in_background(write: Callable[[Any, Path], None], close: Callable[[Any], None]) -> Iterator[None]:
    """Within the block, ``save`` hands each figure to a forked writer where that pays (``fork_usable``);
    on leaving it, every figure is on disk. Nested blocks share the outer one."""
    if _active or not fork_usable():
        yield
        return
    saver = BackgroundSaves(write, close, slots=len(os.sched_getaffinity(0)))
    _active.append(saver)
    try:
        yield
        saver.wait()
    except BaseException:
        saver.abandon()
        raise
    finally:
        _active.remove(saver)


def save(fig: Any, path: Path, write: Callable[[Any, Path], None], close: Callable[[Any], None]) -> None:
    """``write`` then ``close`` the figure: in a forked writer inside ``in_background``, else here."""
    if _active:
        _active[-1].save(fig, path)
    else:
        try:
            write(fig, path)
        finally:
            close(fig)


def wait() -> None:
    """Every figure handed over so far is on disk (before a page reads them)."""
    if _active:
        _active[-1].wait()
