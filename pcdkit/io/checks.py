"""Shared sanity checks for loaded arrays: shape, emptiness, finiteness, face indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcdkit.errors import DataError

#: largest coordinate accepted: squared distances of larger ones overflow float32 (3.4e38)
MAX_COORDINATE = 1e15
#: most columns a point array may have (x y z and per-point attributes); more means the
#: array is probably transposed, (3, N) instead of (N, 3)
MAX_COLUMNS = 64


def check_points(path: Path, arr: np.ndarray, what: str = "points") -> np.ndarray:
    """Require a finite (N, 3..64) float array with N > 0 whose coordinates float32 can square;
    return it as float32 (N, C)."""
    if arr.ndim != 2 or not 3 <= arr.shape[1] <= MAX_COLUMNS:
        hint = (" (transposed? expected one row per point)"
                if arr.ndim == 2 and arr.shape[0] in (3, 4, 6) and arr.shape[1] > MAX_COLUMNS
                else "")
        raise DataError(path, f"expected {what} as an (N, 3) array: one row per point, at "
                              f"least 3 columns (x y z) and at most {MAX_COLUMNS}, got shape "
                              f"{arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise DataError(path, f"no {what} in file (empty)")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
        bad = ~np.isfinite(out[:, :3]).all(axis=1)  # after the cast: 1e39 becomes inf here
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(path, f"{int(bad.sum())} of {arr.shape[0]} {what} hold NaN or infinite "
                              f"coordinates in float32 (first at row {first})")
    big = float(np.abs(out[:, :3]).max())
    if big > MAX_COORDINATE:
        raise DataError(path, f"coordinates up to {big:.3g} exceed {MAX_COORDINATE:.0e}: "
                              "distances would overflow float32; rescale the cloud")
    return out


def check_count(path: Path, what: str, count: int, most: int | None = None) -> int:
    """A header's element count: non-negative and no larger than the file can hold."""
    if count < 0:
        raise DataError(path, f"header declares {count} {what}; a count cannot be negative")
    if most is not None and count > most:
        raise DataError(path, f"header declares {count:,} {what}, but the file can hold at most "
                              f"{most:,}")
    return count


def check_faces(path: Path, faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Require (F, 3) integer faces indexing existing vertices."""
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise DataError(path, f"expected triangle faces (F, 3), got shape {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= n_vertices):
        raise DataError(path, f"face indices must lie in [0, {n_vertices - 1}], found "
                              f"[{faces.min()}, {faces.max()}]")
    return faces.astype(np.int64)


def triangulate(path: Path, polygons: list[list[int]]) -> np.ndarray:
    """Fan-triangulate polygons given as index lists (triangles pass through)."""
    tris = []
    for i, poly in enumerate(polygons):
        if len(poly) < 3:
            raise DataError(path, f"face {i} has {len(poly)} vertices; a face needs at least 3")
        tris += [(poly[0], poly[j], poly[j + 1]) for j in range(1, len(poly) - 1)]
    return np.asarray(tris, dtype=np.int64).reshape(-1, 3)
