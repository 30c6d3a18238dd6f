"""Optional compiled backends (pytorch3d, torch-cluster / pyg-lib), detected once, never required.

Choosing a backend never changes results beyond floating-point rounding: every backend computes
exact nearest neighbours / the same farthest-point order.
"""

from __future__ import annotations

import functools
import importlib
from typing import Literal

import torch

from pcdkit.errors import PcdkitError

Backend = Literal["auto", "torch", "scipy", "pytorch3d", "pyg", "avx512"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "scipy", "pytorch3d", "pyg", "avx512")


@functools.cache
def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken optional install counts as absent
        return False
    return True


def has_pytorch3d() -> bool:
    """True when ``pytorch3d.ops`` imports (with its compiled kernels)."""
    return _importable("pytorch3d.ops")


def has_torch_cluster() -> bool:
    """True when ``torch_cluster`` (PyG's knn/fps kernels) imports."""
    return _importable("torch_cluster")


def has_scipy() -> bool:
    """True when SciPy's cKDTree is available."""
    return _importable("scipy.spatial")


def has_avx512_kernels() -> bool:
    """True where pcdkit's own CPU kernels can run (AVX512-VNNI; built on first use)."""
    from pcdkit.kernels import vnni_available

    return vnni_available()


def available_backends() -> list[str]:
    """Backends usable in this environment (``torch`` always)."""
    out = ["torch"]
    if has_avx512_kernels():
        out.append("avx512")
    if has_scipy():
        out.append("scipy")
    if has_pytorch3d():
        out.append("pytorch3d")
    if has_torch_cluster():
        out.append("pyg")
    return out


def pick(backend: str, device: torch.device, op: str, dims: int = 3) -> str:
    """Resolve ``auto`` for an operation (``knn`` or ``fps``) on ``dims``-dimensional points
    on a device; check the choice. ``avx512`` (pcdkit's brute-force kNN kernel for small
    batched point sets, CPU) is a kNN backend: other operations, or another device, resolve
    as ``auto``."""
    if backend == "avx512" and (op != "knn" or device.type != "cpu"):
        backend = "auto"
    if backend not in BACKENDS:
        raise PcdkitError(f"unknown geometry backend {backend!r}; choose from "
                          f"{', '.join(BACKENDS)}")
    if backend == "auto":
        if device.type == "cpu" and dims > 3:
            # KD-trees lose their pruning in feature spaces: 24-d kNN of 8 x 1000 points took
            # 0.23 s with cKDTree, 0.14 s brute force (the score net's dynamic graphs)
            return "torch"
        if device.type == "cpu":
            if has_scipy():
                return "scipy"  # KD-trees beat brute-force CPU kernels (knn 30-200x, fps 5x)
            return "pyg" if has_torch_cluster() else "torch"
        return "pytorch3d" if has_pytorch3d() else "torch"
    available = available_backends()
    if backend not in available:
        raise PcdkitError(f"geometry backend {backend!r} is not installed here; available: "
                          f"{', '.join(available)}")
    return backend
