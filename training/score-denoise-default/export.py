"""Make a campaign checkpoint pcdkit's embedded score-denoise weights (issue 12).

    python training/score-denoise-default/export.py CKPT --cpu-hours H [--overwrite]

CKPT is a ``best.pt`` of the campaign (copy it first: the running campaign replaces it). The
weights are re-saved with their provenance (step, validation, CPU-hours) in the checkpoint's
``extra``, next to a copy of the run's ``training.png`` (loss and validation curve); the
training card ``pcdkit-default.md`` beside them is written by hand from LOG.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from pcdkit.backbones.score_denoise.backbone import DEFAULT_CHECKPOINT, load_network
from pcdkit.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from pcdkit.errors import PcdkitError

HERE = Path(__file__).resolve().parent


def export(src: Path, cpu_hours: float, overwrite: bool) -> Path:
    """Write ``src``'s weights to the embedded checkpoint path with provenance; returns it."""
    ckpt = load_checkpoint(src)
    if ckpt.model != "score-denoise":
        raise PcdkitError(f"{src}: holds a {ckpt.model!r} model, expected 'score-denoise'")
    extra = {**ckpt.extra, "cpu_hours": float(cpu_hours),
             "source": "training/score-denoise-default (pcdkit's own campaign)"}
    out = save_checkpoint(Checkpoint(ckpt.model, ckpt.state_dict, ckpt.config, extra),
                          DEFAULT_CHECKPOINT, overwrite=overwrite)
    load_network()  # the embedded default must load as users will load it (weights_only)
    shutil.copyfile(HERE / "run" / "training.png",
                    DEFAULT_CHECKPOINT.with_name("pcdkit-default-training.png"))
    return out


def main() -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--cpu-hours", type=float, required=True,
                        help="the campaign's CPU-hours up to the checkpoint's step (LOG.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace the embedded weights")
    args = parser.parse_args()
    try:
        print(export(args.checkpoint, args.cpu_hours, args.overwrite))
    except PcdkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
