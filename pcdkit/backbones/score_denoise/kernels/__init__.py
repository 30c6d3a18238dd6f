"""Hand-fused CPU kernels of the score network, compiled on first use (issue 14).

``score_net_int8.cpp`` runs the whole inference forward over L2-sized row tiles with int8
products on AVX512-VNNI. It is built by ``torch.utils.cpp_extension.load`` (a C++ compiler is
needed once, about a minute; the build is cached under ``TORCH_EXTENSIONS_DIR``) and only where
the CPU has AVX512-VNNI; :func:`fused_int8` returns ``None`` elsewhere so callers fall back.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from types import ModuleType

import torch

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("score_net_int8.cpp")
# -fopenmp: at::parallel_for is a header template whose OpenMP pragma is compiled here
_FLAGS = ["-O3", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni",
          "-mfma"]


def vnni_available() -> bool:
    """Whether this CPU has the AVX512-VNNI instructions the int8 kernel is written in."""
    return bool(torch.cpu._is_avx512_supported() and torch.cpu._is_vnni_supported())


@functools.cache
def fused_int8() -> ModuleType | None:
    """The compiled kernel module, or ``None`` without AVX512-VNNI or a working C++ compiler."""
    if not vnni_available():
        return None
    from torch.utils.cpp_extension import load

    try:
        return load(name="pcdkit_score_net_int8", sources=[str(_SOURCE)],
                    extra_cflags=_FLAGS, extra_ldflags=["-fopenmp"], verbose=False)
    except (RuntimeError, OSError) as exc:  # no compiler or headers: the caller falls back
        log.warning("pcdkit: the fused int8 score network could not be built (%s)", exc)
        return None
