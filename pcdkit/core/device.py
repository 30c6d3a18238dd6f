"""Device selection and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from pcdkit.errors import PcdkitError


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda``/``cuda:N`` must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PcdkitError(f"device: {spec!r} requested but CUDA is not available; "
                              "use 'auto' or 'cpu'")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise PcdkitError(f"device: {spec!r} requested but only "
                              f"{torch.cuda.device_count()} CUDA device(s) exist")
        return dev
    if spec == "cpu":
        return torch.device("cpu")
    raise PcdkitError(f"device: expected auto, cpu, cuda or cuda:N, got {spec!r}")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a CPU generator for explicit use."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def native_bfloat16(device: torch.device) -> bool:
    """True where bfloat16 matrix products run in hardware (CUDA with bf16, CPUs with
    AVX512-BF16 or AMX): elsewhere oneDNN emulates them, many times slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private: may vanish
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
