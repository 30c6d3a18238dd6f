"""Encoders and decoders of the latent ODE family (Rubanova et al. 2019; ME-NODE).

- :class:`ODERNNEncoder`: ODE-RNN run backwards over the observed frames. Its hidden state
  (mean and std, ``rec_dims`` each) follows a learned ODE between observations (one Euler step
  per interval, as the reference) and a GRU-style update at observed frames (``gru_units``
  hidden units); a masked frame leaves the state unchanged. At the first time it is mapped by
  Linear(2 rec_dims -> 100), Tanh, Linear(100 -> 2 latents) to the z0 posterior mean and
  std = softplus(rho) + 1e-8.
- :class:`FrameEncoder` / :class:`FrameDecoder`: the rotating-MNIST convolutions
  (1 -> 12 -> 24 -> latents, flatten, Linear(49 -> 1); Linear(latents -> 49 latents), 7 x 7,
  transposed convs latents -> 24 -> 12 -> 1, sigmoid).
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(dims: list[int], act: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear layers with ``act`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class _GRUUpdate(nn.Module):
    """Latent-ODE style GRU update of a (mean, std) state with an observation."""

    def __init__(self, rec_dims: int, input_dim: int, units: int) -> None:
        super().__init__()
        full = 2 * rec_dims + input_dim
        self.update = nn.Sequential(mlp([full, units, rec_dims]), nn.Sigmoid())
        self.reset = nn.Sequential(mlp([full, units, rec_dims]), nn.Sigmoid())
        self.new = mlp([full, units, 2 * rec_dims])

    def forward(self, mean: torch.Tensor, std: torch.Tensor, x: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        both = torch.cat([mean, std, x], -1)
        u, r = self.update(both), self.reset(both)
        new_mean, new_std = self.new(torch.cat([mean * r, std * r, x], -1)).chunk(2, -1)
        return (1 - u) * new_mean + u * mean, (1 - u) * new_std.abs() + u * std


class ODERNNEncoder(nn.Module):
    """q(z0 | observed frames): (B, T, D) inputs, (B, T) mask, (T,) times -> (mean, std)."""

    def __init__(self, input_dim: int, latents: int, rec_dims: int = 20, gru_units: int = 100,
                 ode_units: int = 100) -> None:
        super().__init__()
        self.rec_dims = rec_dims
        self.ode = mlp([rec_dims, ode_units, rec_dims])
        self.gru = _GRUUpdate(rec_dims, input_dim + 1, gru_units)
        self.to_z0 = mlp([2 * rec_dims, 100, 2 * latents])

    def forward(self, x: torch.Tensor, mask: torch.Tensor, times: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and std of z at ``times[0]``."""
        b, t = x.shape[:2]
        mean = x.new_zeros(b, self.rec_dims)
        std = x.new_zeros(b, self.rec_dims)
        for k in range(t - 1, -1, -1):  # backwards in time
            if k < t - 1:
                mean = mean + self.ode(mean) * (times[k] - times[k + 1])
            m = mask[:, k: k + 1]
            new_mean, new_std = self.gru(mean, std, torch.cat([x[:, k], m], -1))
            mean = m * new_mean + (1 - m) * mean
            std = m * new_std + (1 - m) * std
        mu, rho = self.to_z0(torch.cat([mean, std], -1)).chunk(2, -1)
        return mu, nn.functional.softplus(rho) + 1e-8


class FrameEncoder(nn.Module):
    """(N, 1, 28, 28) -> (N, latents)."""

    def __init__(self, latents: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 12, 3, stride=1, padding=1), nn.ReLU(),
            nn.Conv2d(12, 24, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(24, latents, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.Linear(49, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels-last lets oneDNN run these few-channel convolutions ~1.3x faster on CPU
        # (benchmarks/dynamics.py); the result is the same layout-independent tensor
        h = self.conv(x.contiguous(memory_format=torch.channels_last))
        return self.pool(h.flatten(2)).squeeze(-1)


class FrameDecoder(nn.Module):
    """(N, latents) -> (N, 1, 28, 28) in (0, 1)."""

    def __init__(self, latents: int) -> None:
        super().__init__()
        self.latents = latents
        self.fc = nn.Linear(latents, 49 * latents)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(latents, 24, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(24, 12, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(12, 1, 3, stride=1, padding=1), nn.Sigmoid())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.latents, 7, 7)
        return self.deconv(h.contiguous(memory_format=torch.channels_last))  # as the encoder
