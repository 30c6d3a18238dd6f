"""LAS / LAZ point clouds (airborne and terrestrial scans) through laspy (``pcdkit[las]``).

Coordinates are stored as scaled 32-bit integers; pcdkit writes them with offsets at the
cloud's minimum and a scale that spans its extent in 2^30 steps (at least 1e-9), so a written
cloud reads back within that step.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from pcdkit.errors import DataError


def _laspy(path: Path | str):  # noqa: ANN202 - the module
    try:
        import laspy
    except ImportError:
        raise DataError(path, "LAS/LAZ files need laspy: pip install 'pcdkit[las]'") from None
    return laspy


def read_las(path: Path) -> np.ndarray:
    """x y z (N, 3, float64) of a .las or .laz file."""
    laspy = _laspy(path)
    try:
        with laspy.open(path) as reader:
            las = reader.read()
    except Exception as exc:  # noqa: BLE001 - laspy and its LAZ backends raise many types
        raise DataError(path, f"cannot read LAS/LAZ file ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    return np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)


def write_las(fh: BinaryIO, points: np.ndarray, compress: bool) -> None:
    """Write x y z as LAS 1.2 (point format 0), LAZ-compressed when ``compress``."""
    laspy = _laspy("LAS output")
    pts = np.asarray(points, dtype=np.float64)[:, :3]
    header = laspy.LasHeader(point_format=0, version="1.2")
    low = pts.min(axis=0)
    span = float((pts.max(axis=0) - low).max())
    header.offsets = low
    header.scales = np.full(3, max(span / 2**30, 1e-9))
    las = laspy.LasData(header)
    las.x, las.y, las.z = pts[:, 0], pts[:, 1], pts[:, 2]
    las.write(fh, do_compress=compress)
