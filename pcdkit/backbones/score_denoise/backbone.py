"""The ``score-denoise`` backbone plugin object: a network plus the denoising settings."""

from __future__ import annotations

from pathlib import Path

import torch

from pcdkit.backbones.score_denoise.denoise import denoise_cloud
from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.checkpoints import load_checkpoint
from pcdkit.errors import PcdkitError
from pcdkit.weights import resolve

#: the checkpoint trained by pcdkit's own training job, shipped with the package
DEFAULT_CHECKPOINT = Path(__file__).with_name("weights") / "pcdkit-default.pt"


def load_network(checkpoint: Path | None = None, allow_pickle: bool = False,
                 knn_backend: str = "auto", compiled_training: bool = False
                 ) -> ScoreDenoiseNet:
    """A score-denoise network with weights from a pcdkit checkpoint (default: the embedded)."""
    path = resolve(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    if checkpoint is None and not path.is_file():
        raise PcdkitError(f"no embedded score-denoise checkpoint in this installation ({path}); "
                          "give one: pipelines `backbone.checkpoint`, CLI `--checkpoint` (convert "
                          "the reference with `pcdkit convert score-denoise SRC DST`)")
    ckpt = load_checkpoint(path, allow_pickle=allow_pickle)
    if ckpt.model != "score-denoise":
        raise PcdkitError(f"{path}: holds a {ckpt.model!r} model, expected 'score-denoise'")
    net = ScoreDenoiseNet(knn_backend=knn_backend, compiled_training=compiled_training)
    try:
        net.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        raise PcdkitError(f"{path}: weights do not fit the score-denoise network: {exc}") from None
    return net.eval()


class ScoreDenoiser:
    """Patch-based score-based denoiser (see :mod:`pcdkit.backbones.score_denoise.denoise`)."""

    def __init__(self, checkpoint: Path | None, allow_pickle: bool, passes: int, steps: int,
                 step_size: float, decay: float, neighbours: int, patch_size: int,
                 seed_k: float, batch_patches: int, cluster_above: int, cluster_size: int,
                 backend: str, heads: Path | None = None, tau: float | None = None,
                 matmul_precision: str = "float32") -> None:
        self.net = load_network(checkpoint, allow_pickle, backend)
        self.settings = dict(passes=passes, steps=steps, step_size=step_size, decay=decay,
                             neighbours=neighbours, patch_size=patch_size, seed_k=seed_k,
                             batch_patches=batch_patches, cluster_above=cluster_above,
                             cluster_size=cluster_size, backend=backend,
                             matmul_dtype=getattr(torch, matmul_precision))
        if (heads is None) != (tau is None):
            raise PcdkitError("backbone: give both `heads` (an IGO heads checkpoint) and `tau` "
                              "to denoise through E_tau / D_tau, or neither")
        if heads is not None:
            self._attach_heads(Path(heads), float(tau), allow_pickle)

    def _attach_heads(self, path: Path, tau: float, allow_pickle: bool) -> None:
        from pcdkit.heads.igo_score_denoise import IGOHeads

        ckpt = load_checkpoint(path, allow_pickle=allow_pickle)
        if ckpt.model != "igo-score-denoise-heads":
            raise PcdkitError(f"{path}: holds {ckpt.model!r}, expected IGO heads")
        taus = ckpt.config.get("taus", [])
        if tau not in taus:
            raise PcdkitError(f"backbone.tau: {tau} not among the heads' taus {taus}")
        heads = IGOHeads(self.net, taus)
        heads.load_state_dict(ckpt.state_dict)
        enc, dec = heads.pair(tau)
        self.settings |= {"encoder": enc.eval(), "decoder": dec.eval()}

    def denoise(self, points: torch.Tensor, generator: torch.Generator | None = None
                ) -> torch.Tensor:
        """Denoise one (N, 3) cloud on its device."""
        if next(self.net.parameters()).device != points.device:
            self.net.to(points.device)
            for key in ("encoder", "decoder"):
                if self.settings.get(key) is not None:
                    self.settings[key].to(points.device)
        return denoise_cloud(self.net, points, **self.settings)
