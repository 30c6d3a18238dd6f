"""Triangle meshes of implicit surfaces by marching tetrahedra (no lookup tables needed)."""

from __future__ import annotations

import numpy as np

# a cube split into six tetrahedra sharing its main diagonal; corner c = i + 2 j + 4 k
_CUBE_TETS = np.array([[0, 1, 3, 7], [0, 3, 2, 7], [0, 2, 6, 7],
                       [0, 6, 4, 7], [0, 4, 5, 7], [0, 5, 1, 7]])


def marching_tetrahedra(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and faces (F, 3) of ``{x : f(x) = level}`` sampled on a regular grid.

    ``values`` has shape (nx, ny, nz) over the box ``[lo, hi]``. Vertices on shared edges are
    merged, so the mesh is watertight where the surface does not touch the box. Face winding is
    not made consistent (pcdkit's metrics and samplers do not need it).
    """
    nx, ny, nz = values.shape
    ids = np.arange(values.size).reshape(nx, ny, nz)
    base = ids[:-1, :-1, :-1].reshape(-1)
    offs = np.array([0, ny * nz, nz, ny * nz + nz, 1, ny * nz + 1, nz + 1, ny * nz + nz + 1])
    # corner c = i + 2 j + 4 k in x, y, z; the flat id of (x, y, z) is x*ny*nz + y*nz + z
    corners = base[:, None] + offs[None, :]
    tets = corners[:, _CUBE_TETS].reshape(-1, 4)
    f = values.reshape(-1)
    inside = f[tets] < level
    n_in = inside.sum(1)
    keep = (n_in > 0) & (n_in < 4)
    tets, inside, n_in = tets[keep], inside[keep], n_in[keep]
    order = np.argsort(~inside, axis=1, kind="stable")
    t = np.take_along_axis(tets, order, axis=1)  # inside corners first

    edges, tri_edges = [], []

    def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        edges.append(np.stack([a, b], 1))
        return np.arange(len(a)) + sum(len(e) for e in edges[:-1])

    one = n_in == 1
    three = n_in == 3
    two = n_in == 2
    for mask, odd, rest in ((one, 0, (1, 2, 3)), (three, 3, (0, 1, 2))):
        tt = t[mask]
        e = [add(tt[:, odd], tt[:, r]) for r in rest]
        tri_edges.append(np.stack(e, 1))
    tt = t[two]
    ac, ad, bd, bc = (add(tt[:, 0], tt[:, 2]), add(tt[:, 0], tt[:, 3]),
                      add(tt[:, 1], tt[:, 3]), add(tt[:, 1], tt[:, 2]))
    tri_edges += [np.stack([ac, ad, bd], 1), np.stack([ac, bd, bc], 1)]

    all_edges = np.sort(np.concatenate(edges), axis=1)
    uniq, inverse = np.unique(all_edges, axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[np.concatenate(tri_edges)]
    grid = np.stack(np.meshgrid(*[np.linspace(lo[i], hi[i], values.shape[i]) for i in range(3)],
                                indexing="ij"), -1).reshape(-1, 3)
    fa, fb = f[uniq[:, 0]], f[uniq[:, 1]]
    w = ((level - fa) / (fb - fa))[:, None]
    verts = grid[uniq[:, 0]] + w * (grid[uniq[:, 1]] - grid[uniq[:, 0]])
    return verts, faces
