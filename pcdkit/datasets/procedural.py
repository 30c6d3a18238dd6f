"""Procedurally generated test shapes: an embedded dataset that needs no files."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from pcdkit.datasets.base import ShapeDataset, sample_surface, select
from pcdkit.geometry.isosurface import marching_tetrahedra
from pcdkit.structures import Mesh, Shape

PHI = (1 + 5 ** 0.5) / 2


def _hull(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import ConvexHull

    return vertices, ConvexHull(vertices).simplices


def _cyclic(*triples: tuple[float, float, float]) -> np.ndarray:
    out = []
    for a, b, c in triples:
        for sa in (-1, 1) if a else (1,):
            for sb in (-1, 1) if b else (1,):
                for sc in (-1, 1) if c else (1,):
                    p = (sa * a, sb * b, sc * c)
                    out += [p, (p[1], p[2], p[0]), (p[2], p[0], p[1])]
    return np.unique(np.array(out, dtype=np.float64), axis=0)


def tetrahedron() -> tuple[np.ndarray, np.ndarray]:
    """Regular tetrahedron."""
    return _hull(np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=np.float64))


def cube() -> tuple[np.ndarray, np.ndarray]:
    """Cube."""
    return _hull(np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
                          dtype=np.float64))


def octahedron() -> tuple[np.ndarray, np.ndarray]:
    """Regular octahedron."""
    return _hull(np.concatenate([np.eye(3), -np.eye(3)]))


def icosahedron() -> tuple[np.ndarray, np.ndarray]:
    """Regular icosahedron."""
    return _hull(_cyclic((0, 1, PHI)))


def dodecahedron() -> tuple[np.ndarray, np.ndarray]:
    """Regular dodecahedron."""
    return _hull(np.concatenate([_cyclic((1, 1, 1)), _cyclic((0, 1 / PHI, PHI))]))


def _uv_mesh(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], nu: int, nv: int,
             wrap_v: bool) -> tuple[np.ndarray, np.ndarray]:
    u = np.linspace(0, 2 * np.pi, nu, endpoint=False)
    v = np.linspace(0, 2 * np.pi, nv, endpoint=False) if wrap_v else np.linspace(-np.pi / 2,
                                                                                np.pi / 2, nv)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    verts = fn(uu, vv).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(nu), np.arange(nv if wrap_v else nv - 1), indexing="ij")
    a = i * nv + j
    b = ((i + 1) % nu) * nv + j
    c = ((i + 1) % nu) * nv + (j + 1) % nv
    d = i * nv + (j + 1) % nv
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3),
                            np.stack([a, c, d], -1).reshape(-1, 3)])
    return verts, faces


def torus(major: float = 1.0, minor: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Ring torus."""
    def fn(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        r = major + minor * np.cos(v)
        return np.stack([r * np.cos(u), r * np.sin(u), minor * np.sin(v)], -1)

    return _uv_mesh(fn, 96, 40, wrap_v=True)


def superquadric(e1: float, e2: float, scale: tuple[float, float, float] = (1.0, 1.0, 1.0)
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Superellipsoid with exponents ``e1`` (latitude) and ``e2`` (longitude)."""
    def sp(x: np.ndarray, e: float) -> np.ndarray:
        x = np.where(np.abs(x) < 1e-12, 0.0, x)  # cos(pi/2) is 6e-17, not 0: keep poles exact
        return np.sign(x) * np.abs(x) ** e

    def fn(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.stack([scale[0] * sp(np.cos(v), e1) * sp(np.cos(u), e2),
                         scale[1] * sp(np.cos(v), e1) * sp(np.sin(u), e2),
                         scale[2] * sp(np.sin(v), e1)], -1)

    return _weld(*_uv_mesh(fn, 80, 41, wrap_v=False))


def _weld(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices (the poles of a UV grid) and drop the faces that collapse."""
    uniq, inverse = np.unique(np.round(verts, 9), axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[faces]
    ok = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])
    return uniq, faces[ok]


def genus2(resolution: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Genus-2 surface: a tube around the figure-eight x^2 (1 - x^2) = y^2."""
    lo, hi = np.array([-1.25, -0.75, -0.35]), np.array([1.25, 0.75, 0.35])
    axes = [np.linspace(lo[i], hi[i], n) for i, n in
            enumerate((resolution, int(resolution * 0.6), int(resolution * 0.3)))]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    f = (x ** 2 * (1 - x ** 2) - y ** 2) ** 2 + z ** 2 - 0.01
    return marching_tetrahedra(f, lo, hi)


SHAPES: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "tetrahedron": tetrahedron,
    "cube": cube,
    "octahedron": octahedron,
    "icosahedron": icosahedron,
    "dodecahedron": dodecahedron,
    "torus": torus,
    "superquadric-star": lambda: superquadric(2.5, 2.5),
    "superquadric-box": lambda: superquadric(0.3, 0.3, (1.0, 0.8, 0.6)),
    "superquadric-pillow": lambda: superquadric(0.6, 1.6, (1.0, 1.0, 0.5)),
    "genus2": genus2,
}


def make_mesh(name: str) -> Mesh:
    """The named procedural mesh (float32), centred as generated."""
    verts, faces = SHAPES[name]()
    return Mesh(torch.from_numpy(np.ascontiguousarray(verts, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(faces, dtype=np.int64)))


def procedural(
    shapes: list[str] | None = None, resolution: int = 10000, sampler: str = "poisson",
    seed: int = 0,
) -> ShapeDataset:
    """The embedded dataset: procedural meshes with clouds sampled at ``resolution``."""
    names = select(list(SHAPES), shapes, "dataset.shapes")

    def load(name: str) -> Shape:
        mesh = make_mesh(name)
        return Shape(name, sample_surface(mesh, resolution, sampler, seed), mesh)

    return ShapeDataset(names, load)
