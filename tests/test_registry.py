"""The plugin registry: entry points, conflicts, broken plugins, Python API."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from pcdkit.core import registry
from pcdkit.core.registry import Registry
from pcdkit.errors import PluginError
from pcdkit.plugin import Param, PluginSpec, hookimpl


def _module(name: str, **hooks: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    for key, fn in hooks.items():
        setattr(mod, key, fn)
    return mod


def _metric(name: str) -> PluginSpec:
    return PluginSpec("metric", name, "pcdkit.metrics.base:MSE",
                      params=(Param("reduce_last_dim", bool, False),))


def test_builtins_come_from_the_pcdkit_distribution_via_entry_points() -> None:
    rows = registry.list()
    assert {(r.kind, r.name) for r in rows} >= {
        ("metric", "chamfer"), ("metric", "p2m"), ("metric", "hausdorff"), ("metric", "mse"),
        ("corruption", "gaussian"), ("dataset", "procedural"), ("dataset", "punet"),
        ("dataset", "mesh-folder"), ("job", "evaluate"), ("backbone", "identity")}
    assert all(r.distribution == "pcdkit" for r in rows if r.name in ("chamfer", "evaluate"))


def test_get_and_create_build_a_working_plugin() -> None:
    import torch

    metric = registry.create("metric", "mse", {"reduce_last_dim": True})
    x = torch.zeros(4, 3)
    assert float(metric(x + 1, x)) == pytest.approx(3.0)
    assert registry.get("metric", "chamfer").params[0].name == "squared"


def test_unknown_plugin_suggests_the_near_miss() -> None:
    with pytest.raises(PluginError, match="did you mean 'chamfer'"):
        registry.get("metric", "chamfr")


def test_two_distributions_claiming_one_name_is_an_error_naming_both() -> None:
    reg = Registry(group=None)

    class A:
        @staticmethod
        @hookimpl
        def pcdkit_metrics() -> list[PluginSpec]:
            return [_metric("twin"), _metric("only-a")]

    class B:
        @staticmethod
        @hookimpl
        def pcdkit_metrics() -> list[PluginSpec]:
            return [_metric("twin")]

    reg.register_module(A, "a", distribution="dist-a", version="1.0")
    reg.register_module(B, "b", distribution="dist-b", version="2.0")
    with pytest.raises(PluginError, match=r"dist-a 1\.0 and dist-b 2\.0"):
        reg.get("metric", "twin")
    assert reg.get("metric", "only-a").distribution == "dist-a"
    statuses = {(r.name, r.distribution): r.status for r in reg.list("metric")}
    assert statuses[("twin", "dist-a")].startswith("conflict")


def test_a_plugin_raising_at_registration_is_reported_and_skipped() -> None:
    reg = Registry(group=None)

    class Good:
        @staticmethod
        @hookimpl
        def pcdkit_metrics() -> list[PluginSpec]:
            return [_metric("fine")]

    class Bad:
        @staticmethod
        @hookimpl
        def pcdkit_metrics() -> list[PluginSpec]:
            raise RuntimeError("boom at registration")

    reg.register_module(Good, "good", distribution="good-dist")
    reg.register_module(Bad, "bad", distribution="bad-dist")
    assert reg.names("metric") == ["fine"]
    assert len(reg.broken) == 1 and reg.broken[0].distribution == "bad-dist"
    assert "boom at registration" in reg.broken[0].error
    assert any(r.status.startswith("broken") for r in reg.list())


def test_hook_returning_wrong_kind_is_reported() -> None:
    reg = Registry(group=None)

    class Wrong:
        @staticmethod
        @hookimpl
        def pcdkit_metrics() -> list[PluginSpec]:
            return [PluginSpec("dataset", "oops", "x:y")]

    reg.register_module(Wrong, "wrong", distribution="w")
    assert reg.names("dataset") == [] and "kind 'metric'" in reg.broken[0].error


def test_listing_plugins_imports_neither_torch_nor_optional_backends() -> None:
    code = ("import sys, pcdkit.core.registry as r; r.list(); "
            "print(sorted(m for m in ('torch', 'pytorch3d', 'mujoco', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


#: builtins whose objects need data this test does not make (checked by their own tests)
_NEEDS_DATA = {("dataset", n) for n in ("punet", "mesh-folder", "mnist", "hopper",
                                        "rotating-mnist")}


def test_every_declared_contract_holds_for_the_built_object() -> None:
    from pcdkit.backbones.score_denoise.model import ScoreDenoiseNet
    from pcdkit.backbones.score_unet import ScoreUNet
    from pcdkit.contracts import satisfies

    extra = {("head", "igo-score-denoise"): {"backbone": ScoreDenoiseNet()},
             ("head", "igo-unet"): {"backbone": ScoreUNet()}}
    settings = {("dataset", "generated-shapes"): {"count": 1, "resolution": 200},
                ("dataset", "procedural"): {"resolution": 100, "shapes": ["cube"]}}
    checked = 0
    for kind in ("backbone", "head", "corruption", "dataset"):
        for name in registry.default().names(kind):
            spec = registry.default().get(kind, name)
            if not spec.provides or (kind, name) in _NEEDS_DATA:
                continue
            obj = spec.create(settings.get((kind, name), {}), **extra.get((kind, name), {}))
            for contract in spec.provides:
                assert satisfies(obj, contract) == [], (name, contract)
            checked += 1
    assert checked >= 13


def test_validate_refuses_a_plugin_declared_for_another_contract() -> None:
    from pcdkit.core import pipeline
    from pcdkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"backbone.plugin: backbone plugin 'score-unet' "
                                          r"\(pcdkit [^)]*\) provides ImageScoreModel; this slot "
                                          r"needs a PointDenoiser"):
        pipeline.validate({"job": "evaluate", "dataset": "procedural", "backbone": "score-unet"})
    with pytest.raises(ConfigError, match=r"dataset.plugin: .*'mnist'.* needs a ShapeSequence"):
        pipeline.validate({"job": "evaluate", "dataset": "mnist"})
