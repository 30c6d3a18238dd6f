"""Farthest-point sampling, batched, with pluggable backends."""

from __future__ import annotations

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
    if which == "pytorch3d" and start == 0:
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


def _fps_pyg(pts: torch.Tensor, n: int) -> torch.Tensor:
    import torch_cluster

    B, N, D = pts.shape
    batch = torch.arange(B, device=pts.device).repeat_interleave(N)
    flat = torch_cluster.fps(pts.reshape(-1, D), batch, ratio=n / N, random_start=False)
    return (flat.view(B, -1)[:, :n] - (torch.arange(B, device=pts.device) * N)[:, None])
