"""Time-conditioned U-Net score model for 28 x 28 images (IGO paper 4.1).

The architecture is the score-SDE tutorial's MNIST U-Net that the IGO authors build on: Gaussian
random Fourier features of t, four strided 3x3 convolutions down (28 -> 26 -> 12 -> 5 -> 2) and
four transposed convolutions up with skip connections, GroupNorm and swish, the output divided by
the noise std of x_t so the network predicts a unit-scale quantity.

IGO's intermediate pathway (see :mod:`pcdkit.heads.igo_unet`) enters at the 12 x 12 level:
E_tau (5x5 conv, stride 2: 28 -> 12) stands in for the first two blocks and D_tau (6x6 transposed
conv, stride 2: 12 -> 28) for the last two, so s_tau is the shared inner U-Net.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class GaussianFourierProjection(nn.Module):
    """Fixed random features ``[sin(2 pi W t), cos(2 pi W t)]`` with ``W ~ N(0, scale^2)``."""

    def __init__(self, dim: int, scale: float = 30.0) -> None:
        super().__init__()
        self.register_buffer("W", torch.randn(dim // 2) * scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B, dim)."""
        proj = t[:, None] * self.W[None, :] * 2 * math.pi
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)


class _Block(nn.Module):
    """(transposed) conv -> + dense(time embedding) -> GroupNorm -> swish."""

    def __init__(self, conv: nn.Module, channels: int, embed_dim: int, groups: int) -> None:
        super().__init__()
        self.conv = conv
        self.dense = nn.Linear(embed_dim, channels)
        self.norm = nn.GroupNorm(groups, channels)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv(h) + self.dense(emb)[..., None, None]
        return torch.nn.functional.silu(self.norm(h))


def _groups(channels: int) -> int:
    """GroupNorm groups: 4 for the first level, 32 deeper (as the tutorial), 4 when indivisible."""
    return 32 if channels > 32 and channels % 32 == 0 else 4


class ScoreUNet(nn.Module):
    """s(x, t) for (B, 1, 28, 28) images; ``path=(E_tau, D_tau)``: the intermediate generator."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256), embed_dim: int = 256,
                 fourier_scale: float = 30.0) -> None:
        super().__init__()
        c = list(channels)
        if len(c) != 4 or any(ch % 4 for ch in c):
            raise ValueError(f"channels: expected 4 multiples of 4, got {c}")
        self.channels, self.embed_dim, self.fourier_scale = c, embed_dim, fourier_scale
        self.embed = nn.Sequential(GaussianFourierProjection(embed_dim, fourier_scale),
                                   nn.Linear(embed_dim, embed_dim))

        def block(conv: nn.Module, ch: int) -> _Block:
            return _Block(conv, ch, embed_dim, _groups(ch))

        conv, tconv = nn.Conv2d, nn.ConvTranspose2d
        self.down1 = block(conv(1, c[0], 3, stride=1, bias=False), c[0])
        self.down2 = block(conv(c[0], c[1], 3, stride=2, bias=False), c[1])
        self.down3 = block(conv(c[1], c[2], 3, stride=2, bias=False), c[2])
        self.down4 = block(conv(c[2], c[3], 3, stride=2, bias=False), c[3])
        self.up4 = block(tconv(c[3], c[2], 3, stride=2, bias=False), c[2])
        self.up3 = block(tconv(2 * c[2], c[1], 3, stride=2, bias=False, output_padding=1), c[1])
        self.up2 = block(tconv(2 * c[1], c[0], 3, stride=2, bias=False, output_padding=1), c[0])
        self.out = nn.ConvTranspose2d(2 * c[0], 1, 3, stride=1)

    def config(self) -> dict[str, object]:
        """Settings that rebuild this network (stored in checkpoints)."""
        return {"channels": self.channels, "embed_dim": self.embed_dim,
                "fourier_scale": self.fourier_scale}

    def forward(self, x: torch.Tensor, t: torch.Tensor, std: torch.Tensor,
                path: tuple[nn.Module, nn.Module] | None = None) -> torch.Tensor:
        """Score of ``x`` (B, 1, 28, 28) at times ``t`` (B,), noise std ``std`` (B,)."""
        if x.shape[-2:] != (28, 28):
            raise ValueError(f"ScoreUNet expects 28 x 28 images, got {tuple(x.shape[-2:])}")
        emb = torch.nn.functional.silu(self.embed(t))
        if path is None:
            h1 = self.down1(x, emb)
            h2 = self.down2(h1, emb)
        else:  # E_tau replaces the first two blocks
            h2 = torch.nn.functional.silu(self.down2.norm(
                path[0](x) + self.down2.dense(emb)[..., None, None]))
        h3 = self.down3(h2, emb)
        h = self.up4(self.down4(h3, emb), emb)
        h = self.up3(torch.cat([h, h3], 1), emb)
        if path is None:
            h = self.up2(torch.cat([h, h2], 1), emb)
            h = self.out(torch.cat([h, h1], 1))
        else:  # D_tau replaces the last two
            h = path[1](torch.cat([h, h2], 1))
        return h / std[:, None, None, None]
