"""Whitespace-separated point files (.xyz, .txt) and OFF meshes."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from pcdkit.errors import DataError
from pcdkit.io.checks import check_count, triangulate


def _data_lines(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _numbers(path: Path, rows: list[str], first_line: int, what: str) -> np.ndarray:
    """Parse rows of equally many numbers into a (len(rows), ncols) float64 array."""
    ncols = len(rows[0].split())
    tokens = " ".join(rows).split()
    if len(tokens) != ncols * len(rows):
        for i, row in enumerate(rows):
            if len(row.split()) != ncols:
                raise DataError(path, f"{what} {first_line + i}: {len(row.split())} columns, "
                                      f"expected {ncols} like the first row")
    try:
        return np.array(tokens, dtype=np.float64).reshape(len(rows), ncols)
    except ValueError:
        for i, row in enumerate(rows):
            for tok in row.split():
                try:
                    float(tok)
                except ValueError:
                    raise DataError(path, f"{what} {first_line + i}: {tok!r} is not a "
                                          "number") from None
        raise


def read_xyz(path: Path) -> np.ndarray:
    """Rows of ``x y z [extra columns...]``; '#' starts a comment."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(path, "not a text point file (binary content)") from None
    rows = _data_lines(text)
    if not rows:
        raise DataError(path, "no points in file (empty)")
    return _numbers(path, rows, 1, "data row")


def write_xyz(fh: BinaryIO, points: np.ndarray) -> None:
    """One ``x y z`` row per point, to a binary file handle."""
    np.savetxt(fh, np.asarray(points), fmt="%.8f")


def read_off(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and triangulated faces (F, 3) of an OFF file."""
    try:
        rows = _data_lines(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(path, "not a text OFF file") from None
    if not rows or not rows[0].startswith("OFF"):
        raise DataError(path, "not an OFF file (missing 'OFF' header)")
    head = rows[0][3:].split()
    rest = rows[1:]
    if not head:
        if not rest:
            raise DataError(path, "missing vertex/face counts after 'OFF'")
        head, rest = rest[0].split(), rest[1:]
    try:
        n_v, n_f = int(head[0]), int(head[1])
    except (ValueError, IndexError):
        raise DataError(path, f"bad OFF counts line {' '.join(head)[:80]!r}") from None
    check_count(path, "vertices", n_v)  # too large is reported as truncated below
    check_count(path, "faces", n_f)
    if n_v == 0:
        raise DataError(path, "mesh has no vertices (empty)")
    if len(rest) < n_v + n_f:
        raise DataError(path, f"truncated: header declares {n_v} vertices and {n_f} faces, "
                              f"found {len(rest)} data rows")
    verts = _numbers(path, rest[:n_v], 1, "vertex row")[:, :3]
    face_rows = rest[n_v:n_v + n_f]
    if not face_rows:
        return verts, np.zeros((0, 3), dtype=np.int64)
    try:
        table = _numbers(path, face_rows, 1, "face row").astype(np.int64)
        if (table[:, 0] == 3).all():
            return verts, table[:, 1:4]
    except DataError:
        pass  # polygons of mixed sizes: parse row by row
    try:
        polys = [[int(t) for t in r.split()[1:1 + int(r.split()[0])]] for r in face_rows]
    except ValueError as exc:
        raise DataError(path, f"malformed face row ({exc})") from None
    return verts, triangulate(path, polys)


def write_off(fh: BinaryIO, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Write a triangle mesh as OFF to a binary file handle."""
    fh.write(f"OFF\n{len(vertices)} {len(faces)} 0\n".encode("ascii"))
    np.savetxt(fh, np.asarray(vertices)[:, :3], fmt="%.8f")
    f = np.asarray(faces, dtype=np.int64)
    np.savetxt(fh, np.concatenate([np.full((len(f), 1), 3), f], axis=1), fmt="%d")
