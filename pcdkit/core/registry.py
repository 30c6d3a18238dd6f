"""The plugin registry: a pluggy manager fed by the ``pcdkit`` entry-point group.

Built-in plugins are declared as entry points in pcdkit's own ``setup.cfg``, exactly like
third-party ones. A plugin that fails to import or to register is recorded with its name,
distribution and exception, and skipped; the others keep working. Two plugins that claim the same
kind and name make that name unusable, with an error naming both distributions.
"""

from __future__ import annotations

import builtins
import traceback
from dataclasses import dataclass, replace
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from pcdkit.core import hookspecs
from pcdkit.core.params import did_you_mean
from pcdkit.errors import PluginError
from pcdkit.plugin import PluginSpec

ENTRY_POINT_GROUP = "pcdkit"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin module that raised on import or registration."""

    entry_point: str
    distribution: str
    version: str
    error: str
    detail: str


@dataclass(frozen=True)
class PluginInfo:
    """One row of ``pcdkit plugins list``."""

    kind: str
    name: str
    distribution: str
    version: str
    status: str
    doc: str = ""


class Registry:
    """Plugins of every kind, loaded once from entry points (and any module registered by hand)."""

    def __init__(self, group: str | None = ENTRY_POINT_GROUP) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._group = group
        self._dist_of: dict[str, tuple[str, str]] = {}
        self._specs: dict[tuple[str, str], PluginSpec] = {}
        self._conflicts: dict[tuple[str, str], list[PluginSpec]] = {}
        self.broken: list[BrokenPlugin] = []
        self._loaded = False

    # -- loading ---------------------------------------------------------------------------
    def register_module(
        self, module: ModuleType | object, name: str, distribution: str = "<local>",
        version: str = "",
    ) -> None:
        """Register a plugin module in-process (notebooks, tests); same rules as entry points."""
        self._pm.register(module, name=name)
        self._dist_of[name] = (distribution, version)
        if self._loaded:
            self._collect(only=name)

    def _load(self) -> None:
        if self._loaded:
            return
        if self._group:
            for ep in sorted(metadata.entry_points(group=self._group), key=lambda e: e.name):
                dist = getattr(ep, "dist", None)
                dist_name = dist.metadata["Name"] if dist is not None else "<unknown>"
                dist_version = dist.version if dist is not None else ""
                key = f"{dist_name}:{ep.name}"
                if self._pm.has_plugin(key):
                    continue  # the same distribution visible twice on sys.path
                try:
                    module = ep.load()
                    self._pm.register(module, name=key)
                except BaseException as exc:  # noqa: BLE001 - a broken plugin (even one that
                    # calls sys.exit or raises KeyboardInterrupt at import) must not break the rest
                    self._record_broken(ep.name, dist_name, dist_version, exc)
                    continue
                self._dist_of[key] = (dist_name, dist_version)
        self._loaded = True
        self._collect()

    def _record_broken(self, entry: str, dist: str, version: str, exc: BaseException) -> None:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.broken.append(
            BrokenPlugin(entry, dist, version, f"{type(exc).__name__}: {exc}", detail)
        )

    def _collect(self, only: str | None = None) -> None:
        self._check_hook_names(only)
        for kind, hook_name in hookspecs.HOOK_OF_KIND.items():
            hook = getattr(self._pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                if only is not None and impl.plugin_name != only:
                    continue
                dist, version = self._dist_of.get(impl.plugin_name, ("<unknown>", ""))
                try:
                    specs = impl.function()
                    for spec in specs or ():
                        if not isinstance(spec, PluginSpec) or spec.kind != kind:
                            raise TypeError(
                                f"{hook_name} must return PluginSpec objects of kind {kind!r}, "
                                f"got {spec!r}"
                            )
                    for spec in specs or ():
                        self._add(replace(spec, distribution=dist, version=version))
                except BaseException as exc:  # noqa: BLE001 - as in _load
                    self._record_broken(impl.plugin_name.split(":")[-1], dist, version, exc)

    def _check_hook_names(self, only: str | None) -> None:
        """Record a hook implementation without a pcdkit hookspec (a misspelled hook, e.g.
        ``pcdkit_metric``) as broken: pluggy would otherwise never call it, silently."""
        known = builtins.list(hookspecs.HOOK_OF_KIND.values())
        for hook_name, caller in sorted(vars(self._pm.hook).items()):
            if getattr(caller, "spec", True) is not None or not hasattr(caller,
                                                                         "get_hookimpls"):
                continue
            for impl in caller.get_hookimpls():
                if only is not None and impl.plugin_name != only:
                    continue
                dist, version = self._dist_of.get(impl.plugin_name, ("<unknown>", ""))
                hint = did_you_mean(hook_name, known)
                msg = f"implements {hook_name!r}, which is not a pcdkit hook{hint}"
                self.broken.append(BrokenPlugin(impl.plugin_name.split(":")[-1], dist, version,
                                                msg, msg))

    def _add(self, spec: PluginSpec) -> None:
        key = (spec.kind, spec.name)
        if key in self._conflicts:
            self._conflicts[key].append(spec)
        elif key in self._specs:
            self._conflicts[key] = [self._specs.pop(key), spec]
        else:
            self._specs[key] = spec

    # -- queries ---------------------------------------------------------------------------
    def names(self, kind: str) -> builtins.list[str]:
        """Usable plugin names of one kind, sorted."""
        self._load()
        return sorted(name for k, name in self._specs if k == kind)

    def get(self, kind: str, name: str) -> PluginSpec:
        """The spec of plugin ``name`` of ``kind``; a clear error when unknown or claimed twice."""
        self._load()
        if kind not in hookspecs.KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(hookspecs.KINDS)}")
        key = (kind, name)
        if key in self._conflicts:
            owners = " and ".join(
                f"{s.distribution} {s.version}".strip() for s in self._conflicts[key]
            )
            raise PluginError(
                f"{kind} plugin {name!r} is provided by more than one distribution: {owners}; "
                "uninstall one of them"
            )
        if key not in self._specs:
            known = self.names(kind)
            broken = "; ".join(f"{b.entry_point} from {b.distribution} ({b.error})"
                               for b in self.broken)
            maybe = (f"; these plugins failed to load and may provide it: {broken}"
                     if broken else "")
            raise PluginError(
                f"unknown {kind} plugin {name!r}{did_you_mean(name, known)}; "
                f"available: {', '.join(known) or 'none'}{maybe}"
            )
        return self._specs[key]

    def create(self, kind: str, name: str, settings: dict[str, Any] | None = None) -> Any:
        """Build plugin ``name`` of ``kind`` from its settings."""
        return self.get(kind, name).create(settings)

    def list(self, kind: str | None = None) -> builtins.list[PluginInfo]:
        """Every plugin (usable, conflicting and broken), optionally of one kind."""
        self._load()
        rows = [
            PluginInfo(s.kind, s.name, s.distribution, s.version, "ok", s.doc)
            for s in self._specs.values()
        ]
        for specs in self._conflicts.values():
            for s in specs:
                others = ", ".join(o.distribution for o in specs if o is not s)
                rows.append(PluginInfo(s.kind, s.name, s.distribution, s.version,
                                       f"conflict (also provided by {others})", s.doc))
        if kind is None:
            rows += [
                PluginInfo("?", b.entry_point, b.distribution, b.version, f"broken: {b.error}")
                for b in self.broken
            ]
        else:
            rows = [r for r in rows if r.kind == kind]
        return sorted(rows, key=lambda r: (r.kind, r.name, r.distribution))


_default: Registry | None = None


def default() -> Registry:
    """The process-wide registry, loaded from entry points on first use."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def reset() -> None:
    """Forget the process-wide registry (after installing plugins at run time, in tests)."""
    global _default
    _default = None


def get(kind: str, name: str) -> PluginSpec:
    """Spec of a plugin from the process-wide registry, e.g. ``get("metric", "chamfer")``."""
    return default().get(kind, name)


def create(kind: str, name: str, settings: dict[str, Any] | None = None) -> Any:
    """Build a plugin from the process-wide registry, e.g. ``create("metric", "chamfer", {})``."""
    return default().create(kind, name, settings)


def list(kind: str | None = None) -> builtins.list[PluginInfo]:  # noqa: A001 - public API name
    """Plugins in the process-wide registry, optionally of one kind."""
    return default().list(kind)
