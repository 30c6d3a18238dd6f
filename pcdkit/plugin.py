"""What a plugin author imports: the spec types, :class:`Param`, and the ``hookimpl`` marker."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pcdkit.core.hookspecs import KINDS, hookimpl
from pcdkit.core.params import REQUIRED, Param, check_params
from pcdkit.errors import PcdkitError, PluginError

__all__ = ["KINDS", "REQUIRED", "Param", "PluginSpec", "Slot", "hookimpl"]


@dataclass(frozen=True)
class Slot:
    """A section of a pipeline that a job fills with plugins of one kind.

    ``many`` slots take a list of plugin sections; ``default`` is used when the section is absent.
    ``contract`` (a protocol of :mod:`pcdkit.contracts`) is what the built object must offer.
    """

    name: str
    kind: str
    required: bool = True
    many: bool = False
    default: Any = None
    doc: str = ""
    contract: type | None = None


@dataclass(frozen=True)
class PluginSpec:
    """A named, documented plugin of one kind.

    ``factory`` is called with the validated settings (and, for jobs, nothing else: the job gets its
    components at run time). It may be a callable or a lazy ``"package.module:attribute"`` string,
    so that listing plugins never imports their heavy dependencies. ``provides`` names the
    contracts of :mod:`pcdkit.contracts` the built object satisfies (e.g. ``(PointDenoiser,)``);
    when given, ``pcdkit validate`` refuses the plugin in a slot that needs another contract,
    before anything is built (undeclared plugins are checked when the job builds them).
    """

    kind: str
    name: str
    factory: Callable[..., Any] | str
    params: tuple[Param, ...] = ()
    doc: str = ""
    slots: tuple[Slot, ...] = ()
    provides: tuple[type, ...] = ()
    distribution: str = field(default="", compare=False)
    version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"plugin {self.name!r}: unknown kind {self.kind!r}; kinds: {KINDS}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"plugin {self.kind}/{self.name}: duplicate parameter names {names}")

    @property
    def origin(self) -> str:
        """``kind 'name' (distribution version)`` for messages about this plugin."""
        dist = f" ({self.distribution} {self.version})".replace(" )", ")") if (
            self.distribution) else ""
        return f"{self.kind} plugin {self.name!r}{dist}"

    def resolve(self) -> Callable[..., Any]:
        """The factory callable, importing it on first use when given as a string; a factory
        that does not import or resolve is a :class:`PluginError` naming the plugin."""
        if callable(self.factory):
            return self.factory
        module, _, attr = self.factory.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except BaseException as exc:  # noqa: BLE001 - SystemExit at import counts as broken too
            raise PluginError(f"{self.origin}: its factory {self.factory!r} does not import "
                              f"({type(exc).__name__}: {exc})") from None
        if not callable(obj):
            raise PluginError(f"{self.origin}: its factory {self.factory!r} is not callable")
        return obj

    def create(self, settings: Mapping[str, Any] | None = None, **extra: Any) -> Any:
        """Validate ``settings`` against the declared parameters and build the plugin object;
        a factory that raises is reported with the plugin's name and distribution."""
        values = check_params(self.params, settings or {}, f"{self.kind} {self.name!r}")
        factory = self.resolve()
        try:
            return factory(**values, **extra)
        except PcdkitError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise PluginError(f"{self.origin} failed to build: {type(exc).__name__}: "
                              f"{exc}") from exc

