"""Small helpers shared by several modules: hashing, atomic writes, JSON."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.faults import kill_point


def stable_hash(obj: Any, length: int = 16) -> str:
    """A short SHA-256 of a JSON-serialisable object, independent of dict order."""
    text = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once: the mode a plain open() would give a new file


_HOST = socket.gethostname().replace(".", "_")
_TEMP_SUFFIX = ".tmp"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a file so that readers never see a half-written version (``atomic_path``)."""
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)  # a failed write() names no file: name the one being written
        raise


@contextmanager
def atomic_path(path: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """A temporary file beside ``path`` to write (here, or by a library that writes to a file name:
    safetensors, torch.export, ONNX, TorchScript, ``torch.save``): on leaving the block it becomes ``path``
    whole, with the mode a plain ``open`` gives (safetensors and ``mkstemp`` make files private), or nothing
    is left. The temporary file is named ``.NAME.HOST.PID.RANDOM.tmp``, so that one left by a killed process
    can be recognised and removed (``orphan_temps``). ``replace=False``:
    an existing ``path`` is never overwritten, even one made meanwhile (FileExistsError)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_HOST}.{os.getpid()}.", suffix=_TEMP_SUFFIX)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)
        kill_point(f"write:{path.name}")
        if replace:
            os.replace(tmp, path)
        else:
            _publish_new(Path(tmp), path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _publish_new(tmp: Path, path: Path) -> None:
    """``tmp`` renamed to ``path`` unless ``path`` exists: a hard link fails on an existing name, so a file
    made between a check and the rename is never replaced; without hard links, the check then the rename."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if path.exists():
            raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
        os.replace(tmp, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """Atomic ``np.savez_compressed``."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def orphan_temps(root: str | os.PathLike) -> list[Path]:
    """Temporary files under ``root`` left by ``atomic_write_bytes`` in a process of this host that no longer
    exists (killed while writing). Those of live processes, and of other hosts (the SLURM nodes that share
    the directory, whose processes cannot be seen from here), are not listed."""
    out = []
    for p in Path(root).rglob(f".*{_TEMP_SUFFIX}"):
        parts = p.name[:-len(_TEMP_SUFFIX)].rsplit(".", 3)  # [".NAME", HOST, PID, RANDOM]
        if len(parts) != 4 or parts[1] != _HOST or not parts[2].isdigit():
            continue
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            out.append(p)
        except PermissionError:  # alive, another user's
            pass
    return out


def nearest_existing(path: str | os.PathLike) -> Path:
    """``path``, or its closest ancestor that exists (what a new path would be created in)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def file_stats(paths: list[Path]) -> list[tuple[str, int, int]]:
    """(resolved path, size, modification time in ns) of each file: what says a file changed, unread."""
    out = []
    for p in paths:
        st = p.stat()
        out.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
    return out


def sha256_of(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
