"""Pictures of point clouds side by side (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from pcdkit.errors import PcdkitError


def pyplot(purpose: str | None = None) -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend; None when matplotlib is missing (or
    an error naming ``purpose`` when one is given)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if purpose is None:
            return None
        raise PcdkitError(f"{purpose} needs matplotlib: pip install 'pcdkit[plot]'") from None
    return plt


def render_clouds(clouds: Sequence[torch.Tensor], titles: Sequence[str], path: str | Path,
                  max_points: int = 20000, elev: float = 20.0, azim: float = 35.0) -> Path:
    """Scatter each cloud in its own 3-D panel with shared limits; write a PNG."""
    plt = pyplot("rendering")
    pts = [c.detach().float().cpu() for c in clouds]
    allp = torch.cat(pts)
    lo, hi = allp.amin(0), allp.amax(0)
    span = (hi - lo).clamp_min(1e-6 * float((hi - lo).max()))
    fig = plt.figure(figsize=(4 * len(pts), 4.2))
    for i, (p, title) in enumerate(zip(pts, titles, strict=True)):
        if len(p) > max_points:  # evenly thinned, deterministic
            p = p[torch.linspace(0, len(p) - 1, max_points).long()]
        ax = fig.add_subplot(1, len(pts), i + 1, projection="3d")
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], s=1.2, c=p[:, 2], cmap="viridis", linewidths=0,
                   vmin=float(lo[2]), vmax=float(hi[2]))
        for setter, a, b in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), lo.tolist(),
                                hi.tolist(), strict=True):
            setter(a, b)  # the same limits in every panel, true proportions
        ax.set_box_aspect(span.tolist())
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int = 8,
                    scale: int = 2) -> Path:
    """Tile (N, 1, H, W) images in [0, 1] into one grayscale PNG (``scale`` x upsampled)."""
    plt = pyplot("image grids")
    imgs = images.detach().float().cpu().clamp(0, 1)[:, 0]
    n, h, w = imgs.shape
    rows = -(-n // nrow)
    canvas = torch.ones(rows * (h + 2) + 2, nrow * (w + 2) + 2)
    for i in range(n):
        r, c = divmod(i, nrow)
        canvas[2 + r * (h + 2): 2 + r * (h + 2) + h, 2 + c * (w + 2): 2 + c * (w + 2) + w] = imgs[i]
    canvas = canvas.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    path = Path(path)
    plt.imsave(path, canvas.numpy(), cmap="gray", vmin=0.0, vmax=1.0)
    return path
