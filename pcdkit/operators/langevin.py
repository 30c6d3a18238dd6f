"""Annealed Langevin sampling of p(x | y) with a learned score prior (SGILO's idea, Daras et al.
2022, carried from a generator's intermediate layer to the points themselves).

In the unit-sphere frame of the measurement y, for noise levels sigma_1 > ... > sigma_K
(geometric) and ``steps`` iterations at each:

    x <- x + step * [ w_prior * d(x) + w_lik * sigma_k^2 * grad log p(y | x) ]
           + temperature * sqrt(2 step) * sigma_k * z,

where d(x) = sigma^2 grad log p_sigma(x) is the prior's displacement towards the surface
(Tweedie), so the bracket is sigma_k^2 times the posterior score. With ``refresh: level`` and a
prior that offers ``frozen(x)``, d reads its context (score-denoise: patches and features) once
per noise level, from the cloud at the level's first step, as the denoiser reads its features
once from its input; ``refresh: step`` reads it at every step; ``temperature`` 1 is Langevin
dynamics, 0 its deterministic limit (gradient ascent on the posterior). Stability needs
step * w_lik * sigma_1^2 / sigma_y^2 < 2 for a Gaussian likelihood of std sigma_y. With
``tweedie`` the sample ends with one noise-free step x + d(x) (Tweedie's estimate of the clean
points), which removes the last level's injected noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from pcdkit.geometry.normalize import normalize_unit_sphere


@dataclass(frozen=True)
class LangevinSettings:
    """The schedule of :func:`posterior_sample`."""

    sigma_max: float = 0.02
    sigma_min: float = 0.005
    levels: int = 5
    steps: int = 10
    step: float = 0.2
    temperature: float = 1.0
    prior_weight: float = 1.0
    likelihood_weight: float = 1.0
    tweedie: bool = True
    refresh: Literal["level", "step"] = "level"

    def sigmas(self) -> list[float]:
        """The geometric noise levels, largest first."""
        if self.levels == 1:
            return [self.sigma_min]
        ratio = (self.sigma_min / self.sigma_max) ** (1 / (self.levels - 1))
        return [self.sigma_max * ratio ** k for k in range(self.levels)]


def posterior_sample(prior: object, operator: object, y: torch.Tensor, points: int,
                     settings: LangevinSettings, generator: torch.Generator | None = None
                     ) -> torch.Tensor:
    """One sample (points, 3) of x given the measurement y (M, 3), in y's units."""
    s = settings
    yn, tf = normalize_unit_sphere(y)
    x = operator.initial(yn, points, generator)
    reuse = s.refresh == "level" and hasattr(prior, "frozen")
    for sigma in s.sigmas():
        field = prior.frozen(x) if reuse and s.prior_weight else prior.score
        for _ in range(s.steps):
            drift = torch.zeros_like(x)
            if s.prior_weight:
                drift += s.prior_weight * field(x)
            if s.likelihood_weight:
                drift += s.likelihood_weight * sigma ** 2 * operator.grad_log_likelihood(x, yn)
            x = x + s.step * drift
            if s.temperature:
                z = torch.randn(x.shape, generator=generator).to(x.device)
                x = x + s.temperature * math.sqrt(2 * s.step) * sigma * z
    if s.tweedie and s.prior_weight:  # the posterior mean of the last level's noise
        x = x + prior.score(x)
    return tf.invert(x)
