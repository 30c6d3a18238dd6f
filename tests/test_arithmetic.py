"""The fast preset's product arithmetic: measured once per machine, remembered after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pcdkit.core import arithmetic
from pcdkit.core.arithmetic import fastest_products, int8_products
from pcdkit.core.device import native_bfloat16

CPU = torch.device("cpu")


def test_a_remembered_choice_is_reused_without_measuring(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    if not native_bfloat16(CPU):
        pytest.skip("only float32 is offered on this CPU: nothing is measured")
    cache = tmp_path / "arithmetic.json"
    first = fastest_products(CPU, int8_fused=False, cache=cache)
    (key, value), = json.loads(cache.read_text()).items()
    assert value == first and "unfused" in key and torch.__version__ in key
    cache.write_text(json.dumps({key: "float32" if first != "float32" else "bfloat16"}))

    def refuse(_: object) -> str:
        raise AssertionError("measured again")

    monkeypatch.setattr(arithmetic, "_measure", refuse)
    assert fastest_products(CPU, int8_fused=False, cache=cache) != first  # the file decides


def test_int8_is_offered_only_where_its_quantisation_is_fused(tmp_path: Path) -> None:
    eager = fastest_products(CPU, int8_fused=False, cache=tmp_path / "a.json")
    assert eager != "int8"  # eager int8 pays unfused quantisation passes
    compiled = fastest_products(CPU, int8_fused=True, cache=tmp_path / "a.json")
    assert compiled in ("float32", "bfloat16") + (("int8",) if int8_products(CPU) else ())


def test_an_unreadable_or_foreign_cache_is_measured_again(tmp_path: Path) -> None:
    cache = tmp_path / "arithmetic.json"
    cache.write_text("{not json")
    assert fastest_products(CPU, int8_fused=True, cache=cache) in ("float32", "bfloat16", "int8")
    cache.write_text(json.dumps({"some key": "float16"}))
    assert arithmetic._read(cache) == {}  # unknown arithmetic names are ignored


def test_devices_other_than_the_cpu_are_not_measured() -> None:
    # decided by the device's capability alone (CUDA: bfloat16 where supported); none here
    meta = torch.device("meta")
    assert fastest_products(meta, int8_fused=True) == "float32"
