"""PCD files (PCL / ROS point clouds): ASCII, binary and binary_compressed (LZF) data.

The header names the fields (x y z and any others), their byte sizes, types (F float, I signed,
U unsigned) and counts. ``binary`` stores one packed record per point; ``binary_compressed``
stores the fields one after another (all x, then all y, ...) as one LZF block. Organised clouds
mark missing points with NaN; those rows are dropped (with a warning).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np

from pcdkit.errors import DataError
from pcdkit.io.checks import check_count

_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS",
         "DATA")
_KINDS = {"F": "f", "I": "i", "U": "u"}


def _header(path: Path, data: bytes) -> tuple[dict[str, list[str]], int]:
    head: dict[str, list[str]] = {}
    offset = 0
    while "DATA" not in head:
        end = data.find(b"\n", offset)
        if end < 0:
            raise DataError(path, "not a PCD file (header without a DATA line)")
        line = data[offset:end].decode("ascii", errors="replace").strip()
        offset = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        if key not in _KEYS:
            raise DataError(path, f"unexpected PCD header line {line[:80]!r}")
        head[key] = values
    missing = [k for k in ("FIELDS", "SIZE", "TYPE", "WIDTH", "HEIGHT") if k not in head]
    if missing:
        raise DataError(path, f"PCD header lacks {', '.join(missing)}")
    return head, offset


def _dtype(path: Path, head: dict[str, list[str]]) -> np.dtype:
    fields, sizes, types = head["FIELDS"], head["SIZE"], head["TYPE"]
    counts = head.get("COUNT", ["1"] * len(fields))
    if not len(fields) == len(sizes) == len(types) == len(counts):
        raise DataError(path, "PCD FIELDS, SIZE, TYPE and COUNT must list as many entries")
    if not {"x", "y", "z"} <= set(fields):
        raise DataError(path, f"PCD fields lack x/y/z (has {' '.join(fields)})")
    parts = []
    for name, size, kind, count in zip(fields, sizes, types, counts, strict=True):
        try:
            dt = np.dtype(f"<{_KINDS[kind]}{int(size)}")
            n = int(count)
        except (KeyError, TypeError, ValueError):
            raise DataError(path, f"PCD field {name!r}: unsupported TYPE {kind!r} / SIZE "
                                  f"{size!r} / COUNT {count!r}") from None
        if n < 1:
            raise DataError(path, f"PCD field {name!r}: COUNT must be >= 1, got {n}")
        parts.append((name if name != "_" else f"_pad{len(parts)}", dt, (n,) if n > 1 else ()))
    return np.dtype(parts)


def read_pcd(path: Path) -> np.ndarray:
    """Points (N, 3 + extra scalar fields) of a PCD file, x y z first, float64."""
    data = path.read_bytes()
    head, offset = _header(path, data)
    dtype = _dtype(path, head)
    try:
        width, height = int(head["WIDTH"][0]), int(head["HEIGHT"][0])
        n = int(head.get("POINTS", [width * height])[0])
    except (IndexError, ValueError):
        raise DataError(path, "PCD WIDTH, HEIGHT and POINTS must be integers") from None
    check_count(path, "points", n, len(data))  # every point takes at least one byte
    mode = (head["DATA"] or [""])[0]
    body = data[offset:]
    if mode == "ascii":
        table = _ascii(path, body, dtype, n)
    elif mode == "binary":
        if len(body) < n * dtype.itemsize:
            raise DataError(path, f"truncated: {n} PCD points need {n * dtype.itemsize} bytes, "
                                  f"{len(body)} remain")
        table = np.frombuffer(body, dtype=dtype, count=n)
    elif mode == "binary_compressed":
        table = _compressed(path, body, dtype, n)
    else:
        raise DataError(path, f"PCD DATA {mode!r}: expected ascii, binary or binary_compressed")
    cols = ["x", "y", "z"] + [f for f in dtype.names if f not in ("x", "y", "z")
                              and not f.startswith("_pad") and dtype[f].shape == ()]
    out = np.stack([table[c].astype(np.float64) for c in cols], axis=1)
    keep = np.isfinite(out[:, :3]).all(axis=1)
    if not keep.all():
        warnings.warn(f"{path}: {int((~keep).sum())} of {n} points have NaN coordinates "
                      "(missing points of an organised cloud); dropped", stacklevel=4)
        out = out[keep]
    return out


def _ascii(path: Path, body: bytes, dtype: np.dtype, n: int) -> np.ndarray:
    rows = [r for r in body.decode("ascii", errors="replace").splitlines() if r.strip()]
    if len(rows) < n:
        raise DataError(path, f"truncated: PCD declares {n} points, found {len(rows)} rows")
    width = sum(int(np.prod(dtype[f].shape)) for f in dtype.names)
    try:
        flat = np.array(" ".join(rows[:n]).split(), dtype=np.float64)
    except ValueError as exc:
        raise DataError(path, f"malformed PCD data row ({exc})") from None
    if flat.size != n * width:
        raise DataError(path, f"PCD rows must hold {width} values each")
    flat = flat.reshape(n, width)
    table = np.zeros(n, dtype=dtype)
    col = 0
    for f in dtype.names:
        k = int(np.prod(dtype[f].shape))
        table[f] = flat[:, col] if k == 1 else flat[:, col:col + k]
        col += k
    return table


def _compressed(path: Path, body: bytes, dtype: np.dtype, n: int) -> np.ndarray:
    if len(body) < 8:
        raise DataError(path, "truncated: binary_compressed PCD lacks its size words")
    packed, size = (int(v) for v in np.frombuffer(body, "<u4", 2))
    if size != n * dtype.itemsize or packed > len(body) - 8:
        raise DataError(path, f"binary_compressed PCD: sizes {packed}/{size} do not fit "
                              f"{n} points of {dtype.itemsize} bytes in {len(body)} bytes")
    raw = lzf_decompress(path, body[8:8 + packed], size)
    table = np.zeros(n, dtype=dtype)
    offset = 0
    for f in dtype.names:  # fields are stored one after another
        sub = np.dtype((dtype[f].base, dtype[f].shape)) if dtype[f].shape else dtype[f]
        table[f] = np.frombuffer(raw, dtype=sub, count=n, offset=offset)
        offset += n * dtype[f].itemsize
    return table


def lzf_decompress(path: Path, src: bytes, size: int) -> bytes:
    """Decode an LZF block (liblzf's format) of known decompressed ``size``."""
    out = bytearray()
    ip = 0
    while ip < len(src):
        ctrl = src[ip]
        ip += 1
        if ctrl < 32:  # a literal run of ctrl + 1 bytes
            out += src[ip:ip + ctrl + 1]
            ip += ctrl + 1
            continue
        length = ctrl >> 5
        if length == 7:
            if ip >= len(src):
                break
            length += src[ip]
            ip += 1
        if ip >= len(src):
            break
        ref = len(out) - ((ctrl & 0x1F) << 8) - src[ip] - 1
        ip += 1
        length += 2
        if ref < 0:
            raise DataError(path, "binary_compressed PCD: corrupt LZF data (back-reference "
                                  "before the start)")
        if ref + length <= len(out):
            out += out[ref:ref + length]
        else:  # an overlapping copy repeats the pattern byte by byte
            for i in range(length):
                out.append(out[ref + i])
        if len(out) > size:
            break
    if len(out) != size:
        raise DataError(path, f"binary_compressed PCD: LZF data decodes to {len(out)} bytes, "
                              f"header says {size}")
    return bytes(out)


def write_pcd(fh: BinaryIO, points: np.ndarray, data: str = "binary") -> None:
    """Write x y z (float32) as a PCD v0.7 file: ``ascii``, ``binary`` or
    ``binary_compressed`` (valid LZF made of literal runs: readable by PCL, not smaller)."""
    pts = np.ascontiguousarray(np.asarray(points)[:, :3], dtype="<f4")
    n = len(pts)
    head = ("# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\n"
            f"SIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\n"
            f"VIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {data}\n")
    fh.write(head.encode("ascii"))
    if data == "ascii":
        np.savetxt(fh, pts, fmt="%.8g")
    elif data == "binary":
        fh.write(pts.tobytes())
    elif data == "binary_compressed":
        raw = np.ascontiguousarray(pts.T).tobytes()  # x..., y..., z...
        runs = bytearray()
        for i in range(0, len(raw), 32):
            chunk = raw[i:i + 32]
            runs.append(len(chunk) - 1)
            runs += chunk
        fh.write(np.array([len(runs), len(raw)], "<u4").tobytes() + bytes(runs))
    else:
        raise ValueError(f"PCD data {data!r}: expected ascii, binary or binary_compressed")
