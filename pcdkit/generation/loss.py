"""IGO's training objective for a time-conditioned image score model (IGO eqs. 5-7).

``alpha * L(s, x_t, t) + (1 - alpha) * sum_tau L(E_tau o s_tau o D_tau, x_tau, tau t)`` with the
denoising-score-matching loss ``L = E || sigma s(x) + (x - m) / sigma ||^2`` (summed over pixels,
averaged over the batch; ``lambda(t) = sigma^2`` as in the score-SDE tutorial), where ``m`` and
``sigma^2`` are the noise-free path and injected variance of the simulated forward SDE (see
:mod:`pcdkit.corruptions.sde`). The intermediate generator scores x_tau at its own time tau t.
"""

from __future__ import annotations

import torch

from pcdkit.backbones.score_unet import ScoreUNet
from pcdkit.corruptions.sde import EulerMaruyama
from pcdkit.heads.base import IGOHeadSet


def _dsm(model: ScoreUNet, x: torch.Tensor, t: torch.Tensor, mean: torch.Tensor,
         var: torch.Tensor, path: tuple[torch.nn.Module, torch.nn.Module] | None
         ) -> torch.Tensor:
    std = var.sqrt()
    s = model(x, t, std, path)
    z = (x - mean) / std.view(-1, 1, 1, 1)
    return (s * std.view(-1, 1, 1, 1) + z).pow(2).flatten(1).sum(1).mean()


def igo_score_loss(model: ScoreUNet, heads: IGOHeadSet | None, process: EulerMaruyama,
                   x0: torch.Tensor, alpha: float, generator: torch.Generator
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss, its parts) on a clean batch ``x0`` corrupted by ``process``."""
    taus = heads.taus if heads is not None else []
    c = process(x0, generator=generator, taus=taus, kernel=True)
    loss_t = _dsm(model, c.x_t, c.t, c.means[1.0], c.variances[1.0], None)
    parts = {"loss_t": loss_t.item()}
    if heads is None or alpha == 1.0:  # no weight on the intermediate pathway: skip its cost
        return loss_t, parts
    loss = alpha * loss_t
    for tau in taus:
        loss_tau = _dsm(model, c.intermediates[tau], tau * c.t, c.means[tau], c.variances[tau],
                        heads.pair(tau))
        loss = loss + (1 - alpha) * loss_tau
        parts[f"loss_tau_{tau:g}"] = loss_tau.item()
    return loss, parts
