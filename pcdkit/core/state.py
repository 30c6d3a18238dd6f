"""The resumable training state (``checkpoints/last.pt``): written atomically, read safely."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from pcdkit.core.atomic import atomic_torch_save
from pcdkit.errors import PcdkitError


def save_state(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file and a rename (a crash never leaves half a file)."""
    atomic_torch_save(state, path)


def load_state(path: Path, world_size: int = 1) -> dict[str, Any]:
    """The state saved by :func:`save_state` (``weights_only=True``), checked for this launch."""
    if not path.is_file():
        raise PcdkitError(f"--resume: {path} not found (no checkpoint was written yet)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated, random or foreign bytes
        raise PcdkitError(f"--resume: {path} is damaged or not a pcdkit training state "
                          f"({_first_line(exc)})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise PcdkitError(f"--resume: {path} is not a pcdkit training state (no step)")
    saved = state.get("world_size", 1)
    if saved != world_size:
        raise PcdkitError(f"--resume: the run used {saved} process(es), this launch has "
                          f"{world_size}; relaunch with the same number")
    return state


@contextmanager
def restoring(path: Path) -> Iterator[None]:
    """Report a saved state that does not fit the run (missing keys, other shapes or types) as
    a PcdkitError naming the file, not as a traceback."""
    try:
        yield
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise PcdkitError(f"--resume: {path} does not fit this run ({type(exc).__name__}: "
                          f"{_first_line(exc)}); was it written by another pipeline?") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
