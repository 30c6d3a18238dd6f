"""Run directories: one per run, never reused, holding config, metrics, log and artifacts."""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pcdkit.core.atomic import atomic_write_text
from pcdkit.errors import PcdkitError

#: file that marks a folder as claimed by one pcdkit run (created with O_EXCL)
MARKER = ".pcdkit-run"
#: written when a run fails after its job started (removed by a successful resume)
FAILED = "FAILED.txt"
_MAX_NAME = 100


class RunDir:
    """The directory a run writes into; created fresh, never inside an input, never reused.

    While a run is open its directory is locked (``flock`` on the marker file), so a second
    ``--resume`` of the same run is refused instead of racing the first.
    """

    def __init__(self, path: Path, log_name: str = "log.txt", lock: bool = False) -> None:
        self.path = path
        self._lock = _lock(path) if lock else None
        self.log = logging.getLogger(f"pcdkit.run.{id(self)}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        handler = logging.FileHandler(path / log_name, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.log.addHandler(handler)
        self._history_fields: list[str] | None = None

    @classmethod
    def resume(cls, path: str | Path, log_name: str = "log.txt") -> RunDir:
        """Reopen an earlier run directory to continue it (``--resume``), locked; temporary
        files of a killed writer are removed."""
        path = Path(path)
        if not path.is_dir() or not (path / "config.yaml").is_file():
            raise PcdkitError(f"--resume {path}: not a pcdkit run directory (no config.yaml)")
        run = cls(path, log_name, lock=True)
        for tmp in path.rglob(".*.tmp"):  # atomic writes in flight when the run was killed
            tmp.unlink(missing_ok=True)
        (path / FAILED).unlink(missing_ok=True)
        return run

    @classmethod
    def create(
        cls, name: str, out: str | Path | None = None, root: str | Path = "runs",
        inputs: Sequence[Path] = (),
    ) -> RunDir:
        """Make ``out`` (must be absent or empty) or ``root/<name>/<timestamp>[-n]``.

        Claiming is atomic (``mkdir`` without ``exist_ok``, then an ``O_EXCL`` marker), so
        simultaneous runs never share a directory.
        """
        try:
            if out is not None:
                path = Path(out)
                _check_outside(path, inputs)
                if path.exists() and (not path.is_dir() or any(path.iterdir())):
                    raise PcdkitError(f"--out {path}: already exists and is not empty; pcdkit "
                                      "never overwrites an earlier run (choose another "
                                      "directory)")
                path.mkdir(parents=True, exist_ok=True)
                if not _claim(path):
                    raise PcdkitError(f"--out {path}: another run claimed it at the same time")
            else:
                stamp = time.strftime("%Y%m%d-%H%M%S")
                base = Path(root) / _safe(name)
                _check_outside(base / stamp, inputs)
                base.mkdir(parents=True, exist_ok=True)
                path, n = base / stamp, 1
                while True:
                    try:
                        path.mkdir()
                        if _claim(path):
                            break
                    except FileExistsError:
                        pass
                    path, n = base / f"{stamp}-{n}", n + 1
        except OSError as exc:
            where = exc.filename or out or root
            raise PcdkitError(f"{where}: cannot create the run directory "
                              f"({exc.strerror or exc})") from None
        return cls(path, lock=True)

    def write_config(self, config: Mapping[str, Any], name: str = "config.yaml") -> None:
        """Write the resolved configuration (``config.yaml``; resumes add their own file)."""
        with open(self.path / name, "w", encoding="utf-8") as f:
            yaml.safe_dump(dict(config), f, sort_keys=False)

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Write the final figures as ``metrics.json`` (atomically)."""
        return atomic_write_text(self.path / "metrics.json",
                                 json.dumps(jsonable(metrics), indent=2) + "\n")

    def append_history(self, row: Mapping[str, Any], fields: Sequence[str] | None = None) -> None:
        """Append one row (e.g. one training step) to ``metrics.csv`` (header: ``fields``)."""
        file = self.path / "metrics.csv"
        if self._history_fields is None:
            self._history_fields = list(fields or row)
            if file.is_file():  # a resumed run keeps its history and header
                with open(file, newline="", encoding="utf-8") as f:
                    reader = csv.DictReader(f)
                    old = list(reader)
                    header = list(reader.fieldnames or [])
                added = [c for c in self._history_fields if c not in header]
                self._history_fields = header + added
                if added:  # a resume that logs more columns: widen the header, keep the rows
                    buf = io.StringIO()
                    writer = csv.DictWriter(buf, self._history_fields)
                    writer.writeheader()
                    writer.writerows(old)
                    atomic_write_text(file, buf.getvalue())
            else:
                with open(file, "w", newline="", encoding="utf-8") as f:
                    csv.DictWriter(f, self._history_fields).writeheader()
        with open(file, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, self._history_fields, extrasaction="ignore").writerow(row)

    def last_history_row(self) -> dict[str, float]:
        """The last row of ``metrics.csv`` as numbers (empty cells left out); {} if none."""
        file = self.path / "metrics.csv"
        if not file.is_file():
            return {}
        with open(file, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        out: dict[str, float] = {}
        for key, value in (rows[-1] if rows else {}).items():
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                continue
        return out

    def truncate_history(self, step: int) -> None:
        """Drop ``metrics.csv`` rows after ``step``: a resumed run re-logs the steps it redoes."""
        file = self.path / "metrics.csv"
        if not file.is_file():
            return
        with open(file, newline="", encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        header = next(csv.reader(lines[:1]), [])
        if "step" not in header:
            return
        col = header.index("step")

        def after(line: str) -> bool:
            fields = next(csv.reader([line]), [])
            return len(fields) > col and fields[col].isdigit() and int(fields[col]) > step

        kept = [line for line in lines[1:] if not after(line)]
        atomic_write_text(file, "".join(lines[:1] + kept))

    def artifact(self, name: str) -> Path:
        """Path for an artifact inside the run directory (sub-folders created)."""
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def mark_failed(self, message: str) -> None:
        """Leave ``FAILED.txt`` saying why the run stopped (a resume removes it)."""
        atomic_write_text(self.path / FAILED, message.rstrip() + "\n")

    def close(self) -> None:
        """Close the log file and release the lock."""
        for h in list(self.log.handlers):
            h.close()
            self.log.removeHandler(h)
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the flock
            self._lock = None


def read_history(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/metrics.csv`` (empty when there is none)."""
    file = folder / "metrics.csv"
    if not file.is_file():
        return []
    with open(file, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _safe(name: str) -> str:
    """A single path component from a run name: no separators, no leading dots ('..')."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".")
    return safe[:_MAX_NAME] or "run"


def _check_outside(path: Path, inputs: Sequence[Path]) -> None:
    resolved = path.resolve()
    for inp in inputs:
        inp = Path(inp).resolve()
        if resolved == inp or inp in resolved.parents:
            raise PcdkitError(f"run directory {path} would be inside the input {inp}; "
                              "choose --out elsewhere")


def _claim(path: Path) -> bool:
    try:
        os.close(os.open(path / MARKER, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def _lock(path: Path) -> int | None:
    """An exclusive ``flock`` on the run's marker, or a PcdkitError if another process holds
    it (None where the platform has no flock)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, runs are still claimed atomically
        return None
    fd = os.open(path / MARKER, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise PcdkitError(f"{path}: another pcdkit process is using this run directory "
                          "right now; wait for it to finish (or stop it) first") from None
    return fd


def jsonable(value: Any) -> Any:
    """``value`` with paths, tensors' scalars and non-finite floats made JSON/YAML-safe."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value
