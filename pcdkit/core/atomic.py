"""Atomic file writes: a unique temporary file beside the target, fsync, then one rename.

A crash or a full disk mid-write never leaves a truncated target, and the previous version of
the file (e.g. the last checkpoint) stays intact until the new one is complete.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from pcdkit.errors import PcdkitError


@contextmanager
def _temporary_beside(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    # O_EXCL: never another writer's file; mode 0o666 less the umask, like any new file
    # (mkstemp's 0o600 would make checkpoints unreadable to the user's group)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh, tmp
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file, then rename it onto ``path``.

    Write errors become a :class:`PcdkitError` naming the file (torch reports a full disk as
    ``unexpected pos``; this says so).
    """
    path = Path(path)
    try:
        with _temporary_beside(path) as (fh, _):
            write(fh)
    except OSError as exc:
        full = exc.errno == errno.ENOSPC
        raise PcdkitError(f"{path}: could not write ({'disk full' if full else exc}); "
                          "nothing was replaced") from None
    except RuntimeError as exc:  # torch.save's writer reports OS failures this way
        if "unexpected pos" not in str(exc) and "write" not in str(exc):
            raise
        raise PcdkitError(f"{path}: could not write (disk full or write error: {exc}); "
                          "nothing was replaced") from None
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj)`` to ``path`` atomically."""
    import torch

    return atomic_write(path, lambda fh: torch.save(obj, fh))
