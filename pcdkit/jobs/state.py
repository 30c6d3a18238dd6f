"""The resumable training state (``checkpoints/last.pt``): written atomically, read safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pcdkit.atomic import atomic_torch_save
from pcdkit.errors import PcdkitError


def save_state(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` through a temporary file and a rename (a crash never leaves half a file)."""
    atomic_torch_save(state, path)


def load_state(path: Path, world_size: int = 1) -> dict[str, Any]:
    """The state saved by :func:`save_state` (``weights_only=True``), checked for this launch."""
    if not path.is_file():
        raise PcdkitError(f"--resume: {path} not found (no checkpoint was written yet)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    saved = state.get("world_size", 1)
    if saved != world_size:
        raise PcdkitError(f"--resume: the run used {saved} process(es), this launch has "
                          f"{world_size}; relaunch with the same number")
    return state
