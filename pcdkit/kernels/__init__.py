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
import hashlib
import logging
import os
import sys
from pathlib import Path
from types import ModuleType

import torch

from pcdkit.core.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

_SOURCES = ("bindings.cpp", "score_net_int8.cpp", "knn_brute.cpp")
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
        name, sources = _staged_sources()
        return load(name=name, sources=[str(p) for p in sources],
                    build_directory=str(sources[0].parent),
                    extra_cflags=_FLAGS, extra_ldflags=["-fopenmp"], verbose=False)
    except (RuntimeError, OSError) as exc:  # no compiler or headers: the caller falls back
        log.warning("pcdkit: the CPU kernels could not be built (%s)", exc)
        return None


def _staged_sources() -> tuple[str, list[Path]]:
    """The build's name and its sources, copied into a build folder named by their content.

    torch's loader rebuilds whenever the sources' paths change, so two checkouts of pcdkit (or a
    worktree and an installed copy) sharing ``TORCH_EXTENSIONS_DIR`` would rebuild each other's
    kernels over and over; staged by content (and Python and torch version), identical sources
    build once and share the result.
    """
    from torch.utils.cpp_extension import get_default_build_root

    texts = {f: Path(__file__).with_name(f).read_bytes() for f in _SOURCES}
    # the build is bound to this Python and torch too: a different one gets its own folder
    tag = f"{' '.join(_FLAGS)} | python {sys.version_info[:2]} | torch {torch.__version__}"
    digest = hashlib.sha256(b"".join([*texts.values(), tag.encode()]))
    name = f"pcdkit_cpu_kernels_{digest.hexdigest()[:12]}"
    folder = Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / name
    folder.mkdir(parents=True, exist_ok=True)
    for f, text in texts.items():
        target = folder / f
        if not target.exists() or target.read_bytes() != text:
            atomic_write_bytes(target, text)
    return name, [folder / f for f in _SOURCES]
