"""Declared plugin parameters: types, defaults and docs, with validation and JSON Schema export."""

from __future__ import annotations

import contextlib
import difflib
import math
import reprlib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from pcdkit.errors import ConfigError


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Param:
    """One setting of a plugin.

    ``type`` is a Python annotation (``int``, ``float``, ``bool``, ``str``, ``Path``,
    ``Literal[...]``, ``list[T]``, ``T | None``, ``dict``, ``Any``). ``is_input`` marks paths the
    job reads, so run directories are never created inside them.
    """

    name: str
    type: Any
    default: Any = REQUIRED
    doc: str = ""
    minimum: float | None = None
    maximum: float | None = None
    is_input: bool = False

    @property
    def required(self) -> bool:
        """True when the parameter has no default."""
        return self.default is REQUIRED


def type_name(tp: Any) -> str:
    """Readable name of a parameter type, as shown in errors and ``plugins show``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return "any"
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin in (list, Sequence, tuple):
        inner = type_name(args[0]) if args else "any"
        return f"list[{inner}]"
    if origin in (dict, Mapping) or tp is dict:
        return "mapping"
    if tp is Path:
        return "path"
    return getattr(tp, "__name__", str(tp))


def short_repr(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a YAML alias bomb must not print GBs)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict = 3, 6, 6
    short.maxstring = short.maxother = limit
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


INT64 = 2 ** 63  # torch and NumPy seeds and sizes are 64-bit
#: largest seed: jobs derive further seeds from it (seed * 1000 + rank) within torch's 64 bits
SEED_MAX = 2 ** 32 - 1


def coerce(value: Any, tp: Any, key: str, problems: list[tuple[str, str]]) -> Any:
    """Check ``value`` against ``tp``; append ``(key, message)`` to ``problems`` when it fails."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = (key, f"expected {type_name(tp)}, got {short_repr(value)} ({type(value).__name__})")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            trial: list[tuple[str, str]] = []
            out = coerce(value, arg, key, trial)
            if not trial:
                return out
        problems.append(bad)
        return value
    if origin is Literal:
        if value in args:
            return value
        hint = _did_you_mean(value, [str(a) for a in args])
        allowed = ", ".join(repr(a) for a in args)
        problems.append((key, f"expected one of {allowed}, got {short_repr(value)}{hint}"))
        return value
    if origin in (list, Sequence, tuple):
        if isinstance(value, (list, tuple)):
            inner = args[0] if args else Any
            return [coerce(v, inner, f"{key}[{i}]", problems) for i, v in enumerate(value)]
        problems.append(bad)
        return value
    if origin in (dict, Mapping) or tp is dict:
        if isinstance(value, Mapping):
            return dict(value)
        problems.append(bad)
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        problems.append(bad)
        return value
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT64 <= value < INT64:
                problems.append((key, f"must fit in 64 bits, got {short_repr(value)}"))
            return value
        problems.append(bad)
        return value
    if tp is float:
        out = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out = float(value) if abs(value) < 1e308 else math.inf
        elif isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
            with contextlib.suppress(ValueError):
                out = float(value)
        if out is None:
            problems.append(bad)
            return value
        if not math.isfinite(out):  # NaN passes every range check; inf is never meant
            problems.append((key, f"expected a finite number, got {short_repr(value)}"))
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        problems.append(bad)
        return value
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value).expanduser()
        problems.append(bad)
        return value
    raise TypeError(f"unsupported parameter type {tp!r} for {key}")


def _did_you_mean(word: Any, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word)[:100], list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def did_you_mean(word: Any, options: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for near misses, or an empty string."""
    return _did_you_mean(word, options)


def validate_params(
    params: Sequence[Param], given: Mapping[str, Any], prefix: str, problems: list[tuple[str, str]]
) -> dict[str, Any]:
    """Validate ``given`` against ``params``; unknown keys, missing required keys and types."""
    known = {p.name: p for p in params}
    out: dict[str, Any] = {}
    for key in given:
        if key not in known:
            problems.append(
                (f"{prefix}{key}", f"unknown setting{_did_you_mean(key, known)}; "
                 f"known: {', '.join(known) or 'none'}")
            )
    for p in params:
        path = f"{prefix}{p.name}"
        if p.name in given:
            value = coerce(given[p.name], p.type, path, problems)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if p.minimum is not None and value < p.minimum:
                    problems.append((path, f"must be >= {p.minimum}, got {value}"))
                if p.maximum is not None and value > p.maximum:
                    problems.append((path, f"must be <= {p.maximum}, got {value}"))
            out[p.name] = value
        elif p.required:
            problems.append((path, f"required setting missing ({type_name(p.type)}: {p.doc})"))
        else:
            out[p.name] = p.default
    return out


def check_params(params: Sequence[Param], given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate and fill defaults, raising :class:`ConfigError` with every problem at once."""
    problems: list[tuple[str, str]] = []
    out = validate_params(params, given, "", problems)
    if problems:
        raise ConfigError(problems, source=where)
    return out


def json_schema_of(tp: Any) -> dict[str, Any]:
    """JSON Schema fragment for a parameter type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        return {"anyOf": [json_schema_of(a) for a in args]}
    if tp is type(None):
        return {"type": "null"}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (list, Sequence, tuple):
        return {"type": "array", "items": json_schema_of(args[0]) if args else {}}
    if origin in (dict, Mapping) or tp is dict:
        return {"type": "object"}
    simple = {bool: "boolean", int: "integer", float: "number", str: "string", Path: "string"}
    return {"type": simple[tp]}


def param_schema(p: Param) -> dict[str, Any]:
    """JSON Schema of one parameter, with its doc and default."""
    out = json_schema_of(p.type)
    if p.doc:
        out["description"] = p.doc
    if not p.required:
        default = p.default
        out["default"] = str(default) if isinstance(default, Path) else default
    if p.minimum is not None:
        out["minimum"] = p.minimum
    if p.maximum is not None:
        out["maximum"] = p.maximum
    return out
