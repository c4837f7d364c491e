"""``atomic_path``: a library that writes to a file name (safetensors, torch.export, ONNX, torch.save) still
leaves the file whole or not at all, readable as a plain ``open`` would make it, and never over a file
that must not be replaced."""

from __future__ import annotations

import os
import stat

import pytest

from bakeoff.utils import atomic_path


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _plain_mode(tmp_path) -> int:
    probe = tmp_path / "probe"
    probe.write_bytes(b"")
    return _mode(probe)


def test_the_file_appears_whole_with_a_plain_files_mode_and_no_temporary_is_left(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    target = tmp_path / "w.safetensors"
    with atomic_path(target, replace=False) as tmp:
        assert tmp.parent == tmp_path and not target.exists()
        save_file({"w": torch.arange(3.0)}, str(tmp))  # safetensors itself writes 0600
    assert torch.equal(load_file(str(target))["w"], torch.arange(3.0))
    assert _mode(target) == _plain_mode(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe", "w.safetensors"]


def test_a_failed_write_leaves_nothing_and_the_previous_file_stays(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk gone")
    assert target.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]
    with atomic_path(target) as tmp:  # replace=True (torch.save's meaning): the new file replaces it whole
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_without_replace_a_file_made_meanwhile_is_never_overwritten(tmp_path):
    target = tmp_path / "m.onnx"
    with pytest.raises(FileExistsError):
        with atomic_path(target, replace=False) as tmp:
            tmp.write_bytes(b"exported")
            target.write_bytes(b"someone else's")  # appears between the caller's check and the rename
    assert target.read_bytes() == b"someone else's" and [p.name for p in tmp_path.iterdir()] == ["m.onnx"]
