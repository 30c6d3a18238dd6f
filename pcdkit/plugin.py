"""What a plugin author imports: the spec types, :class:`Param`, and the ``hookimpl`` marker."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pcdkit.hookspecs import KINDS, hookimpl
from pcdkit.params import REQUIRED, Param, check_params

__all__ = ["KINDS", "REQUIRED", "Param", "PluginSpec", "Slot", "hookimpl"]


@dataclass(frozen=True)
class Slot:
    """A section of a pipeline that a job fills with plugins of one kind.

    ``many`` slots take a list of plugin sections; ``default`` is used when the section is absent.
    """

    name: str
    kind: str
    required: bool = True
    many: bool = False
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class PluginSpec:
    """A named, documented plugin of one kind.

    ``factory`` is called with the validated settings (and, for jobs, nothing else: the job gets its
    components at run time). It may be a callable or a lazy ``"package.module:attribute"`` string,
    so that listing plugins never imports their heavy dependencies.
    """

    kind: str
    name: str
    factory: Callable[..., Any] | str
    params: tuple[Param, ...] = ()
    doc: str = ""
    slots: tuple[Slot, ...] = ()
    distribution: str = field(default="", compare=False)
    version: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"plugin {self.name!r}: unknown kind {self.kind!r}; kinds: {KINDS}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"plugin {self.kind}/{self.name}: duplicate parameter names {names}")

    def resolve(self) -> Callable[..., Any]:
        """The factory callable, importing it on first use when given as a string."""
        if callable(self.factory):
            return self.factory
        module, _, attr = self.factory.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj

    def create(self, settings: Mapping[str, Any] | None = None, **extra: Any) -> Any:
        """Validate ``settings`` against the declared parameters and build the plugin object."""
        values = check_params(self.params, settings or {}, f"{self.kind} {self.name!r}")
        return self.resolve()(**values, **extra)
