"""Sampling point clouds from triangle meshes: area-weighted uniform and Poisson-disk."""

from __future__ import annotations

import math

import numpy as np
import torch

from pcdkit.structures import Mesh


def face_areas(mesh: Mesh) -> torch.Tensor:
    """Area of every triangle, (F,)."""
    a, b, c = mesh.triangles.unbind(1)
    return torch.linalg.cross(b - a, c - a).norm(dim=-1) / 2


def sample_mesh_uniform(
    mesh: Mesh, n: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``n`` points uniformly distributed over the surface (faces chosen by area), (n, 3)."""
    areas = face_areas(mesh).double()
    if not torch.isfinite(areas).all() or areas.sum() <= 0:
        raise ValueError("mesh has zero total area; cannot sample its surface")
    gen_dev = generator.device if generator is not None else torch.device("cpu")
    face = torch.multinomial(areas.to(gen_dev), n, replacement=True, generator=generator)
    u = torch.rand(n, 2, generator=generator, device=gen_dev, dtype=torch.float64)
    # reflect samples from the unit square's upper half so (u, v) is uniform on the triangle
    flip = u.sum(-1) > 1
    u[flip] = 1 - u[flip]
    tri = mesh.triangles[face.to(mesh.vertices.device)].double()
    u = u.to(tri.device)
    pts = tri[:, 0] + u[:, :1] * (tri[:, 1] - tri[:, 0]) + u[:, 1:] * (tri[:, 2] - tri[:, 0])
    return pts.to(mesh.vertices.dtype)


def _greedy_independent_set(n: int, i: torch.Tensor, j: torch.Tensor,
                            priority: torch.Tensor) -> torch.Tensor:
    """Greedy maximal independent set in priority order, computed in parallel rounds (Luby)."""
    alive = torch.ones(n, dtype=torch.bool)
    chosen = torch.zeros(n, dtype=torch.bool)
    while alive.any():
        live = alive[i] & alive[j]
        ii, jj = i[live], j[live]
        best = torch.full((n,), n, dtype=torch.long)
        best.scatter_reduce_(0, ii, priority[jj], "amin")
        best.scatter_reduce_(0, jj, priority[ii], "amin")
        win = alive & (priority < best)
        chosen |= win
        gone = win.clone()
        gone[jj[win[ii]]] = True
        gone[ii[win[jj]]] = True
        alive &= ~gone
    return chosen


def sample_mesh_poisson(
    mesh: Mesh, n: int, generator: torch.Generator | None = None, oversample: int = 5
) -> torch.Tensor:
    """Exactly ``n`` Poisson-disk distributed surface points, (n, 3).

    Dense uniform candidates are thinned by a greedy random-order independent set under a
    minimum distance ``r`` (Euclidean), with ``r`` tuned so that slightly more than ``n`` points
    survive; the surplus is dropped as a *random* subset (never the first n, which would remove
    whole regions), and a shortfall is filled with uniform samples.
    """
    from scipy.spatial import cKDTree

    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    cand = sample_mesh_uniform(mesh.to("cpu"), n * oversample, gen)
    area = float(face_areas(mesh).double().sum())
    tree = cKDTree(cand.double().numpy())
    # random maximal sets of disks of diameter r cover ~0.547 of the plane (jamming density)
    r = math.sqrt(0.547 * 4 * area / (math.pi * n)) * 0.95
    chosen = None
    for _ in range(4):
        pairs = torch.from_numpy(tree.query_pairs(r, output_type="ndarray").astype(np.int64))
        prio = torch.randperm(len(cand), generator=gen)
        chosen = _greedy_independent_set(len(cand), pairs[:, 0], pairs[:, 1], prio)
        m = int(chosen.sum())
        if n <= m <= int(1.15 * n):
            break
        r *= math.sqrt(m / (1.05 * n))
    pts = cand[chosen]
    if len(pts) >= n:
        keep = torch.randperm(len(pts), generator=gen)[:n]
        pts = pts[keep]
    else:
        pts = torch.cat([pts, sample_mesh_uniform(mesh.to("cpu"), n - len(pts), gen)])
    return pts.to(mesh.vertices.device)
