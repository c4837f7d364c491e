"""Figures written by forked writers (``bakeoff.report.figsave``): the same files as saved in-process, and
a child that fails, hangs or is abandoned never costs a figure or leaves half a file."""

from __future__ import annotations

import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from bakeoff.report import figsave, plots  # noqa: E402

pytestmark = pytest.mark.skipif(not figsave.fork_usable(), reason="forked writers need Linux and 2 cores")


def _figure(k: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [k, k + 1, k * 2])
    ax.set_title(f"figure {k}")
    return fig


def test_forked_writers_write_the_files_saving_here_would(tmp_path):
    """The PNGs byte for byte, and every SVG, as the report's own ``_save`` writes them in this process."""
    open_before = set(plt.get_fignums())
    here, there = tmp_path / "here", tmp_path / "there"
    for k in range(5):
        plots._save(_figure(k), here / f"f{k}.png")
    with plots.saving_in_background():
        saver = figsave._active[-1]
        for k in range(5):
            plots._save(_figure(k), there / f"f{k}.png")
        assert saver.forked == 5
    assert saver.pending == [] and saver.inline == 0
    for k in range(5):
        assert (there / f"f{k}.png").read_bytes() == (here / f"f{k}.png").read_bytes()
        assert (there / f"f{k}.svg").read_text().startswith("<?xml")
    assert set(plt.get_fignums()) <= open_before  # every figure it made closed in this process


def _fails_in_child(parent: int):
    def write(fig, path: Path) -> None:
        if os.getpid() != parent:
            raise RuntimeError("a child that fails")
        plots._png_and_svg(fig, path)
    return write


def test_a_failed_child_s_figure_is_saved_here(tmp_path):
    with figsave.in_background(_fails_in_child(os.getpid()), plt.close):
        saver = figsave._active[-1]
        figsave.save(_figure(1), tmp_path / "a.png", saver.write, saver.close)
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "a.svg").is_file()
    assert (saver.forked, saver.inline) == (1, 1)


def test_a_hung_child_is_killed_and_its_figure_saved_here(tmp_path, monkeypatch):
    parent = os.getpid()

    def hangs_in_child(fig, path):
        if os.getpid() != parent:
            time.sleep(60)
        plots._png_and_svg(fig, path)

    monkeypatch.setattr(figsave, "CHILD_TIMEOUT_S", 0.5)
    t0 = time.perf_counter()
    with figsave.in_background(hangs_in_child, plt.close):
        saver = figsave._active[-1]
        figsave.save(_figure(2), tmp_path / "b.png", saver.write, saver.close)
    assert time.perf_counter() - t0 < 20
    assert (tmp_path / "b.png").is_file() and saver.inline == 1


def test_leaving_by_an_exception_stops_the_children_and_leaves_no_partial_file(tmp_path):
    parent = os.getpid()

    def slow_in_child(fig, path):
        if os.getpid() != parent:
            time.sleep(30)
        plots._png_and_svg(fig, path)

    with pytest.raises(KeyboardInterrupt):
        with figsave.in_background(slow_in_child, plt.close):
            saver = figsave._active[-1]
            figsave.save(_figure(3), tmp_path / "c.png", saver.write, saver.close)
            pids = [p for p, *_ in saver.pending]
            raise KeyboardInterrupt
    assert figsave._active == [] and saver.pending == []
    for pid in pids:  # reaped: no such child any more
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    assert list(tmp_path.iterdir()) == []


def test_saving_here_where_forking_does_not_pay(tmp_path, monkeypatch):
    monkeypatch.setenv("BAKEOFF_FIGURES_INLINE", "1")
    assert not figsave.fork_usable()
    with plots.saving_in_background():
        assert figsave._active == []
        plots._save(_figure(4), tmp_path / "d.png")
    assert (tmp_path / "d.png").is_file() and (tmp_path / "d.svg").is_file()
