"""Pipeline YAML files: loading (safely), ``--set`` overrides, whole-file validation, JSON Schema.

A pipeline names a job and fills the job's slots with plugin sections::

    name: quickstart
    device: auto          # auto | cpu | cuda | cuda:N
    seed: 0
    job: {plugin: evaluate, batch_size: 4}
    dataset: {plugin: procedural, resolution: 10000}
    metrics: [chamfer, {plugin: p2m}]

A section is either a plugin name or a mapping with ``plugin:`` plus that plugin's settings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pcdkit import weights
from pcdkit.core.hookspecs import KINDS
from pcdkit.core.params import (
    SEED_MAX,
    Param,
    did_you_mean,
    param_schema,
    short_repr,
    validate_params,
)
from pcdkit.core.registry import Registry, default
from pcdkit.errors import ConfigError, PcdkitError
from pcdkit.plugin import PluginSpec, Slot

TOP_LEVEL = (
    Param("name", str, None, "run name; default: the pipeline file's stem"),
    Param("description", str, "", "free text, copied to the run directory"),
    Param("device", str, "auto", "auto | cpu | cuda | cuda:N (auto = CUDA when available)"),
    Param("seed", int, 0, "seed of every random generator; CPU runs are repeatable",
          minimum=0, maximum=SEED_MAX),
)
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


@dataclass
class Section:
    """A plugin chosen in a pipeline, with its validated settings."""

    spec: PluginSpec
    settings: dict[str, Any]

    def create(self, **extra: Any) -> Any:
        """Build the plugin object."""
        return self.spec.resolve()(**self.settings, **extra)

    def as_dict(self) -> dict[str, Any]:
        """The section as it would be written in YAML (defaults filled in)."""
        return {"plugin": self.spec.name, **{k: _plain(v) for k, v in self.settings.items()}}


@dataclass
class Pipeline:
    """A validated pipeline: top-level settings, the job, and the job's slots."""

    name: str
    device: str
    seed: int
    job: Section
    slots: dict[str, Section | list[Section] | None]
    description: str = ""
    source: Path | None = None
    input_paths: list[Path] = field(default_factory=list)

    def resolved(self) -> dict[str, Any]:
        """The full configuration with every default filled in (written to the run directory)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description,
                               "device": self.device, "seed": self.seed, "job": self.job.as_dict()}
        for key, sec in self.slots.items():
            if isinstance(sec, list):
                out[key] = [s.as_dict() for s in sec]
            else:
                out[key] = None if sec is None else sec.as_dict()
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


#: limits of a pipeline document: expanded nodes (aliases counted at every use, so a "billion
#: laughs" document is refused before it is built) and nesting depth
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64
MAX_PIPELINE_BYTES = 4 * 2**20


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses documents expanding past :data:`MAX_YAML_NODES` nodes or
    nested deeper than :data:`MAX_YAML_DEPTH` (raises ``yaml.YAMLError``)."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels") from None
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_size(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}  # expanded size per node; aliases share node objects

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_YAML_DEPTH:
            raise yaml.YAMLError(f"nested deeper than {MAX_YAML_DEPTH} levels")
        if id(node) in sizes:
            return sizes[id(node)]
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_YAML_NODES:
                raise yaml.YAMLError(f"the document expands to more than {MAX_YAML_NODES:,} "
                                     "values (aliases count at every use)")
        sizes[id(node)] = total
        return total

    size(root, 0)


def yaml_problem(exc: yaml.YAMLError) -> str:
    """`` line L, column C: invalid YAML: problem`` on one line."""
    mark = getattr(exc, "problem_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{where} invalid YAML: {problem}"


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a pipeline file with :func:`safe_yaml`; errors name the file (and line)."""
    path = Path(path)
    try:
        if not path.exists():
            raise PcdkitError(f"{path}: pipeline file not found")
        if not path.is_file():  # a FIFO or device would block the read forever
            raise PcdkitError(f"{path}: not a regular file")
        if path.stat().st_size > MAX_PIPELINE_BYTES:
            raise PcdkitError(f"{path}: {path.stat().st_size:,} bytes is too large for a "
                              f"pipeline file (at most {MAX_PIPELINE_BYTES:,})")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PcdkitError(f"{path}: cannot read pipeline file ({exc})") from None
    try:
        data = safe_yaml(text)
    except yaml.YAMLError as exc:
        raise PcdkitError(f"{path}:{yaml_problem(exc)}") from None
    if data is None:
        raise PcdkitError(f"{path}: the pipeline file is empty")
    if not isinstance(data, dict):
        raise PcdkitError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def apply_overrides(config: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides (value parsed as YAML; ``a.0.b`` indexes lists)."""
    config = copy.deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError([(item, "override must look like key.path=value")], "--set")
        try:
            value = safe_yaml(raw)
        except yaml.YAMLError:
            value = raw
        node: Any = config
        parts = key.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError([(key, f"{part!r} is not an index of a list of "
                                              f"{len(node)}")], "--set")
                idx = int(part)
                if last:
                    node[idx] = value
                else:
                    node[idx] = _as_section(node[idx])
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    child = node.get(part)
                    node[part] = {} if child is None else _as_section(child)
                    node = node[part]
            else:
                raise ConfigError([(key, f"cannot set inside a {type(node).__name__}")], "--set")
    return config


def _as_section(node: Any) -> Any:
    return {"plugin": node} if isinstance(node, str) else node


def _section(
    registry: Registry, kind: str, raw: Any, key: str, problems: list[tuple[str, str]]
) -> Section | None:
    if isinstance(raw, str):
        raw = {"plugin": raw}
    if not isinstance(raw, Mapping):
        problems.append((key, f"expected a {kind} plugin name or a mapping with 'plugin:', got "
                              f"{short_repr(raw)}"))
        return None
    name = raw.get("plugin")
    if not isinstance(name, str):
        names = registry.names(kind)
        problems.append((f"{key}.plugin", f"missing {kind} plugin name; available: "
                                          f"{', '.join(names) or 'none'}"))
        return None
    try:
        spec = registry.get(kind, name)
    except PcdkitError as exc:
        problems.append((f"{key}.plugin", str(exc)))
        return None
    given = {k: v for k, v in raw.items() if k != "plugin"}
    settings = validate_params(spec.params, given, f"{key}.", problems)
    try:
        spec.resolve()  # a factory that does not import fails here, before any run directory
    except PcdkitError as exc:
        problems.append((f"{key}.plugin", str(exc)))
    for p in spec.params:
        value = settings.get(p.name)
        if p.is_input and isinstance(value, Path) and str(value) in weights.ALIASES:
            try:  # a fetched release's name stands for its cached checkpoint
                settings[p.name] = weights.resolve(value)
            except PcdkitError as exc:
                problems.append((f"{key}.{p.name}", str(exc)))
        elif p.is_input and isinstance(value, Path) and not value.exists():
            problems.append((f"{key}.{p.name}", f"not found: {value} (relative paths are "
                                                f"resolved against the working directory, "
                                                f"{Path.cwd()})"))
    return Section(spec, settings)


def validate(
    config: Mapping[str, Any], *, source: str | Path | None = None, registry: Registry | None = None
) -> Pipeline:
    """Validate a whole pipeline mapping; every problem is reported at once with its key path."""
    registry = registry or default()
    problems: list[tuple[str, str]] = []
    top = {k: v for k, v in config.items() if k in {p.name for p in TOP_LEVEL}}
    values = validate_params(TOP_LEVEL, top, "", problems)
    device = values["device"]
    if isinstance(device, str) and not _DEVICE.match(device):
        problems.append(("device", f"expected auto, cpu, cuda or cuda:N, got {short_repr(device)}"))

    job = None
    if "job" not in config:
        problems.append(("job", f"missing; available jobs: {', '.join(registry.names('job'))}"))
    else:
        job = _section(registry, "job", config["job"], "job", problems)

    slots: dict[str, Section | list[Section] | None] = {}
    allowed = {p.name for p in TOP_LEVEL} | {"job"}
    if job is not None:
        for slot in job.spec.slots:
            allowed.add(slot.name)
            slots[slot.name] = _fill_slot(registry, slot, config, problems)
    for key in config:
        if key not in allowed:
            hint = did_you_mean(key, sorted(allowed))
            what = f"job {job.spec.name!r}" if job else "the pipeline"
            problems.append((key, f"unknown key for {what}{hint}; allowed: "
                                  f"{', '.join(sorted(allowed))}"))
    if problems:
        raise ConfigError(problems, source=str(source) if source else None)
    assert job is not None
    name = values["name"] or (Path(source).stem if source else job.spec.name)
    pipe = Pipeline(name=name, device=device, seed=values["seed"], job=job, slots=slots,
                    description=values["description"],
                    source=Path(source) if source else None)
    pipe.input_paths = _input_paths(pipe)
    check = getattr(job.spec.resolve(), "check", None)  # the job's own cross-section rules
    if check is not None and (problems := list(check(pipe))):
        raise ConfigError(problems, source=str(source) if source else None)
    return pipe


def _fill_slot(
    registry: Registry, slot: Slot, config: Mapping[str, Any], problems: list[tuple[str, str]]
) -> Section | list[Section] | None:
    raw = config.get(slot.name, slot.default)
    if raw is None:
        if slot.required:
            problems.append((slot.name, f"required section missing: a {slot.kind} plugin "
                                        f"({', '.join(registry.names(slot.kind))})"))
        return [] if slot.many else None
    if slot.many:
        if not isinstance(raw, list):
            problems.append((slot.name, f"expected a list of {slot.kind} plugins, got "
                                        f"{short_repr(raw)}"))
            return []
        secs = [_section(registry, slot.kind, r, f"{slot.name}[{i}]", problems)
                for i, r in enumerate(raw)]
        for i, sec in enumerate(secs):
            _check_provides(slot, sec, f"{slot.name}[{i}]", problems)
        return [s for s in secs if s is not None]
    sec = _section(registry, slot.kind, raw, slot.name, problems)
    _check_provides(slot, sec, slot.name, problems)
    return sec


def _check_provides(slot: Slot, sec: Section | None, key: str,
                    problems: list[tuple[str, str]]) -> None:
    """A plugin that declares its contracts must declare the one the slot needs."""
    if sec is None or slot.contract is None or not sec.spec.provides:
        return
    if not any(slot.contract in getattr(c, "__mro__", (c,)) for c in sec.spec.provides):
        given = ", ".join(c.__name__ for c in sec.spec.provides)
        problems.append((f"{key}.plugin", f"{sec.spec.origin} provides {given}; this slot needs a "
                                          f"{slot.contract.__name__} (pcdkit.contracts)"))


def _input_paths(pipe: Pipeline) -> list[Path]:
    sections = [pipe.job]
    for sec in pipe.slots.values():
        sections += sec if isinstance(sec, list) else ([sec] if sec else [])
    out = []
    for sec in sections:
        for p in sec.spec.params:
            value = sec.settings.get(p.name)
            if p.is_input and isinstance(value, Path):
                out.append(value)
    return out


def load(
    path: str | Path, overrides: Sequence[str] = (), registry: Registry | None = None
) -> Pipeline:
    """Load, override and validate a pipeline file."""
    config = apply_overrides(load_yaml(path), overrides)
    return validate(config, source=path, registry=registry)


def json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the pipeline format for the installed plugins."""
    registry = registry or default()
    defs: dict[str, Any] = {}
    for kind in KINDS:  # every plugin kind, so a new kind cannot be left out of the schema
        variants = []
        for name in registry.names(kind):
            spec = registry.get(kind, name)
            props = {"plugin": {"const": name, "description": spec.doc}}
            props |= {p.name: param_schema(p) for p in spec.params}
            required = ["plugin"] + [p.name for p in spec.params if p.required]
            variants.append({"type": "object", "properties": props, "required": required,
                             "additionalProperties": False})
            if not any(p.required for p in spec.params):
                variants.append({"const": name})
        defs[kind] = {"anyOf": variants} if variants else {"not": {}}
    properties: dict[str, Any] = {p.name: param_schema(p) for p in TOP_LEVEL}
    properties["device"]["pattern"] = _DEVICE.pattern
    properties["job"] = {"$ref": "#/$defs/job"}
    for name in registry.names("job"):
        for slot in registry.get("job", name).slots:
            ref = {"$ref": f"#/$defs/{slot.kind}"}
            sch = {"type": "array", "items": ref} if slot.many else {"anyOf": [ref,
                                                                              {"type": "null"}]}
            sch["description"] = slot.doc
            properties.setdefault(slot.name, sch)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pcdkit pipeline",
        "type": "object",
        "properties": properties,
        "required": ["job"],
        "additionalProperties": False,
        "$defs": defs,
    }
