"""Format dispatch by file suffix, with uniform checks and no silent overwrites."""

from __future__ import annotations

import math
import warnings
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from pcdkit.core.atomic import atomic_write
from pcdkit.errors import DataError, PcdkitError
from pcdkit.io.checks import check_faces, check_points
from pcdkit.io.las import read_las, write_las
from pcdkit.io.pcd import read_pcd, write_pcd
from pcdkit.io.ply import read_ply, write_ply
from pcdkit.io.text import read_off, read_xyz, write_off, write_xyz
from pcdkit.structures import Mesh

POINT_SUFFIXES = (".xyz", ".txt", ".pts", ".ply", ".off", ".npy", ".npz", ".pcd", ".las",
                  ".laz")
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


def _npy_header(path: Path, fh: BinaryIO, available: int, member: str = "") -> None:
    """Refuse an .npy stream whose header declares an object dtype or more data than the
    ``available`` bytes hold, before anything is allocated."""
    where = f" member {member!r}" if member else ""
    try:
        version = np.lib.format.read_magic(fh)
        readers = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"format version {version} is not supported")
        shape, _, dtype = readers[version](fh)
    except Exception as exc:  # noqa: BLE001 - NumPy parses the header with Python's tokenizer,
        # which raises ValueError, SyntaxError, TokenError, ... on damaged headers
        raise DataError(path, f"cannot read NumPy{where} header ({type(exc).__name__})") from None
    if dtype.hasobject:
        raise DataError(path, f"NumPy{where} holds Python objects (dtype {dtype}); pcdkit reads "
                              "numeric arrays only, never pickles")
    need = math.prod(shape) * dtype.itemsize
    if need > available:
        raise DataError(path, f"NumPy{where} header declares shape {shape} ({need:,} bytes), but "
                              f"the file holds {available:,}")


def _load_np(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as fh:
                _npy_header(path, fh, path.stat().st_size)
            return np.load(path, allow_pickle=False)
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    raise DataError(path, f".npz member {info.filename!r} is not a .npy array")
                with zf.open(info) as fh:
                    _npy_header(path, fh, info.file_size, info.filename)
        with np.load(path, allow_pickle=False) as obj:
            return {k: obj[k] for k in obj.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, NotImplementedError) as exc:
        raise DataError(path, f"cannot read NumPy file ({exc})") from None


def _raw_points(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in (".xyz", ".txt", ".pts"):
        return read_xyz(path)
    if suffix == ".pcd":
        return read_pcd(path)
    if suffix in (".las", ".laz"):
        return read_las(path)
    if suffix in (".ply", ".off"):
        verts, faces = (read_ply if suffix == ".ply" else read_off)(path)
        if faces is not None and len(faces):
            warnings.warn(f"{path}: a mesh; its {len(faces):,} faces are ignored and its "
                          f"{len(verts):,} vertices read as the cloud (sample the surface "
                          "for a uniform cloud)", stacklevel=3)
        return verts
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


WRITE_SUFFIXES = (".xyz", ".txt", ".pts", ".ply", ".npy", ".npz", ".pcd", ".las", ".laz")


def ensure_writable(path: str | Path, overwrite: bool, point_suffix: bool = False) -> Path:
    """``path`` with its folder created; an error if it exists and ``overwrite`` is False, or
    (``point_suffix``) if its suffix is not a point-cloud format pcdkit writes."""
    path = Path(path)
    if point_suffix and path.suffix.lower() not in WRITE_SUFFIXES:
        raise PcdkitError(f"{path}: cannot write point clouds as {path.suffix!r}; use "
                          f"{', '.join(WRITE_SUFFIXES)}")
    if path.is_dir():
        raise PcdkitError(f"{path}: is a directory; give a file name")
    if path.exists() and not overwrite:
        raise PcdkitError(f"{path}: file exists; use --overwrite (Python: overwrite=True) to "
                          "replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PcdkitError(f"{path.parent}: cannot create the output folder "
                          f"({exc.strerror or exc})") from None
    return path


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def write_points(
    path: str | Path, points: torch.Tensor | np.ndarray, overwrite: bool = False
) -> Path:
    """Write an (N, 3) cloud; the format follows the suffix; never overwrites unless asked."""
    path = ensure_writable(path, overwrite, point_suffix=True)
    arr = _np(points)
    pts = arr.reshape(-1, arr.shape[-1])
    suffix = path.suffix.lower()
    if suffix in (".xyz", ".txt", ".pts"):
        return atomic_write(path, lambda fh: write_xyz(fh, pts))
    if suffix == ".ply":
        return atomic_write(path, lambda fh: write_ply(fh, pts))
    if suffix == ".npy":
        return atomic_write(path, lambda fh: np.save(fh, pts.astype(np.float32)))
    if suffix == ".pcd":
        return atomic_write(path, lambda fh: write_pcd(fh, pts))
    if suffix in (".las", ".laz"):
        return atomic_write(path, lambda fh: write_las(fh, pts, compress=suffix == ".laz"))
    return atomic_write(path, lambda fh: np.savez(fh, points=pts.astype(np.float32)))


def write_mesh(path: str | Path, mesh: Mesh, overwrite: bool = False) -> Path:
    """Write a triangle mesh as .off, .ply or .npz; never overwrites unless asked."""
    path = ensure_writable(path, overwrite)
    v, f = _np(mesh.vertices), _np(mesh.faces)
    suffix = path.suffix.lower()
    if suffix == ".off":
        return atomic_write(path, lambda fh: write_off(fh, v, f))
    if suffix == ".ply":
        return atomic_write(path, lambda fh: write_ply(fh, v, f))
    if suffix == ".npz":
        return atomic_write(path, lambda fh: np.savez(fh, vertices=v.astype(np.float32),
                                                      faces=f.astype(np.int64)))
    raise PcdkitError(f"{path}: cannot write meshes as {suffix!r}; use .off, .ply or .npz")
