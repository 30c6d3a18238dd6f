"""Convert the released score-denoise checkpoint (legacy pickle) into a safe pcdkit checkpoint."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.checkpoints import FORMAT, Checkpoint, save_checkpoint
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
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        raise PcdkitError(f"{src}: already a pcdkit checkpoint; nothing to convert (use it as "
                          "it is)")
    if not isinstance(obj, dict) or not isinstance(obj.get("state_dict"), dict):
        raise PcdkitError(f"{src}: expected a dict with 'state_dict' (score-denoise format)")
    net = ScoreDenoiseNet()
    try:
        net.load_state_dict(obj["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PcdkitError(f"{src}: weights do not match the score-denoise network: "
                          f"{first}") from None
    bad = [k for k, v in net.state_dict().items()
           if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise PcdkitError(f"{src}: {len(bad)} weight tensor(s) hold NaN or infinite values "
                          f"(first: {bad[0]}); refusing to convert a broken network")
    namespace = obj.get("args")
    args = vars(namespace) if isinstance(namespace, argparse.Namespace) else {}
    step = _reference_step(obj.get("others"))
    ckpt = Checkpoint(
        model="score-denoise",
        state_dict=net.state_dict(),
        config={k: args[k] for k in KEPT_ARGS if k in args},
        extra={"parameters": sum(p.numel() for p in net.parameters()), "source": src.name,
               "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
               "reference_step": step},
    )
    save_checkpoint(ckpt, dst, overwrite=overwrite)
    return ckpt


def _reference_step(others: object) -> int | None:
    """The Adam step count stored with the reference weights (its training length), if any."""
    opt = others.get("optimizer") if isinstance(others, dict) else None
    state = opt.get("state") if isinstance(opt, dict) else None
    first = next(iter(state.values()), None) if isinstance(state, dict) else None
    step = first.get("step") if isinstance(first, dict) else None
    try:
        return int(step) if step is not None else None
    except (TypeError, ValueError, RuntimeError):
        return None
