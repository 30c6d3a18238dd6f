"""Shared sanity checks for loaded arrays: shape, emptiness, finiteness, face indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pcdkit.errors import DataError


def check_points(path: Path, arr: np.ndarray, what: str = "points") -> np.ndarray:
    """Require a finite (N, >=3) float array with N > 0; return it as float32 (N, C)."""
    if arr.ndim == 1 and arr.size >= 3:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] < 3:
        raise DataError(path, f"expected {what} with at least 3 columns (x y z), "
                              f"got an array of shape {arr.shape}")
    if arr.shape[0] == 0:
        raise DataError(path, f"no {what} in file (empty)")
    bad = ~np.isfinite(arr[:, :3]).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(path, f"{int(bad.sum())} of {arr.shape[0]} {what} hold NaN or infinite "
                              f"coordinates (first at row {first})")
    return np.ascontiguousarray(arr, dtype=np.float32)


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
