"""pcdkit's safe checkpoint format: tensors plus a JSON config, loadable with weights_only=True.

A checkpoint file is a ``torch.save`` of a dict holding only strings, numbers and tensors::

    {"format": "pcdkit-checkpoint", "version": 1, "model": "score-denoise",
     "config": "<json>", "state_dict": {...}, "extra": {...}}

Loading never unpickles arbitrary objects unless the caller passes ``allow_pickle=True``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pcdkit.atomic import atomic_torch_save
from pcdkit.errors import PcdkitError

FORMAT = "pcdkit-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A model's weights with the settings needed to rebuild it."""

    model: str
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(ckpt: Checkpoint, path: str | Path, overwrite: bool = False) -> Path:
    """Write atomically (temporary file + rename); refuses to replace a file unless asked."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise PcdkitError(f"{path}: file exists; pass overwrite=True (CLI: --overwrite)")
    payload = {"format": FORMAT, "version": VERSION, "model": ckpt.model,
               "config": json.dumps(ckpt.config, sort_keys=True),
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in
                              ckpt.state_dict.items()},
               "extra": ckpt.extra}
    return atomic_torch_save(payload, path)


def load_checkpoint(path: str | Path, allow_pickle: bool = False) -> Checkpoint:
    """Read a pcdkit checkpoint with ``torch.load(weights_only=True)``.

    ``allow_pickle=True`` (explicit opt-in, trusted files only) falls back to full unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise PcdkitError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for foreign pickles
        raise PcdkitError(
            f"{path}: not loadable as a safe pcdkit checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). A reference checkpoint must first "
            "be converted: pcdkit convert score-denoise SRC DST") from None
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        raise PcdkitError(f"{path}: not a pcdkit checkpoint (no 'format: {FORMAT}' entry); "
                          "convert it with `pcdkit convert`")
    if obj.get("version", 0) > VERSION:
        raise PcdkitError(f"{path}: checkpoint version {obj['version']} is newer than this "
                          f"pcdkit understands ({VERSION}); upgrade pcdkit")
    return Checkpoint(obj["model"], dict(obj["state_dict"]), json.loads(obj["config"]),
                      dict(obj.get("extra", {})))
