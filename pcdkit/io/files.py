"""Format dispatch by file suffix, with uniform checks and no silent overwrites."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from pcdkit.errors import DataError, PcdkitError
from pcdkit.io.checks import check_faces, check_points
from pcdkit.io.ply import read_ply, write_ply
from pcdkit.io.text import read_off, read_xyz, write_off, write_xyz
from pcdkit.structures import Mesh

POINT_SUFFIXES = (".xyz", ".txt", ".pts", ".ply", ".off", ".npy", ".npz")
MESH_SUFFIXES = (".off", ".ply", ".npz")
_NPZ_POINT_KEYS = ("points", "pos", "xyz", "vertices")


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    if not path.is_file():
        raise DataError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise DataError(path, "file is empty")
    return path


def _load_np(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    try:
        obj = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(path, f"cannot read NumPy file ({exc})") from None
    if isinstance(obj, np.lib.npyio.NpzFile):
        with obj:
            return {k: obj[k] for k in obj.files}
    return obj


def _raw_points(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in (".xyz", ".txt", ".pts"):
        return read_xyz(path)
    if suffix == ".ply":
        return read_ply(path)[0]
    if suffix == ".off":
        return read_off(path)[0]
    if suffix in (".npy", ".npz"):
        obj = _load_np(path)
        if isinstance(obj, dict):
            key = next((k for k in _NPZ_POINT_KEYS if k in obj), None)
            if key is None and len(obj) == 1:
                key = next(iter(obj))
            if key is None:
                raise DataError(path, f"no point array in .npz (looked for "
                                      f"{', '.join(_NPZ_POINT_KEYS)}; found {', '.join(obj)})")
            obj = obj[key]
        if obj.dtype.kind not in "fiu":
            raise DataError(path, f"expected a numeric array, got dtype {obj.dtype}")
        return obj
    raise DataError(path, f"unknown point-cloud format {suffix!r}; supported: "
                          f"{', '.join(POINT_SUFFIXES)}")


def read_points(path: str | Path, with_extra: bool = False) -> torch.Tensor:
    """Read a point cloud as a float32 (N, 3) tensor (``with_extra`` keeps extra columns)."""
    path = _existing(path)
    arr = check_points(path, np.asarray(_raw_points(path)))
    return torch.from_numpy(arr if with_extra else np.ascontiguousarray(arr[:, :3]))


def read_mesh(path: str | Path) -> Mesh:
    """Read a triangle mesh (polygons are fan-triangulated)."""
    path = _existing(path)
    suffix = path.suffix.lower()
    if suffix == ".off":
        verts, faces = read_off(path)
    elif suffix == ".ply":
        verts, faces = read_ply(path)
    elif suffix == ".npz":
        obj = _load_np(path)
        if not isinstance(obj, dict) or "vertices" not in obj or "faces" not in obj:
            raise DataError(path, "a mesh .npz needs 'vertices' and 'faces' arrays")
        verts, faces = obj["vertices"], obj["faces"]
    else:
        raise DataError(path, f"unknown mesh format {suffix!r}; supported: "
                              f"{', '.join(MESH_SUFFIXES)}")
    if faces is None or len(faces) == 0:
        raise DataError(path, "mesh has no faces")
    verts = check_points(path, np.asarray(verts), "vertices")[:, :3]
    faces = check_faces(path, faces, len(verts))
    return Mesh(torch.from_numpy(np.ascontiguousarray(verts)), torch.from_numpy(faces))


def ensure_writable(path: str | Path, overwrite: bool) -> Path:
    """``path`` with its folder created; an error if it exists and ``overwrite`` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise PcdkitError(f"{path}: file exists; pass overwrite=True (CLI: --overwrite) to "
                          "replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def write_points(
    path: str | Path, points: torch.Tensor | np.ndarray, overwrite: bool = False
) -> Path:
    """Write an (N, 3) cloud; the format follows the suffix; never overwrites unless asked."""
    path = ensure_writable(path, overwrite)
    arr = _np(points)
    pts = arr.reshape(-1, arr.shape[-1])
    suffix = path.suffix.lower()
    if suffix in (".xyz", ".txt", ".pts"):
        write_xyz(path, pts)
    elif suffix == ".ply":
        write_ply(path, pts)
    elif suffix == ".npy":
        np.save(path, pts.astype(np.float32))
    elif suffix == ".npz":
        np.savez(path, points=pts.astype(np.float32))
    else:
        raise PcdkitError(f"{path}: cannot write point clouds as {suffix!r}; use .xyz, .txt, "
                          ".ply, .npy or .npz")
    return path


def write_mesh(path: str | Path, mesh: Mesh, overwrite: bool = False) -> Path:
    """Write a triangle mesh as .off, .ply or .npz; never overwrites unless asked."""
    path = ensure_writable(path, overwrite)
    v, f = _np(mesh.vertices), _np(mesh.faces)
    suffix = path.suffix.lower()
    if suffix == ".off":
        write_off(path, v, f)
    elif suffix == ".ply":
        write_ply(path, v, f)
    elif suffix == ".npz":
        np.savez(path, vertices=v.astype(np.float32), faces=f.astype(np.int64))
    else:
        raise PcdkitError(f"{path}: cannot write meshes as {suffix!r}; use .off, .ply or .npz")
    return path
