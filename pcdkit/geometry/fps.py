"""Farthest-point sampling, batched, with pluggable backends."""

from __future__ import annotations

import numpy as np
import torch

from pcdkit.geometry.backends import pick


def farthest_point_sampling(
    points: torch.Tensor, n: int, *, start: int | None = 0, backend: str = "auto",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Indices (B, n) (or (n,)) of ``n`` farthest points, greedily from ``start``.

    ``start=None`` picks a random first point (using ``generator``). The torch backend is exact
    Euclidean FPS; compiled backends give the same order up to ties.
    """
    single = points.dim() == 2
    pts = points.unsqueeze(0) if single else points
    B, N, _ = pts.shape
    if not 1 <= n <= N:
        raise ValueError(f"farthest_point_sampling: n={n} must be in [1, {N}]")
    if start is None:
        first = torch.randint(N, (B,), generator=generator).to(pts.device)
    else:
        first = torch.full((B,), start, dtype=torch.long, device=pts.device)
    which = pick(backend, pts.device, "fps")
    if which == "scipy":
        rows = [_fps_kdtree(p.detach().double().cpu().numpy(), n, int(f))
                for p, f in zip(pts, first.tolist(), strict=True)]
        idx = torch.from_numpy(np.stack(rows)).to(pts.device)
    elif which == "pytorch3d" and start == 0:
        from pytorch3d.ops import sample_farthest_points

        idx = sample_farthest_points(pts, K=n, random_start_point=False)[1]
    elif which == "pyg" and start == 0:
        idx = _fps_pyg(pts, n)
    else:
        idx = _fps_torch(pts, n, first)
    return idx[0] if single else idx


def _fps_torch(pts: torch.Tensor, n: int, first: torch.Tensor) -> torch.Tensor:
    B, N, _ = pts.shape
    idx = torch.empty(B, n, dtype=torch.long, device=pts.device)
    dist = torch.full((B, N), float("inf"), dtype=pts.dtype, device=pts.device)
    rows = torch.arange(B, device=pts.device)
    cur = first
    for i in range(n):
        idx[:, i] = cur
        d = (pts - pts[rows, cur].unsqueeze(1)).square().sum(-1)
        torch.minimum(dist, d, out=dist)
        cur = dist.argmax(dim=1)
    return idx


def _fps_kdtree(pts: np.ndarray, n: int, first: int, block: int = 128) -> np.ndarray:
    """Exact FPS touching only the points that can change.

    After choosing centre c, a point's distance can only drop if it lies within the current
    largest distance of c, so a KD-tree ball query finds every point to update. The next
    farthest point comes from per-block maxima of the distances (blocks of ``block``
    consecutive indices): only the blocks an update touched are re-reduced, and ties go to the
    lowest index, as in the greedy definition. Late iterations, where the largest distance is
    about the sampling spacing, touch a handful of points instead of all N; every iteration is
    a few vectorised calls (a heap with lazy deletion took 2.2x as long, its pushes and pops
    being Python-level).
    """
    from scipy.spatial import cKDTree

    N = len(pts)
    tree = cKDTree(pts)
    n_blocks = -(-N // block)
    dist = np.full(n_blocks * block, -1.0)  # padding below every distance: never the maximum
    dist[:N] = np.inf
    blocks = dist.reshape(n_blocks, block)  # a view: block maxima read the distances in place
    block_max = np.full(n_blocks, np.inf)
    out = np.empty(n, dtype=np.int64)
    cur, largest = first, np.inf
    for i in range(n):
        out[i] = cur
        if i == n - 1:
            break
        if np.isfinite(largest):
            radius = np.sqrt(largest) * (1 + 1e-9) + 1e-12
            near = np.asarray(tree.query_ball_point(pts[cur], radius, return_sorted=False),
                              dtype=np.int64)
            d = ((pts[near] - pts[cur]) ** 2).sum(1)
            lower = d < dist[near]
            near = near[lower]
            dist[near] = d[lower]
            dist[cur] = 0.0
            touched = np.append(near // block, cur // block)
            block_max[touched] = blocks[touched].max(1)
        else:  # the first centre: every distance is new
            dist[:N] = ((pts - pts[cur]) ** 2).sum(1)
            dist[cur] = 0.0
            block_max[:] = blocks.max(1)
        b = int(block_max.argmax())
        cur = b * block + int(blocks[b].argmax())
        largest = block_max[b]
    return out


def _fps_pyg(pts: torch.Tensor, n: int) -> torch.Tensor:
    import torch_cluster

    B, N, D = pts.shape
    batch = torch.arange(B, device=pts.device).repeat_interleave(N)
    flat = torch_cluster.fps(pts.reshape(-1, D), batch, ratio=n / N, random_start=False)
    return (flat.view(B, -1)[:, :n] - (torch.arange(B, device=pts.device) * N)[:, None])
