"""Seeded generator of many distinct training shapes (pcdkit trains only on shapes it makes).

Shape ``i`` of a dataset with seed ``s`` is drawn from ``numpy.random.default_rng([s, i])``, so
a shape never depends on how many others are asked for, and two seeds give disjoint shape sets
(train on seed 0, validate on seed 1). Families, cycled by index:

- ``superquadric``: superellipsoids with random exponents (boxy to pinched) and axes, tapered,
  twisted and/or bent;
- ``supertoroid``: supertoroids with random exponents and radii (thin rings included), deformed
  like the superquadrics;
- ``blobby``: smooth implicit surfaces, sums of 3-8 Gaussian bumps;
- ``csg``: unions and differences of boxes, cylinders and spheres, so sharp creases and thin
  plates (signed distances combined with min / max);
- ``displaced``: a blob or ellipsoid with surface detail, a random sum of sines added to its
  implicit function;
- ``thin``: open shells, plates on legs and frames of rods, walls 0.03-0.1 thick (on average
  16 % of a stand-in test mesh's area lies within 0.05 of another sheet, up to 70 %; 5 % of the
  other families', 21 % of this one's: ``pcdkit.geometry.near_sheet_share``).

Implicit families are meshed by marching tetrahedra on a ``grid``^3 lattice; every mesh is
centred and scaled into the unit sphere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pcdkit.core.atomic import atomic_torch_save
from pcdkit.datasets.base import ShapeDataset, sample_surface, select
from pcdkit.datasets.procedural import _uv_mesh, _weld
from pcdkit.geometry.isosurface import marching_tetrahedra
from pcdkit.structures import Mesh, Shape

#: bump when a family's geometry changes, so cached clouds of the old geometry are not reused
GENERATOR_VERSION = 1
BOX = 1.25  # the marching lattice spans [-BOX, BOX]^3; implicit shapes fit in radius ~1

Mesh3 = tuple[np.ndarray, np.ndarray]


def _signed_pow(x: np.ndarray, e: float) -> np.ndarray:
    x = np.where(np.abs(x) < 1e-12, 0.0, x)
    return np.sign(x) * np.abs(x) ** e


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _deform(v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random taper, twist and bend about the z axis (each with probability 1/2)."""
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    zn = z / max(np.abs(z).max(), 1e-9)
    if rng.random() < 0.5:  # taper
        t = 1 + rng.uniform(-0.6, 0.6) * zn
        x, y = x * t, y * t
    if rng.random() < 0.5:  # twist
        a = rng.uniform(-1.5, 1.5) * zn
        x, y = x * np.cos(a) - y * np.sin(a), x * np.sin(a) + y * np.cos(a)
    if rng.random() < 0.5:  # bend: z-axis onto a circular arc in the xz plane
        k = rng.uniform(0.3, 1.2)
        r = 1 / k
        a = z * k
        x, z = r - (r - x) * np.cos(a), (r - x) * np.sin(a)
    return np.stack([x, y, z], -1)


def superquadric(rng: np.random.Generator) -> Mesh3:
    """Deformed superellipsoid."""
    e1, e2 = rng.uniform(0.2, 2.2, size=2)
    a = rng.uniform(0.35, 1.0, size=3)

    def fn(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        cv = _signed_pow(np.cos(v), e1)
        return np.stack([a[0] * cv * _signed_pow(np.cos(u), e2),
                         a[1] * cv * _signed_pow(np.sin(u), e2),
                         a[2] * _signed_pow(np.sin(v), e1)], -1)

    verts, faces = _weld(*_uv_mesh(fn, 120, 61, wrap_v=False))
    return _deform(verts, rng), faces


def supertoroid(rng: np.random.Generator) -> Mesh3:
    """Deformed supertoroid (ring radius R, tube radius r, exponents e1, e2)."""
    e1, e2 = rng.uniform(0.25, 2.0, size=2)
    big = rng.uniform(0.6, 1.0)
    small = rng.uniform(0.06, 0.45) * big
    squash = rng.uniform(0.5, 1.0)

    def fn(u: np.ndarray, v: np.ndarray) -> np.ndarray:
        ring = big + small * _signed_pow(np.cos(v), e1)
        return np.stack([ring * _signed_pow(np.cos(u), e2), squash * ring *
                         _signed_pow(np.sin(u), e2), small * _signed_pow(np.sin(v), e1)], -1)

    verts, faces = _uv_mesh(fn, 160, 48, wrap_v=True)
    return _deform(verts, rng), faces


def _grid(n: int) -> np.ndarray:
    axis = np.linspace(-BOX, BOX, n)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1)


def _blob_field(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(3, 9))
    centres = rng.uniform(-0.5, 0.5, size=(k, 3))
    widths = rng.uniform(0.18, 0.4, size=k)
    f = np.zeros(p.shape[:-1])
    for c, w in zip(centres, widths, strict=True):
        f += np.exp(-((p - c) ** 2).sum(-1) / (2 * w * w))
    return 0.5 - f  # inside where the bumps sum above 1/2


def blobby(rng: np.random.Generator, grid: int) -> Mesh3:
    """Smooth implicit blob: a sum of Gaussian bumps, thresholded."""
    return marching_tetrahedra(_blob_field(_grid(grid), rng), *_box())


def _box() -> tuple[np.ndarray, np.ndarray]:
    return np.full(3, -BOX), np.full(3, BOX)


def _sdf_primitive(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signed distance of a random box, cylinder or sphere, randomly placed and rotated."""
    kind = int(rng.integers(3))
    q = (p - rng.uniform(-0.35, 0.35, size=3)) @ _random_rotation(rng)
    if kind == 0:  # box, sometimes a thin plate
        half = rng.uniform(0.1, 0.6, size=3)
        if rng.random() < 0.3:
            half[int(rng.integers(3))] = rng.uniform(0.03, 0.07)
        d = np.abs(q) - half
        return np.linalg.norm(np.maximum(d, 0), axis=-1) + np.minimum(d.max(-1), 0)
    if kind == 1:  # capped cylinder along z
        r, h = rng.uniform(0.08, 0.45), rng.uniform(0.15, 0.6)
        d = np.stack([np.linalg.norm(q[..., :2], axis=-1) - r, np.abs(q[..., 2]) - h], -1)
        return np.linalg.norm(np.maximum(d, 0), axis=-1) + np.minimum(d.max(-1), 0)
    return np.linalg.norm(q, axis=-1) - rng.uniform(0.2, 0.55)


def csg(rng: np.random.Generator, grid: int) -> Mesh3:
    """Union of 2-4 primitives, sometimes minus one more: sharp creases where they meet."""
    p = _grid(grid)
    f = _sdf_primitive(p, rng)
    for _ in range(int(rng.integers(1, 4))):
        f = np.minimum(f, _sdf_primitive(p, rng))
    if rng.random() < 0.4:
        f = np.maximum(f, -_sdf_primitive(p, rng))
    return marching_tetrahedra(f, *_box())


def displaced(rng: np.random.Generator, grid: int) -> Mesh3:
    """Blob or ellipsoid with a random sum of sines as surface detail."""
    p = _grid(grid)
    if rng.random() < 0.5:
        f = _blob_field(p, rng)
    else:
        axes = rng.uniform(0.45, 0.9, size=3)
        f = np.linalg.norm(p / axes, axis=-1) - 1
    for _ in range(int(rng.integers(2, 6))):
        k = rng.normal(size=3)
        k *= rng.uniform(6, 18) / np.linalg.norm(k)
        f = f + rng.uniform(0.01, 0.05) * np.sin(p @ k + rng.uniform(0, 2 * np.pi))
    return marching_tetrahedra(f, *_box())


#: the thin family's lattice: walls down to 0.03 need a spacing below the default's 0.035
THIN_GRID = 128


def _capsule(p: np.ndarray, a: np.ndarray, b: np.ndarray, r: float) -> np.ndarray:
    """Signed distance of the rod of radius ``r`` around segment ab."""
    a, b = a.astype(p.dtype), b.astype(p.dtype)
    ab = b - a
    t = np.clip((p - a) @ ab / (ab @ ab), 0, 1)
    return np.linalg.norm(p - a - t[..., None] * ab, axis=-1) - r


def _thin_part(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Signed distance of one thin part: an open shell, a plate on legs, or a frame of rods."""
    kind = int(rng.choice(3, p=[0.4, 0.35, 0.25]))
    q = p @ _random_rotation(rng).astype(p.dtype)
    if kind == 0:  # shell of an ellipsoid, cut open by a plane (bowls, castings, covers)
        axes = rng.uniform(0.45, 0.9, size=3)
        shell = np.abs(np.linalg.norm(q / axes, axis=-1) - 1) * axes.min()
        cut = q @ _random_rotation(rng)[0] - rng.uniform(-0.4, 0.5) * axes.min()
        return np.maximum(shell - rng.uniform(0.015, 0.04), cut)
    if kind == 1:  # plate on three or four legs (tables, chairs), sometimes with a back
        half = np.array([rng.uniform(0.35, 0.7), rng.uniform(0.35, 0.7), rng.uniform(0.015, 0.04)])
        top = rng.uniform(0.0, 0.4)
        d = np.abs(q - np.array([0.0, 0.0, top])) - half
        f = np.linalg.norm(np.maximum(d, 0), axis=-1) + np.minimum(d.max(-1), 0)
        r, foot = rng.uniform(0.015, 0.05), top - rng.uniform(0.5, 1.0)
        corners = [(1, 1), (-1, 1), (-1, -1), (1, -1)][: int(rng.integers(3, 5))]
        for sx, sy in corners:
            at = np.array([sx * half[0] * 0.85, sy * half[1] * 0.85, top])
            f = np.minimum(f, _capsule(q, at, at + np.array([0, 0, foot - top]), r))
        if rng.random() < 0.5:
            back = np.abs(q - np.array([half[0], 0.0, top + 0.35])) - np.array(
                [half[2], half[1], 0.35])
            f = np.minimum(f, np.linalg.norm(np.maximum(back, 0), axis=-1)
                           + np.minimum(back.max(-1), 0))
        return f
    ends = rng.uniform(-0.8, 0.8, size=(int(rng.integers(3, 7)), 3))  # a frame of joined rods
    f = np.full(p.shape[:-1], np.inf)
    for a, b in zip(ends[:-1], ends[1:], strict=True):
        f = np.minimum(f, _capsule(q, a, b, rng.uniform(0.015, 0.05)))
    return f


def thin(rng: np.random.Generator, grid: int) -> Mesh3:
    """One or two thin parts joined: walls and rods 0.03-0.1 thick, as in furniture, castings
    and limbs, on a lattice of at least ``THIN_GRID``."""
    p = _grid(max(grid, THIN_GRID)).astype(np.float32)
    f = _thin_part(p, rng)
    if rng.random() < 0.4:
        f = np.minimum(f, _thin_part(p, rng))
    return marching_tetrahedra(f, *_box())


FAMILIES: dict[str, Callable[..., Mesh3]] = {
    "superquadric": superquadric, "supertoroid": supertoroid, "blobby": blobby, "csg": csg,
    "displaced": displaced, "thin": thin,
}
_IMPLICIT = {"blobby", "csg", "displaced", "thin"}


def generate_mesh(family: str, seed: int, index: int, grid: int = 72) -> Mesh:
    """Shape ``index`` of ``family`` for ``seed``: centred, inside the unit sphere (float32)."""
    for attempt in range(20):  # a draw whose surface is empty or tiny is redrawn, seeded
        rng = np.random.default_rng([seed, index, attempt])
        fn = FAMILIES[family]
        verts, faces = fn(rng, grid) if family in _IMPLICIT else fn(rng)
        if len(faces) >= 100:
            break
    else:
        raise RuntimeError(f"generated-shapes: no surface for {family} {seed}/{index}")
    verts = verts - (verts.max(0) + verts.min(0)) / 2
    verts = verts / np.linalg.norm(verts, axis=1).max()
    return Mesh(torch.from_numpy(np.ascontiguousarray(verts, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(faces, dtype=np.int64)))


def generated_shapes(
    count: int = 100, seed: int = 0, resolution: int = 10000, sampler: str = "poisson",
    families: list[str] | None = None, grid: int = 72, cache_dir: Path | None = None,
    cache: bool = True,
) -> ShapeDataset:
    """``count`` generated shapes (families cycled by index), clouds of ``resolution`` points,
    cached on disk by generator version and settings."""
    chosen = select(list(FAMILIES), families, "dataset.families")
    names = [f"{chosen[i % len(chosen)]}-{seed}-{i}" for i in range(count)]

    def load(name: str) -> Shape:
        family, _, index = name.rsplit("-", 2)
        if not cache:
            mesh = generate_mesh(family, seed, int(index), grid)
            return Shape(name, sample_surface(mesh, resolution, sampler, int(index)), mesh)
        from pcdkit.datasets.folders import default_cache_dir

        key = json.dumps([GENERATOR_VERSION, name, grid, resolution, sampler])
        folder = Path(cache_dir) if cache_dir else default_cache_dir() / "generated-shapes"
        path = folder / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt"
        entry = _read_cache(path)
        if entry is not None and "faces" in entry:  # meshing costs more than loading
            return Shape(name, entry["points"], Mesh(entry["vertices"], entry["faces"]))
        mesh = _cached_mesh(folder, name, grid)
        points = (entry["points"] if entry is not None else
                  sample_surface(mesh, resolution, sampler, int(index)))
        atomic_torch_save({"points": points.contiguous(), "vertices": mesh.vertices,
                           "faces": mesh.faces}, path)
        return Shape(name, points, mesh)

    return ShapeDataset(names, load)



def _cached_mesh(folder: Path, name: str, grid: int) -> Mesh:
    """Shape ``name``'s mesh, meshed once for all resolutions (the thin family's finer lattice
    takes seconds per shape)."""
    key = json.dumps([GENERATOR_VERSION, name, grid])
    path = folder / f"mesh-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pt"
    entry = _read_cache(path)
    if entry is not None and "faces" in entry:
        return Mesh(entry["vertices"], entry["faces"])
    family, seed, index = name.rsplit("-", 2)
    mesh = generate_mesh(family, int(seed), int(index), grid)
    atomic_torch_save({"vertices": mesh.vertices, "faces": mesh.faces}, path)
    return mesh


def _read_cache(path: Path) -> dict[str, torch.Tensor] | None:
    """A cache entry as a dict (entries of the first format held the points alone)."""
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt
        return None
    return {"points": obj} if isinstance(obj, torch.Tensor) else obj
