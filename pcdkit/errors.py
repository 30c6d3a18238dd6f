"""Exception types that the CLI turns into a message and exit code 2 (user error), and the
signal stop of a training run (exit code 128 + signal)."""

from __future__ import annotations

import signal


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


class Interrupted(Exception):  # noqa: N818 - the name says what happened, not an error class
    """Training stopped on a signal after saving its state (the CLI exits with 128 + signal).

    ``run_path`` is what ``--resume`` continues; ``where`` the run that was training (a member
    of a ``seeds`` sweep is resumed through the sweep's directory).
    """

    def __init__(self, signum: int, step: int, run_path: object, where: object = None) -> None:
        self.signum, self.step, self.run_path = signum, step, str(run_path)
        self.where = str(where if where is not None else run_path)
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step} of "
                         f"{self.where} (state saved): continue with --resume {self.run_path}")
