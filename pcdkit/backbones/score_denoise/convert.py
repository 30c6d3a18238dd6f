"""Convert the released score-denoise checkpoint (legacy pickle) into a safe pcdkit checkpoint."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.checkpoints import Checkpoint, save_checkpoint
from pcdkit.errors import PcdkitError

#: training settings of the reference that matter when continuing to train
KEPT_ARGS = ("frame_knn", "num_train_points", "num_clean_nbs", "dsm_sigma", "noise_min",
             "noise_max", "patch_size", "lr", "seed", "ld_step_size")


def convert_reference(src: str | Path, dst: str | Path, overwrite: bool = False) -> Checkpoint:
    """Read ``src`` (dict with ``args``, ``state_dict``, ``others``) and write ``dst``.

    The legacy file pickles an ``argparse.Namespace``; it is loaded with ``weights_only=True``
    and only that class allow-listed, so no other code can run while reading it.
    """
    src = Path(src)
    if not src.is_file():
        raise PcdkitError(f"{src}: file not found")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise PcdkitError(f"{src}: not a score-denoise checkpoint ({type(exc).__name__})") from None
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise PcdkitError(f"{src}: expected a dict with 'state_dict' (score-denoise format)")
    net = ScoreDenoiseNet()
    try:
        net.load_state_dict(obj["state_dict"], strict=True)
    except RuntimeError as exc:
        raise PcdkitError(f"{src}: weights do not match the score-denoise network: {exc}") from None
    args = vars(obj.get("args", argparse.Namespace()))
    step = None
    others = obj.get("others") or {}
    opt = others.get("optimizer") if isinstance(others, dict) else None
    if isinstance(opt, dict) and opt.get("state"):
        first = next(iter(opt["state"].values()))
        step = int(first.get("step", 0)) if "step" in first else None
    ckpt = Checkpoint(
        model="score-denoise",
        state_dict=net.state_dict(),
        config={k: args[k] for k in KEPT_ARGS if k in args},
        extra={"parameters": sum(p.numel() for p in net.parameters()), "source": src.name,
               "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
               "reference_step": step if step is not None else -1},
    )
    save_checkpoint(ckpt, dst, overwrite=overwrite)
    return ckpt
