"""Built-in SDE corruption processes of the IGO paper and its reference code."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence

import torch

from pcdkit.corruptions.base import Corrupted, check_taus, randn, randn_like
from pcdkit.corruptions.sde import EulerMaruyama, _per_sample
from pcdkit.geometry.normalize import normalize_unit_sphere


class GaussianVE(EulerMaruyama):
    """Variance-exploding SDE ``dx = sigma^t dW`` (score-SDE tutorial setting).

    Marginal: ``x_t = x_0 + std(t) z`` with ``std(t)^2 = (sigma^(2t) - 1) / (2 ln sigma)``.
    ``method='closed'`` samples the marginals exactly (intermediate iterates on the same path:
    independent increments of variance ``std(t)^2 - std(tau t)^2``); ``method='em'`` simulates.
    """

    def __init__(self, sigma: float, method: str, t_min: float, t_max: float,
                 steps: int) -> None:
        super().__init__(t_min, t_max, steps)
        self.sigma, self.method = sigma, method

    def diffusion(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.sigma**t

    def marginal_std(self, t: torch.Tensor) -> torch.Tensor:
        """std of x_t given x_0."""
        return torch.sqrt((self.sigma ** (2 * t) - 1) / (2 * math.log(self.sigma)))

    def kernel_std(self, t: torch.Tensor) -> torch.Tensor:
        if self.method == "em":
            return super().kernel_std(t)
        return self.marginal_std(t)

    def __call__(self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
                 taus: Sequence[float] = (0.5,), t: torch.Tensor | None = None,
                 kernel: bool = False) -> Corrupted:
        if self.method == "em":
            return super().__call__(x0, generator=generator, taus=taus, t=t, kernel=kernel)
        taus = check_taus(taus)
        t = self.sample_t(x0.shape[0], generator, x0.device) if t is None else t
        x, prev_var = x0, torch.zeros_like(t)
        out = Corrupted(x_t=x0, t=t)
        for frac in [*taus, 1.0]:
            var = self.marginal_std(frac * t) ** 2
            x = x + _per_sample((var - prev_var).sqrt(), x0) * randn_like(x0, generator)
            prev_var = var
            out.record(frac, x, *((x0, var) if kernel else ()))
        return out


@functools.lru_cache(maxsize=8)  # the EM loop asks for the same grid at every step
def cat_map_permutation(n: int) -> torch.Tensor:
    """Flat source index of every pixel after one step of Arnold's cat map on an n x n grid.

    The map sends pixel (i, j) to ((2 i + j) mod n, (i + j) mod n); it is a bijection (its
    matrix [[2, 1], [1, 1]] has determinant 1) and periodic.
    """
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    dest = ((2 * i + j) % n) * n + (i + j) % n
    src = torch.empty(n * n, dtype=torch.long)
    src[dest.flatten()] = torch.arange(n * n)
    return src


@functools.lru_cache(maxsize=8)
def cat_map_cycles(n: int) -> dict[int, torch.Tensor]:
    """The cat map's orbits on an n x n grid, grouped by length: ``{L: (cycles, L)}`` flat
    pixel indices, ordered so that one map step shifts every cycle by one place."""
    src = cat_map_permutation(n).tolist()
    seen = [False] * (n * n)
    groups: dict[int, list[list[int]]] = {}
    for start in range(n * n):
        if seen[start]:
            continue
        cycle, i = [], start
        while not seen[i]:
            seen[i] = True
            cycle.append(i)
            i = src[i]
        groups.setdefault(len(cycle), []).append(cycle)
    return {length: torch.tensor(c) for length, c in sorted(groups.items())}


def cat_map(images: torch.Tensor, steps: int = 1) -> torch.Tensor:
    """Apply Arnold's cat map ``steps`` times to (..., n, n) images."""
    n = images.shape[-1]
    if images.shape[-2] != n:
        raise ValueError(f"cat map needs square images, got {tuple(images.shape[-2:])}")
    src = cat_map_permutation(n).to(images.device)
    flat = images.reshape(*images.shape[:-2], n * n)
    for _ in range(steps):
        flat = flat[..., src]
    return flat.reshape(images.shape)


class CatMap(EulerMaruyama):
    """Images drift towards their cat-map permutation, with scaled Gaussian diffusion (IGO 4.1).

    ``a(x, t) = rate * (catmap(x) - x)``, ``b(t) = noise * sigma^t`` (constant for sigma = 1;
    sigma = 25 gives the score-SDE tutorial's variance-exploding scale for generation).
    """

    def __init__(self, rate: float, noise: float, sigma: float, t_min: float, t_max: float,
                 steps: int) -> None:
        super().__init__(t_min, t_max, steps)
        self.rate, self.noise, self.sigma = rate, noise, sigma

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.rate * (cat_map(x) - x)

    def diffusion(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.noise * self.sigma**t

    # The drift is linear, x -> A x with A = (1 - c) I + c P per step (c = rate dt, P the pixel
    # permutation), so the injected noise is exactly Gaussian with covariance
    # Sigma_{k+1} = A Sigma_k A^T + b_k^2 dt I. P shifts each orbit of the map by one place, so
    # the DFT along an orbit diagonalises A (eigenvalue 1 - c + c w^j) and Sigma (real
    # eigenvalues lambda_j): the exact kernel score -Sigma^-1 e costs two FFTs.
    def _eigenvalues(self, t: torch.Tensor, k: int, length: int,
                     initial: float = 0.0) -> torch.Tensor:
        """lambda_j (B, length) of Sigma after k steps of dt = t / steps from Sigma_0 =
        initial * I (the data's own spread, for exact scores of Gaussian data)."""
        dt = (t / self.steps)[:, None]
        c = self.rate * dt
        j = torch.arange(length, device=t.device, dtype=t.dtype)
        gain = (1 - c) ** 2 + c**2 + 2 * c * (1 - c) * torch.cos(2 * math.pi * j / length)
        m = torch.arange(k, device=t.device, dtype=t.dtype)
        b2 = (self.noise * self.sigma ** (t[:, None] * (m / self.steps))) ** 2 * dt  # (B, k)
        decay = gain[:, None, :] ** (k - 1 - m)[None, :, None]  # (B, k, length)
        lam = initial * gain**k + (b2[:, :, None] * decay).sum(1)
        return lam

    def apply_covariance(self, e: torch.Tensor, t: torch.Tensor, k: int, power: float,
                         initial: float = 0.0) -> torch.Tensor:
        """Sigma^power (after k steps, see :meth:`_eigenvalues`) applied to (B, ..., n, n)
        images via orbit-wise FFTs."""
        n = e.shape[-1]
        flat = e.reshape(e.shape[0], -1, n * n)
        out = torch.empty_like(flat)
        for length, cycles in cat_map_cycles(n).items():
            idx = cycles.to(e.device)
            spec = torch.fft.fft(flat[:, :, idx], dim=-1)  # (B, C, cycles, L)
            lam = self._eigenvalues(t, k, length, initial)[:, None, None, :]
            out[:, :, idx] = torch.fft.ifft(spec * lam**power, dim=-1).real
        return out.reshape(e.shape)

    def kernel_score(self, e: torch.Tensor, t: torch.Tensor, frac: float,
                     variance: torch.Tensor) -> torch.Tensor:
        return -self.apply_covariance(e, t, self.step_of(frac), -1.0)

    def prior(self, shape: tuple[int, ...], generator: torch.Generator | None,
              device: torch.device) -> torch.Tensor:
        t1 = torch.full((shape[0],), self.t_max, device=device)
        return self.apply_covariance(randn(shape, generator, t1), t1, self.steps, 0.5)


class LotkaVolterra(EulerMaruyama):
    """Predator-prey drift on (..., 2) states (u, v) with additive Gaussian diffusion.

    ``du = (alpha u - beta u v) dt``, ``dv = (delta u v - gamma v) dt``, ``b = noise``.
    """

    def __init__(self, alpha: float, beta: float, gamma: float, delta: float, noise: float,
                 t_min: float, t_max: float, steps: int) -> None:
        super().__init__(t_min, t_max, steps)
        self.alpha, self.beta, self.gamma, self.delta, self.noise = (alpha, beta, gamma, delta,
                                                                     noise)

    def drift(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 2:
            raise ValueError(f"lotka-volterra needs states (..., 2), got {tuple(x.shape)}")
        u, v = x[..., 0], x[..., 1]
        return torch.stack([self.alpha * u - self.beta * u * v,
                            self.delta * u * v - self.gamma * v], -1)

    def diffusion(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, self.noise)


class PointCloudEM(EulerMaruyama):
    """Gaussian noise accumulated along the Euler-Maruyama path on (B, N, 3) clouds (IGO 4.3).

    ``dx = std * r dW`` with ``r`` each cloud's unit-sphere radius: at t = 1 the noise std is
    ``std`` (relative), and the iterate at ``tau = t / 2`` carries half the variance.
    """

    def __init__(self, std: float, t_min: float, t_max: float, steps: int) -> None:
        super().__init__(t_min, t_max, steps, event_dims=2)
        self.std = std
        self.radius: torch.Tensor | None = None  # (B, 1, 1) on bound copies, see bind

    def bind(self, x0: torch.Tensor) -> PointCloudEM:
        bound = copy.copy(self)
        bound.radius = normalize_unit_sphere(x0)[1].scale
        return bound

    def diffusion(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.radius is None:
            raise RuntimeError("PointCloudEM.diffusion runs on a process bound to a batch")
        return self.std * self.radius


class SwapClean:
    """The authors' point-cloud variant: ``x_t`` = Gaussian-noisy cloud, ``x_tau`` = the same
    noisy cloud with a random subset of its points replaced by their clean counterparts.

    At fraction ``tau`` a share ``1 - tau`` of the points is clean (tau -> 0: the clean cloud,
    tau -> 1: the noisy one), so ``tau = 1/2`` swaps half the points.
    """

    def __init__(self, std: float) -> None:
        self.std = std

    def __call__(self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
                 taus: Sequence[float] = (0.5,)) -> Corrupted:
        taus = check_taus(taus)
        radius = normalize_unit_sphere(x0)[1].scale
        noisy = x0 + self.std * radius * randn_like(x0, generator)
        dev = generator.device if generator is not None else x0.device
        out = {}
        for tau in taus:
            pick = torch.rand(x0.shape[:-1], generator=generator, device=dev).to(x0.device)
            out[tau] = torch.where((pick < 1 - tau).unsqueeze(-1), x0, noisy)
        t = torch.ones(x0.shape[0] if x0.dim() == 3 else 1, device=x0.device)
        return Corrupted(x_t=noisy, t=t, intermediates=out)
