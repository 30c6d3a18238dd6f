"""The fastest arithmetic for a network's hidden products on this machine, measured once.

Which arithmetic is fastest depends on the CPU, not only on its flags. Two machines of this
project, both with AVX512-BF16 and AVX512-VNNI: on an AMD EPYC a (32768 x 128) @ (128 x 128)
product took 3.33 ms in bfloat16, about half of float32's time; on an Intel Xeon without AMX it
took 7.48 ms in bfloat16 against 4.71 ms in float32, and 1.22 ms in int8 (benchmarks/products.py,
README "Benchmarks"). So the choice is measured, not guessed from flags: the bare product in each
arithmetic the device offers, best of several runs, a less precise arithmetic taken only when it
is at least ``MARGIN`` faster than the more precise one chosen so far. int8 is offered only where
its quantisation is fused into the products (compiled inference, or a hand-fused kernel such as
score-denoise's): unfused, its element-wise passes cost 2.3x the float32 time per cloud. The
result is remembered per CPU model, torch version, thread count and that condition in
``$PCDKIT_CACHE/arithmetic.json``, so one machine keeps its arithmetic from run to run; delete
the file to measure again.
"""

from __future__ import annotations

import functools
import json
import platform
import time
from pathlib import Path

import torch

from pcdkit.core.atomic import atomic_write_text
from pcdkit.core.device import native_bfloat16

#: a less precise arithmetic must take at most this fraction of the more precise one's time
MARGIN = 0.9
_ROWS, _CHANNELS, _REPEATS = 8192, 128, 15


def int8_products(device: torch.device) -> bool:
    """True where int8 x int8 -> int32 products run in hardware (CPUs with VNNI or AMX)."""
    if device.type != "cpu":
        return False
    probes = ("_is_vnni_supported", "_is_amx_tile_supported")  # private: may vanish
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def fastest_products(device: torch.device, int8_fused: bool, cache: Path | None = None) -> str:
    """``float32``, ``bfloat16`` or ``int8``: the fastest product arithmetic on ``device``.

    CUDA takes bfloat16 where supported; a CPU is measured once (see the module docstring)
    and the answer read from ``cache`` (default ``$PCDKIT_CACHE/arithmetic.json``) after.
    """
    if device.type != "cpu":
        return "bfloat16" if native_bfloat16(device) else "float32"
    candidates = ["float32"]
    if native_bfloat16(device):
        candidates.append("bfloat16")
    if int8_fused and int8_products(device):
        candidates.append("int8")
    if len(candidates) == 1:
        return "float32"
    key = (f"{_cpu_model()} | torch {torch.__version__} | {torch.get_num_threads()} threads | "
           f"{'int8 fused' if int8_fused else 'int8 unfused'}")
    path = cache or _default_cache()
    known = _read(path)
    if key not in known:
        known[key] = _measure(tuple(candidates))
        atomic_write_text(path, json.dumps(known, indent=1, sort_keys=True) + "\n")
    return known[key]


@functools.cache
def _measure(candidates: tuple[str, ...]) -> str:
    """The chosen arithmetic among ``candidates`` (most precise first) by best-of timings."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(_ROWS, _CHANNELS, generator=gen)
    w = torch.rand(_CHANNELS, _CHANNELS, generator=gen)
    operands = {"float32": (x, w), "bfloat16": (x.bfloat16(), w.bfloat16()),
                "int8": ((x * 127).to(torch.int8), (w * 127).to(torch.int8))}
    products = {name: (torch._int_mm if name == "int8" else torch.mm, *operands[name])
                for name in candidates}
    ms = dict.fromkeys(candidates, float("inf"))
    for repeat in range(_REPEATS + 1):
        for name, (product, a, b) in products.items():  # interleaved: load hits all alike
            start = time.perf_counter()
            product(a, b)
            if repeat:  # the first call selects kernels and allocates: not timed
                ms[name] = min(ms[name], time.perf_counter() - start)
    chosen = candidates[0]
    for name in candidates[1:]:
        if ms[name] < MARGIN * ms[chosen]:
            chosen = name
    return chosen


def _cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _default_cache() -> Path:
    from pcdkit.datasets.folders import default_cache_dir

    return default_cache_dir() / "arithmetic.json"


def _read(path: Path) -> dict[str, str]:
    """The remembered choices; an unreadable file counts as none (it is only a cache)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    valid = {"float32", "bfloat16", "int8"}
    return {k: v for k, v in data.items() if v in valid} if isinstance(data, dict) else {}
