"""Exact point-to-triangle distances and nearest-triangle queries (chunked, or KD-tree pruned)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def _segment_sqdist(p: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ab = b - a
    denom = _dot(ab, ab)
    t = torch.where(denom > 0, _dot(p - a, ab) / denom.clamp_min(torch.finfo(p.dtype).tiny),
                    torch.zeros_like(denom)).clamp(0, 1)
    return (p - (a + t.unsqueeze(-1) * ab)).square().sum(-1)


def point_triangle_sqdist(
    p: torch.Tensor, tri: torch.Tensor, min_triangle_area: float = 0.0
) -> torch.Tensor:
    """Squared distance from points ``p`` (..., 3) to triangles ``tri`` (..., 3, 3), broadcast.

    The projection onto the plane is used when it falls inside the triangle, otherwise the
    nearest of the three edges. Triangles of area ``<= min_triangle_area`` (and zero-area ones)
    are treated as their edges only; ``min_triangle_area=5e-3`` reproduces pytorch3d >= 0.7's
    default, ``0`` gives the exact distance.
    """
    a, b, c = tri.unbind(-2)
    n = torch.linalg.cross(b - a, c - a)
    nn = _dot(n, n)
    area = nn.sqrt() / 2
    ap = p - a
    safe = nn.clamp_min(torch.finfo(p.dtype).tiny)
    h = _dot(ap, n)
    proj = p - (h / safe).unsqueeze(-1) * n
    inside = (
        (_dot(torch.linalg.cross(b - a, proj - a), n) >= 0)
        & (_dot(torch.linalg.cross(c - b, proj - b), n) >= 0)
        & (_dot(torch.linalg.cross(a - c, proj - c), n) >= 0)
    )
    use_plane = inside & (nn > 0) & (area > min_triangle_area)
    plane = h.square() / safe
    edges = torch.minimum(torch.minimum(_segment_sqdist(p, a, b), _segment_sqdist(p, b, c)),
                          _segment_sqdist(p, c, a))
    return torch.where(use_plane, plane, edges)


_CHUNK_ELEMS = 4_000_000  # point-triangle pairs evaluated at once


def _brute_min(points: torch.Tensor, tris: torch.Tensor, min_area: float) -> torch.Tensor:
    """min over all triangles for each point, brute force in chunks (any device)."""
    step = max(1, _CHUNK_ELEMS // max(1, len(tris)))
    out = [point_triangle_sqdist(points[s:s + step, None], tris[None], min_area).amin(1)
           for s in range(0, len(points), step)]
    return torch.cat(out) if out else points.new_zeros(0)


def _radius_groups(radius: np.ndarray, ratio: float = 2.0) -> list[np.ndarray]:
    """Site indices grouped by bounding radius (each group within a factor ``ratio``)."""
    r = np.maximum(radius, 1e-300)
    level = np.floor(np.log(r / r.min()) / np.log(ratio)).astype(np.int64)
    order = np.argsort(level, kind="stable")
    cuts = np.flatnonzero(np.diff(level[order])) + 1
    return np.split(order, cuts)


def _pruned_min(
    queries: np.ndarray, query_slack: np.ndarray, sites: np.ndarray, site_radius: np.ndarray,
    exact: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """Exact ``min_j exact(i, j)`` for every query ``i``, pruned by KD-trees on the sites.

    ``exact`` maps flat index pairs to squared distances. Item ``j`` lies within
    ``site_radius[j]`` of its site and query ``i`` within ``query_slack[i]`` of its point, so
    ``dist(i, j) >= |q_i - s_j| - slack_i - radius_j``: only pairs whose bound beats the current
    best are evaluated. Sites are grouped by radius; within a group the k nearest sites are
    examined and a query is finished once the bound of its k-th site exceeds its best, else it
    is retried with 4x more candidates, up to the whole group. The result is exact.
    """
    from scipy.spatial import cKDTree

    def relax(rows: np.ndarray, items: np.ndarray) -> None:
        for s in range(0, len(rows), _CHUNK_ELEMS):
            r, it = rows[s:s + _CHUNK_ELEMS], items[s:s + _CHUNK_ELEMS]
            vals = torch.from_numpy(exact(r, it))
            cur = torch.from_numpy(best)
            cur.scatter_reduce_(0, torch.from_numpy(r), vals, "amin")

    # an upper bound from the nearest few sites lets most candidate pairs be skipped
    k0 = min(len(sites), 4)
    _, i0 = cKDTree(sites).query(queries, k=k0, workers=-1)
    best = np.full(len(queries), np.inf)
    relax(np.repeat(np.arange(len(queries)), k0), i0.reshape(-1))
    for group in _radius_groups(site_radius):
        tree = cKDTree(sites[group])
        rad = site_radius[group]
        todo = np.arange(len(queries))
        k = min(len(group), 16)
        while len(todo):
            dk, ik = tree.query(queries[todo], k=k, workers=-1)
            dk, ik = dk.reshape(len(todo), k), ik.reshape(len(todo), k)
            lower = dk - query_slack[todo, None] - rad[ik]
            rows, cols = np.nonzero(lower < np.sqrt(best[todo])[:, None])
            relax(todo[rows], group[ik[rows, cols]])
            if k == len(group):
                break
            done = np.sqrt(best[todo]) <= dk[:, -1] - query_slack[todo] - rad.max()
            todo = todo[~done]
            k = min(len(group), k * 4)
    return best


def _use_brute_force(points: torch.Tensor, backend: str) -> bool:
    return backend == "torch" or (backend == "auto" and points.device.type != "cpu")


def _pruned_nearest(points: torch.Tensor, tris: torch.Tensor, min_area: float,
                    faces_query: bool) -> torch.Tensor:
    """KD-tree pruned exact minima in float64: per point (or, ``faces_query``, per triangle)."""
    p = points.detach().double().cpu()  # KD-tree pruning runs on the host
    t = tris.detach().double().cpu()
    cent = t.mean(1)
    rad = (t - cent[:, None]).norm(dim=-1).amax(1).numpy()
    none = np.zeros(len(p))

    def exact(p_idx: np.ndarray, f_idx: np.ndarray) -> np.ndarray:
        q, f = torch.from_numpy(p_idx), torch.from_numpy(f_idx)
        return point_triangle_sqdist(p[q], t[f], min_area).numpy()

    if faces_query:
        best = _pruned_min(cent.numpy(), rad, p.numpy(), none,
                           lambda f_idx, p_idx: exact(p_idx, f_idx))
    else:
        best = _pruned_min(p.numpy(), none, cent.numpy(), rad, exact)
    return torch.from_numpy(best).to(device=points.device, dtype=points.dtype)


def points_to_triangles(
    points: torch.Tensor, tris: torch.Tensor, min_triangle_area: float = 0.0,
    backend: str = "auto",
) -> torch.Tensor:
    """For each point (P, 3), the squared distance to the nearest triangle of ``tris`` (F, 3, 3)."""
    if _use_brute_force(points, backend):
        return _brute_min(points, tris, min_triangle_area)
    return _pruned_nearest(points, tris, min_triangle_area, faces_query=False)


def triangles_to_points(
    tris: torch.Tensor, points: torch.Tensor, min_triangle_area: float = 0.0,
    backend: str = "auto",
) -> torch.Tensor:
    """For each triangle (F, 3, 3), the squared distance to the nearest point of ``points``."""
    if _use_brute_force(points, backend):
        step = max(1, _CHUNK_ELEMS // max(1, len(points)))
        out = [point_triangle_sqdist(points[None], tris[s:s + step, None],
                                     min_triangle_area).amin(1)
               for s in range(0, len(tris), step)]
        return torch.cat(out)
    return _pruned_nearest(points, tris, min_triangle_area, faces_query=True)
