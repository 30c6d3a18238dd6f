"""Reverse-time samplers for a forward SDE ``dx = a(x, t) dt + b(t) dW`` and a score model.

- :func:`probability_flow`: the probability-flow ODE ``dx/dt = a - b^2 s / 2`` from t = 1 down to
  ``eps`` with torchdiffeq (adaptive dopri5 by default, the RK45 analogue the IGO paper used via
  scipy).
- :func:`reverse_sde`: Euler-Maruyama on the reverse SDE ``dx = (a - b^2 s) dt + b dW_bar``,
  with the last step taken without noise.
- :func:`predictor_corrector`: the same Euler-Maruyama predictor, each step followed by
  ``corrector_steps`` Langevin corrections at the new time, ``x += e s + sqrt(2 e) z`` with
  ``e = 2 (snr |z| / |s|)^2`` from the batch's mean norms (Song et al. 2021, Algorithm 4 / 5,
  as their code).

Both start from the process's injected noise at t = 1 (``process.prior``: N(0, std(1)^2 I), or
the exact N(0, Sigma_1) of a linear drift such as the cat map), with mean 0: the data's drifted
mean is small next to that noise for variance-exploding schedules, as in the score-SDE tutorial.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from pcdkit.corruptions.base import randn_like
from pcdkit.corruptions.sde import EulerMaruyama, _per_sample
from pcdkit.ode import solve

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def probability_flow(score: Score, process: EulerMaruyama, shape: tuple[int, ...], *,
                     generator: torch.Generator, device: torch.device, eps: float = 1e-3,
                     method: str = "dopri5", rtol: float = 1e-5,
                     atol: float = 1e-5) -> tuple[torch.Tensor, int]:
    """Samples by the probability-flow ODE; returns (x at t = eps, function evaluations)."""
    x1 = process.prior(shape, generator, device)

    def field(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # dopri5 may probe just past eps; the noise scale is undefined for t <= 0
        tb = torch.full((x.shape[0],), max(float(t), eps), device=x.device)
        tt = _per_sample(tb, x)
        return process.drift(x, tt) - 0.5 * process.diffusion(x, tt) ** 2 * score(x, tb)

    times = torch.tensor([process.t_max, eps], device=device, dtype=x1.dtype)
    xs, nfe = solve(field, x1, times, method=method, rtol=rtol, atol=atol)
    return xs[-1], nfe


@torch.no_grad()
def reverse_sde(score: Score, process: EulerMaruyama, shape: tuple[int, ...], *,
                generator: torch.Generator, device: torch.device, steps: int = 500,
                eps: float = 1e-3) -> torch.Tensor:
    """Samples by Euler-Maruyama on the reverse-time SDE (``steps`` from t_max to eps)."""
    return predictor_corrector(score, process, shape, generator=generator, device=device,
                               steps=steps, eps=eps, corrector_steps=0)


@torch.no_grad()
def predictor_corrector(score: Score, process: EulerMaruyama, shape: tuple[int, ...], *,
                        generator: torch.Generator, device: torch.device, steps: int = 500,
                        eps: float = 1e-3, snr: float = 0.16,
                        corrector_steps: int = 1) -> torch.Tensor:
    """Samples by reverse-SDE Euler-Maruyama steps, each corrected by Langevin dynamics at the
    new time with the step size that gives signal-to-noise ratio ``snr``."""
    x = process.prior(shape, generator, device)
    times = torch.linspace(process.t_max, eps, steps + 1, device=device)
    for k in range(steps):
        t, dt = times[k], times[k] - times[k + 1]
        tb = torch.full((shape[0],), float(t), device=device)
        tt = _per_sample(tb, x)
        b = process.diffusion(x, tt)
        mean = x - (process.drift(x, tt) - b**2 * score(x, tb)) * dt
        if k == steps - 1:
            return mean
        x = mean + b * dt.sqrt() * randn_like(x, generator)
        tn = torch.full((shape[0],), float(times[k + 1]), device=device)
        for _ in range(corrector_steps):
            grad, z = score(x, tn), randn_like(x, generator)
            # batch-mean norms, as the score-SDE reference: a per-sample ratio explodes for
            # low-dimensional samples that happen to sit where the score is near zero
            ratio = z.flatten(1).norm(dim=1).mean() / grad.flatten(1).norm(dim=1).mean()
            step = 2 * (snr * ratio) ** 2
            x = x + step * grad + (2 * step).sqrt() * z
    return x
