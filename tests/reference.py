"""Independent, slow float64 reference implementations used only to check pcdkit."""

from __future__ import annotations

import numpy as np


def closest_point_on_triangle(p: np.ndarray, a: np.ndarray, b: np.ndarray,
                              c: np.ndarray) -> np.ndarray:
    """Ericson, Real-Time Collision Detection 5.1.5 (Voronoi regions), scalar float64."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = ab @ ap, ac @ ap
    if d1 <= 0 and d2 <= 0:
        return a
    bp = p - b
    d3, d4 = ab @ bp, ac @ bp
    if d3 >= 0 and d4 <= d3:
        return b
    vc = d1 * d4 - d3 * d2
    if vc <= 0 and d1 >= 0 and d3 <= 0:
        return a + d1 / (d1 - d3) * ab
    cp = p - c
    d5, d6 = ab @ cp, ac @ cp
    if d6 >= 0 and d5 <= d6:
        return c
    vb = d5 * d2 - d1 * d6
    if vb <= 0 and d2 >= 0 and d6 <= 0:
        return a + d2 / (d2 - d6) * ac
    va = d3 * d6 - d5 * d4
    if va <= 0 and (d4 - d3) >= 0 and (d5 - d6) >= 0:
        return b + (d4 - d3) / ((d4 - d3) + (d5 - d6)) * (c - b)
    denom = 1.0 / (va + vb + vc)
    return a + ab * vb * denom + ac * vc * denom


def _segment(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    t = 0.0 if d @ d == 0 else min(1.0, max(0.0, (p - a) @ d / (d @ d)))
    return a + t * d


def closest_point(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point of a possibly degenerate triangle (degenerate: the nearest edge point)."""
    # Relative test: a collinear triangle's cross product is rounding noise (~1e-16 x |ab||ac|),
    # not exactly zero, and the Voronoi-region formulas divide by it.
    ab, ac = b - a, c - a
    if np.linalg.norm(np.cross(ab, ac)) <= 1e-12 * np.linalg.norm(ab) * np.linalg.norm(ac):
        cands = [_segment(p, a, b), _segment(p, b, c), _segment(p, c, a)]
        return min(cands, key=lambda q: ((p - q) ** 2).sum())
    return closest_point_on_triangle(p, a, b, c)


def point_mesh_sqdist(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P, F) squared distances, brute force."""
    out = np.empty((len(points), len(faces)))
    for i, p in enumerate(points):
        for j, (x, y, z) in enumerate(faces):
            q = closest_point(p, verts[x], verts[y], verts[z])
            out[i, j] = ((p - q) ** 2).sum()
    return out


def pairwise_sqdist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N, M) squared Euclidean distances in float64."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)


def greedy_fps(points: np.ndarray, n: int, start: int = 0) -> list[int]:
    """Farthest-point sampling, one point at a time."""
    chosen = [start]
    dist = ((points - points[start]) ** 2).sum(1)
    for _ in range(n - 1):
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, ((points - points[nxt]) ** 2).sum(1))
    return chosen
