"""The corruption-process contract, shared by closed-form and SDE-simulated processes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class Corrupted:
    """A corrupted batch: the final iterate ``x_t``, per-sample times ``t`` (B,) and the iterates
    ``intermediates[tau]`` at ``tau * t`` for each requested fraction ``tau`` in (0, 1).

    SDE processes asked for ``kernel=True`` also return, per fraction (1.0 for x_t), the
    noise-free path ``means[frac]`` and the injected noise variance ``variances[frac]`` (B,): the
    Gaussian kernel that denoising score matching regresses against.
    """

    x_t: torch.Tensor
    t: torch.Tensor
    intermediates: dict[float, torch.Tensor] = field(default_factory=dict)
    means: dict[float, torch.Tensor] = field(default_factory=dict)
    variances: dict[float, torch.Tensor] = field(default_factory=dict)

    def record(self, frac: float, x: torch.Tensor, mean: torch.Tensor | None = None,
               variance: torch.Tensor | None = None) -> None:
        """Store the iterate of fraction ``frac`` (1.0: x_t) and, if given, its kernel."""
        if frac < 1.0:
            self.intermediates[frac] = x
        else:
            self.x_t = x
        if mean is not None and variance is not None:
            self.means[frac], self.variances[frac] = mean, variance


class Corruption:
    """A corruption plugin object.

    ``process(x0, generator=..., taus=(0.5,))`` corrupts a clean batch and returns the final
    iterate plus the iterates at the requested fractions of each sample's time (IGO's x_tau;
    ``taus=()`` asks for none). Deterministic given the generator.
    """

    def __call__(
        self, x0: torch.Tensor, *, generator: torch.Generator | None = None,
        taus: Sequence[float] = (),
    ) -> Corrupted:
        """Corrupt ``x0``."""
        raise NotImplementedError


def check_taus(taus: Sequence[float]) -> list[float]:
    """Sorted, validated intermediate fractions."""
    out = sorted(float(t) for t in taus)
    for t in out:
        if not 0.0 < t < 1.0:
            raise ValueError(f"intermediate fraction tau={t} must lie strictly in (0, 1)")
    return out


def randn(shape: tuple[int, ...], generator: torch.Generator | None,
          like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``shape`` in ``like``'s dtype and device, drawn from
    ``generator`` on its own device (so CPU generators stay reproducible for CUDA runs)."""
    dev = generator.device if generator is not None else like.device
    return torch.randn(shape, generator=generator, device=dev, dtype=like.dtype).to(like.device)


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` on its device."""
    return randn(tuple(x.shape), generator, x)
