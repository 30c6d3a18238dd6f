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

from pcdkit.core.atomic import atomic_torch_save
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
    if not path.exists():
        raise PcdkitError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise PcdkitError(f"{path}: not a regular file")
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
    version = obj.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise PcdkitError(f"{path}: checkpoint version {version!r} is not one this pcdkit "
                          f"understands (<= {VERSION}); upgrade pcdkit")
    return Checkpoint(*_checked_contents(path, obj))


def _checked_contents(path: Path, obj: Mapping[str, Any]) -> tuple[Any, ...]:
    """model, state_dict, config, extra of a loaded checkpoint, each of the expected type;
    weights must be finite (a diverged or damaged network is refused, not run)."""
    model, state, extra = obj.get("model"), obj.get("state_dict"), obj.get("extra", {})
    if not isinstance(model, str):
        raise PcdkitError(f"{path}: checkpoint 'model' must be a name, got {type(model).__name__}")
    if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise PcdkitError(f"{path}: checkpoint 'state_dict' must map names to tensors")
    try:
        config = json.loads(obj.get("config", "{}"))
    except (TypeError, ValueError) as exc:
        raise PcdkitError(f"{path}: checkpoint 'config' is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(extra, Mapping):
        raise PcdkitError(f"{path}: checkpoint 'config' and 'extra' must be mappings")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise PcdkitError(f"{path}: {len(bad)} weight tensor(s) hold NaN or infinite values "
                          f"(first: {bad[0]}); the network diverged or the file is damaged")
    return model, dict(state), config, dict(extra)
