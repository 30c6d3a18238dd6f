"""pcdkit's public Python API: read, write, sample, denoise, score, run.

The CLI and pipelines call the same functions; ``import pcdkit`` exposes them lazily (torch is
imported on first use, so ``pcdkit plugins list`` stays light).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pcdkit.errors import PcdkitError
from pcdkit.structures import Mesh

Cloud = torch.Tensor | np.ndarray


def read(path: str | Path) -> torch.Tensor:
    """The (N, 3) float32 cloud in ``path`` (.xyz/.txt/.pts/.ply/.off/.npy/.npz)."""
    from pcdkit.io import read_points

    return read_points(path)


def read_mesh(path: str | Path) -> Mesh:
    """The triangle mesh in ``path`` (.off/.ply/.npz); polygons are fan-triangulated."""
    from pcdkit.io import read_mesh as _read_mesh

    return _read_mesh(path)


def write(path: str | Path, points: Cloud, overwrite: bool = False) -> Path:
    """Write an (N, 3) cloud (format from the suffix), atomically, never over a file unasked."""
    from pcdkit.io import write_points

    return write_points(path, points, overwrite=overwrite)


def sample(mesh: Mesh | str | Path, n: int, method: str = "poisson", seed: int = 0
           ) -> torch.Tensor:
    """Exactly ``n`` points (n, 3) on a mesh: Poisson-disk (PU-Net protocol) or uniform."""
    from pcdkit.datasets.base import sample_surface

    if not isinstance(mesh, Mesh):
        mesh = read_mesh(mesh)
    if not isinstance(n, int) or not 1 <= n <= 10_000_000:
        raise PcdkitError(f"sample: n must be an integer in [1, 10,000,000], got {n!r}")
    return sample_surface(mesh, n, method, seed)


def denoise(points: Cloud | Sequence[Cloud], checkpoint: str | Path | None = None,
            device: str = "auto", **settings: Any) -> Any:
    """Denoise with score-denoise; returns the input's type and layout.

    ``points``: one cloud (N, 3), a batch (B, N, 3) or a list of clouds of different sizes, as
    tensors or NumPy arrays, or a torch-geometric ``Data`` / ``Batch`` (``pos`` replaced).
    ``checkpoint``: a pcdkit checkpoint (default: the embedded one); ``settings``: those of the
    ``score-denoise`` backbone plugin (``passes``, ``steps``, ``seed_k``, ...).
    """
    from pcdkit.core import registry
    from pcdkit.core.device import resolve_device

    model = registry.create("backbone", "score-denoise", {"checkpoint": checkpoint, **settings})
    dev = resolve_device(device)

    def one(cloud: Cloud) -> Cloud:
        t = torch.as_tensor(cloud, dtype=torch.float32)
        if t.ndim != 2 or t.shape[-1] != 3:
            raise PcdkitError(f"denoise: expected clouds of shape (N, 3), got {tuple(t.shape)}")
        out = model.denoise(t.to(dev)).to(t.device)  # back where the input lives
        return out.numpy() if isinstance(cloud, np.ndarray) else out

    if hasattr(points, "pos"):  # a torch-geometric Data / Batch: clouds of different sizes
        from pcdkit.pyg import batch_to_clouds, with_clouds

        return with_clouds(points, [one(c) for c in batch_to_clouds(points)])
    if isinstance(points, (list, tuple)):
        return [one(c) for c in points]
    if getattr(points, "ndim", 0) == 3:
        outs = [one(c) for c in points]
        return np.stack(outs) if isinstance(points, np.ndarray) else torch.stack(outs)
    return one(points)


def chamfer(pred: Cloud, gt: Cloud) -> float:
    """Chamfer distance (squared, both directions) under the unit-sphere protocol of the paper
    (the ground-truth cloud normalised, the same transform applied to ``pred``)."""
    from pcdkit.metrics.base import Chamfer
    from pcdkit.metrics.protocol import evaluate_shape

    metric = Chamfer(squared=True, norm=2, direction="both", backend="auto")
    p, g = torch.as_tensor(pred, dtype=torch.float32), torch.as_tensor(gt, dtype=torch.float32)
    return evaluate_shape(p, {"cd": metric}, gt=g)["cd"]


def p2m(pred: Cloud, mesh: Mesh) -> float:
    """Point-to-mesh distance (both directions, exact) under the unit-sphere protocol (the mesh
    vertices normalised, the same transform applied to ``pred``)."""
    from pcdkit.metrics.base import P2M
    from pcdkit.metrics.protocol import evaluate_shape

    metric = P2M(direction="both", min_triangle_area=0.0, backend="auto")
    p = torch.as_tensor(pred, dtype=torch.float32)
    return evaluate_shape(p, {"p2m": metric}, mesh=mesh)["p2m"]


def run(pipeline: str | Path, overrides: Sequence[str] = (), out: str | Path | None = None
        ) -> tuple[Path, dict[str, Any]]:
    """Validate and run a pipeline file (``overrides`` as ``--set``); returns the run directory
    and the metrics written to its ``metrics.json``."""
    from pcdkit.core import pipeline as _pipeline
    from pcdkit.core.runner import run_pipeline

    run_dir, metrics = run_pipeline(_pipeline.load(pipeline, overrides), out=out, quiet=True)
    return run_dir.path, metrics
