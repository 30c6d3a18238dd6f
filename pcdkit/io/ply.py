"""PLY (ASCII and binary) point clouds and triangle meshes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pcdkit.errors import DataError
from pcdkit.io.checks import check_count, triangulate

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
    "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}


@dataclass
class _Element:
    name: str
    count: int
    props: list[tuple[str, str]] = field(default_factory=list)  # scalar: (name, dtype)
    lists: list[tuple[str, str, str]] = field(default_factory=list)  # (name, count_t, item_t)


def _type(path: Path, name: str) -> str:
    if name not in _TYPES:
        raise DataError(path, f"unknown PLY property type {name!r}")
    return _TYPES[name]


def _header(path: Path, data: bytes) -> tuple[str, list[_Element], int]:
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise DataError(path, "not a PLY file (missing 'ply' magic or 'end_header')")
    body = data.find(b"\n", end) + 1
    lines = data[:end].decode("ascii", errors="replace").splitlines()
    fmt, elements = "", []
    for line in lines[1:]:
        tok = line.split()
        if not tok or tok[0] in ("comment", "obj_info"):
            continue
        if tok[0] == "format" and len(tok) >= 2:
            fmt = tok[1]
        elif tok[0] == "element" and len(tok) == 3:
            try:
                count = int(tok[2])
            except ValueError:
                raise DataError(path, f"bad PLY element line {line[:80]!r}") from None
            # every row takes at least one byte
            elements.append(_Element(tok[1], check_count(path, tok[1], count, len(data))))
        elif tok[0] == "property" and elements:
            if tok[1] == "list" and len(tok) == 5:
                elements[-1].lists.append((tok[4], _type(path, tok[2]), _type(path, tok[3])))
            elif len(tok) == 3:
                elements[-1].props.append((tok[2], _type(path, tok[1])))
            else:
                raise DataError(path, f"bad PLY property line {line[:80]!r}")
        else:
            raise DataError(path, f"unexpected PLY header line {line[:80]!r}")
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise DataError(path, f"unsupported PLY format {fmt!r}")
    return fmt, elements, body


def read_ply(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Vertices (V, C>=3: x, y, z first) and faces (F, 3) or None of a PLY file."""
    data = path.read_bytes()
    fmt, elements, offset = _header(path, data)
    names = [e.name for e in elements]
    if "vertex" not in names:
        raise DataError(path, "PLY file has no 'vertex' element")
    if fmt == "ascii":
        out = _read_ascii(path, data[offset:], elements)
    else:
        out = _read_binary(path, data, offset, elements, "<" if "little" in fmt else ">")
    return out.get("vertex"), out.get("face")


def _require_xyz(path: Path, el: _Element) -> list[str]:
    cols = [n for n, _ in el.props]
    if not {"x", "y", "z"} <= set(cols):
        raise DataError(path, f"PLY vertex element lacks x/y/z properties (has {cols})")
    return cols


def _vertex_array(path: Path, el: _Element, table: np.ndarray) -> np.ndarray:
    cols = _require_xyz(path, el)
    order = ["x", "y", "z"] + [c for c in cols if c not in ("x", "y", "z")]
    return np.stack([table[:, cols.index(c)] for c in order], axis=1).astype(np.float64)


def _read_ascii(path: Path, body: bytes, elements: list[_Element]) -> dict[str, np.ndarray]:
    lines = [ln for ln in body.decode("ascii", errors="replace").splitlines() if ln.strip()]
    out: dict[str, np.ndarray] = {}
    start = 0
    for el in elements:
        rows = lines[start:start + el.count]
        if len(rows) < el.count:
            raise DataError(path, f"truncated: PLY declares {el.count} {el.name} rows, found "
                                  f"{len(rows)}")
        start += el.count
        if el.name == "vertex":
            if el.lists:
                raise DataError(path, "list properties on vertices are not supported")
            try:
                table = np.array([r.split()[:len(el.props)] for r in rows], dtype=np.float64)
            except ValueError as exc:
                raise DataError(path, f"malformed vertex row ({exc})") from None
            if table.ndim != 2 or table.shape[1] != len(el.props):
                raise DataError(path, f"vertex rows must have {len(el.props)} values")
            out["vertex"] = _vertex_array(path, el, table)
        elif el.name == "face":
            try:
                polys = [[int(t) for t in r.split()[1:1 + int(r.split()[0])]] for r in rows]
            except (ValueError, IndexError) as exc:
                raise DataError(path, f"malformed face row ({exc})") from None
            out["face"] = triangulate(path, polys)
    return out


def _read_binary(
    path: Path, data: bytes, offset: int, elements: list[_Element], endian: str
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for el in elements:
        if not el.lists:
            dtype = np.dtype([(n, endian + t) for n, t in el.props])
            need = dtype.itemsize * el.count
            if offset + need > len(data):
                raise DataError(path, f"truncated: {el.count} {el.name} rows need {need} bytes, "
                                      f"{len(data) - offset} remain")
            table = np.frombuffer(data, dtype=dtype, count=el.count, offset=offset)
            offset += need
            if el.name == "vertex":
                _require_xyz(path, el)  # before stacking: an element may have no properties
                flat = np.stack([table[n].astype(np.float64) for n, _ in el.props], axis=1)
                out["vertex"] = _vertex_array(path, el, flat)
            continue
        if el.name != "face" or el.props or len(el.lists) != 1:
            if el.name == "face":
                raise DataError(path, "PLY faces with extra properties are not supported")
            break  # an unsupported element after the ones we need: stop reading
        _, count_t, item_t = el.lists[0]
        fixed = np.dtype([("n", endian + count_t), ("v", endian + item_t, (3,))])
        need = fixed.itemsize * el.count
        if offset + need <= len(data):
            table = np.frombuffer(data, dtype=fixed, count=el.count, offset=offset)
            if (table["n"] == 3).all():
                out["face"] = table["v"].astype(np.int64)
                offset += need
                continue
        out["face"], offset = _binary_polygons(path, data, offset, el.count, endian, count_t,
                                               item_t)
    return out


def _binary_polygons(
    path: Path, data: bytes, offset: int, count: int, endian: str, count_t: str, item_t: str
) -> tuple[np.ndarray, int]:
    ct, it = np.dtype(endian + count_t), np.dtype(endian + item_t)
    polys = []
    for i in range(count):
        if offset + ct.itemsize > len(data):
            raise DataError(path, f"truncated: face {i} of {count} missing")
        n = int(np.frombuffer(data, ct, 1, offset)[0])
        offset += ct.itemsize
        if offset + n * it.itemsize > len(data):
            raise DataError(path, f"truncated: face {i} of {count} incomplete")
        polys.append(np.frombuffer(data, it, n, offset).tolist())
        offset += n * it.itemsize
    return triangulate(path, polys), offset


def write_ply(
    fh: BinaryIO, vertices: np.ndarray, faces: np.ndarray | None = None, ascii: bool = False
) -> None:
    """Write x, y, z vertices (and triangle faces) as PLY to a binary file handle, binary
    little-endian by default."""
    v = np.asarray(vertices, dtype=np.float32)[:, :3]
    f = None if faces is None else np.asarray(faces, dtype=np.int32)
    head = ["ply", f"format {'ascii' if ascii else 'binary_little_endian'} 1.0",
            "comment written by pcdkit", f"element vertex {len(v)}",
            "property float x", "property float y", "property float z"]
    if f is not None:
        head += [f"element face {len(f)}", "property list uchar int vertex_indices"]
    head.append("end_header")
    fh.write(("\n".join(head) + "\n").encode("ascii"))
    if ascii:
        np.savetxt(fh, v, fmt="%.8g")
        if f is not None:
            np.savetxt(fh, np.concatenate([np.full((len(f), 1), 3), f], axis=1), fmt="%d")
    else:
        fh.write(v.astype("<f4").tobytes())
        if f is not None:
            rec = np.empty(len(f), dtype=[("n", "u1"), ("v", "<i4", (3,))])
            rec["n"], rec["v"] = 3, f
            fh.write(rec.tobytes())
