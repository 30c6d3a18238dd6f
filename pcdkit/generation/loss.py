"""IGO's training objective for a time-conditioned image score model (IGO eqs. 5-7).

``alpha * L(s, x_t, t) + (1 - alpha) * sum_tau L(E_tau o s_tau o D_tau, x_tau, tau t)`` with the
denoising-score-matching loss ``L = E || sigma (s(x) - g) ||^2`` (summed over pixels, averaged
over the batch; ``lambda(t) = sigma^2`` as in the score-SDE tutorial): ``g`` is the process's
kernel score of the injected noise ``x - m`` (``m`` the simulated noise-free path; exact
``-Sigma^-1 (x - m)`` for the cat map, ``-(x - m) / sigma^2`` by default) and ``sigma^2`` the
injected variance (see :mod:`pcdkit.corruptions.sde`). The intermediate generator scores x_tau at
its own time tau t.
"""

from __future__ import annotations

import torch

from pcdkit.backbones.score_unet import ScoreUNet
from pcdkit.corruptions.base import Corrupted
from pcdkit.corruptions.sde import EulerMaruyama
from pcdkit.heads.base import IGOHeadSet


def _dsm(model: ScoreUNet, process: EulerMaruyama, c: Corrupted, frac: float,
         path: tuple[torch.nn.Module, torch.nn.Module] | None) -> torch.Tensor:
    x = c.x_t if frac == 1.0 else c.intermediates[frac]
    var = c.variances[frac]
    target = process.kernel_score(x - c.means[frac], c.t, frac, var)
    std = var.sqrt().view(-1, 1, 1, 1)
    s = model(x, frac * c.t, std.flatten(), path)
    return ((s - target) * std).pow(2).flatten(1).sum(1).mean()


def igo_score_loss(model: ScoreUNet, heads: IGOHeadSet | None, process: EulerMaruyama,
                   x0: torch.Tensor, alpha: float, generator: torch.Generator
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss, its parts) on a clean batch ``x0`` corrupted by ``process``."""
    taus = heads.taus if heads is not None else []
    c = process(x0, generator=generator, taus=taus, kernel=True)
    loss_t = _dsm(model, process, c, 1.0, None)
    parts = {"loss_t": loss_t.item()}
    if heads is None or alpha == 1.0:  # no weight on the intermediate pathway: skip its cost
        return loss_t, parts
    loss = alpha * loss_t
    for tau in taus:
        loss_tau = _dsm(model, process, c, tau, heads.pair(tau))
        loss = loss + (1 - alpha) * loss_tau
        parts[f"loss_tau_{tau:g}"] = loss_tau.item()
    return loss, parts
