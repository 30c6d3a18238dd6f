"""IGO heads for the score-denoise backbone (IGO paper, section 4.3).

For every intermediate fraction tau, the intermediate encoder E_tau replicates the backbone's
first perceptron layer (``feature_net.transforms[0]``, 3 -> 24) and the intermediate decoder
D_tau its last one (``score_net.conv_out``, 128 -> 3); both start at half the pretrained weights.
An intermediate iterate x_tau runs through the shared backbone with E_tau / D_tau in place of the
first / last layer, so the extra parameters are O(|T|) instead of O(P |T|) for one network per
time step. Training minimises alpha * L(x_t) + (1 - alpha) * sum_tau L(x_tau).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import torch
from torch import nn

from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
from pcdkit.heads.base import IGOHeadSet


def _scaled_copy(layer: nn.Module, scale: float) -> nn.Module:
    out = copy.deepcopy(layer)
    with torch.no_grad():
        for p in out.parameters():
            p.mul_(scale)
    return out


class IGOHeads(IGOHeadSet):
    """E_tau / D_tau pairs, one per tau, initialised from a backbone."""

    def __init__(self, backbone: ScoreDenoiseNet, taus: Sequence[float],
                 init_scale: float = 0.5) -> None:
        first, last = backbone.feature_net.transforms[0], backbone.score_net.conv_out
        super().__init__(taus, {t: _scaled_copy(first, init_scale) for t in taus},
                         {t: _scaled_copy(last, init_scale) for t in taus})

    def combine(self, backbone: ScoreDenoiseNet, alpha: float) -> IGOScoreDenoiseNet:
        """The module trained by ``train-denoiser``: backbone plus these heads, whose call is
        the alpha-weighted IGO loss."""
        return IGOScoreDenoiseNet(backbone, self, alpha)

    def diversity(self, backbone: ScoreDenoiseNet) -> dict[str, float]:
        """Cosine similarity and Euclidean distance of E_T vs E_tau and D_T vs D_tau weights."""
        out = {}
        pairs = (("E", backbone.feature_net.transforms[0], self.encoders),
                 ("D", backbone.score_net.conv_out, self.decoders))
        for name, main, heads in pairs:
            a = torch.cat([p.detach().flatten() for p in main.parameters()])
            for key, head in heads.items():
                b = torch.cat([p.detach().flatten() for p in head.parameters()])
                out[f"{name}_{key}_cos"] = float(torch.nn.functional.cosine_similarity(a, b, 0))
                out[f"{name}_{key}_dist"] = float((a - b).norm())
        return out


class IGOScoreDenoiseNet(nn.Module):
    """Backbone plus heads; calling it returns the alpha-weighted IGO training loss."""

    def __init__(self, backbone: ScoreDenoiseNet, heads: IGOHeads, alpha: float) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self.backbone, self.heads, self.alpha = backbone, heads, alpha

    def forward(self, noisy: torch.Tensor, clean: torch.Tensor, generator: torch.Generator,
                intermediates: dict[float, torch.Tensor] | None = None,
                **overrides: float) -> torch.Tensor:
        """alpha * L(x_t) + (1 - alpha) * sum_tau L(x_tau) on a batch of patches (loss
        settings: the backbone's, fields overridable per call)."""
        from pcdkit.backbones.score_denoise.loss import supervised_loss

        settings = dataclasses.replace(self.backbone.loss_settings, **overrides)
        kw = dict(backend=self.backbone.knn_backend, **dataclasses.asdict(settings))
        loss = self.alpha * supervised_loss(self.backbone, noisy, clean, generator, **kw)
        for tau, x_tau in (intermediates or {}).items():
            enc, dec = self.heads.pair(tau)
            loss = loss + (1 - self.alpha) * supervised_loss(
                self.backbone, x_tau, clean, generator, encoder=enc, decoder=dec, **kw)
        return loss
