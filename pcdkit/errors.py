"""Exception types that the CLI turns into a message and exit code 2 (user error)."""

from __future__ import annotations


class PcdkitError(Exception):
    """Base class of every error caused by user input (files, YAML, flags, plugin set-up)."""


class ConfigError(PcdkitError):
    """A pipeline or plugin setting is invalid; ``problems`` lists every ``(key_path, message)``."""

    def __init__(self, problems: list[tuple[str, str]], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        lines = [f"{head}{key or '<top level>'}: {msg}" for key, msg in self.problems]
        super().__init__("\n".join(lines))


class PluginError(PcdkitError):
    """A plugin is unknown, broken, or claimed twice."""


class DataError(PcdkitError):
    """A data file is missing, malformed, truncated, empty or holds non-finite values."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
