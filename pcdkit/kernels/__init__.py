"""Hand-written CPU kernels, compiled on first use (issue 14: score-denoise at 2x the speed).

``score_net_int8.cpp`` runs the score-denoise network's whole inference forward over L2-sized
row tiles with int8 products on AVX512-VNNI (``matmul_precision: int8-fused``);
``knn_brute.cpp`` finds the exact nearest neighbours of small point sets (a patch's 1,000
points) by brute force in AVX-512 (the ``avx512`` geometry backend). They are built together
by ``torch.utils.cpp_extension.load`` (a C++ compiler is needed once, about a minute; the build
is cached under ``TORCH_EXTENSIONS_DIR``), only where the CPU has AVX512-VNNI;
:func:`cpu_kernels` returns ``None`` elsewhere so callers fall back.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType

import torch

log = logging.getLogger(__name__)

_SOURCES = [str(Path(__file__).with_name(f)) for f in
            ("bindings.cpp", "score_net_int8.cpp", "knn_brute.cpp")]
# -fopenmp: at::parallel_for is a header template whose OpenMP pragma is compiled here
_FLAGS = ["-O3", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni",
          "-mfma"]


def vnni_available() -> bool:
    """Whether this CPU has the AVX512-VNNI instructions the kernels are written in."""
    return bool(torch.cpu._is_avx512_supported() and torch.cpu._is_vnni_supported())


def runs_on(device: torch.device) -> bool:
    """Whether the kernels run for tensors on ``device`` (a CPU with AVX512-VNNI where they
    build; builds them on first call)."""
    return device.type == "cpu" and cpu_kernels() is not None


@functools.cache
def cpu_kernels() -> ModuleType | None:
    """The compiled kernel module, or ``None`` without AVX512-VNNI or a working C++ compiler."""
    if not vnni_available():
        return None
    from torch.utils.cpp_extension import load

    log.info("pcdkit: loading its CPU kernels (the first time they are compiled: about a minute)")
    try:
        return load(name="pcdkit_cpu_kernels", sources=_SOURCES,
                    extra_cflags=_FLAGS, extra_ldflags=["-fopenmp"], verbose=False)
    except (RuntimeError, OSError) as exc:  # no compiler or headers: the caller falls back
        log.warning("pcdkit: the CPU kernels could not be built (%s)", exc)
        return None
