"""Run directories: one per run, never reused, holding config, metrics, log and artifacts."""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pcdkit.atomic import atomic_write_text
from pcdkit.errors import PcdkitError


class RunDir:
    """The directory a run writes into; created fresh, never inside an input, never reused."""

    def __init__(self, path: Path, log_name: str = "log.txt") -> None:
        self.path = path
        self.log = logging.getLogger(f"pcdkit.run.{id(self)}")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        handler = logging.FileHandler(path / log_name, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.log.addHandler(handler)
        self._history_fields: list[str] | None = None

    @classmethod
    def resume(cls, path: str | Path, log_name: str = "log.txt") -> RunDir:
        """Reopen an earlier run directory to continue it (``--resume``)."""
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise PcdkitError(f"--resume {path}: not a pcdkit run directory (no config.yaml)")
        return cls(path, log_name)

    @classmethod
    def create(
        cls, name: str, out: str | Path | None = None, root: str | Path = "runs",
        inputs: Sequence[Path] = (),
    ) -> RunDir:
        """Make ``out`` (must be absent or empty) or ``root/<name>/<timestamp>``."""
        if out is not None:
            path = Path(out)
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise PcdkitError(f"--out {path}: already exists and is not empty; pcdkit never "
                                  "overwrites an earlier run (choose another directory)")
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            base = Path(root) / _safe(name)
            path = base / stamp
            n = 1
            while path.exists():
                path = base / f"{stamp}-{n}"
                n += 1
        resolved = path.resolve()
        for inp in inputs:
            inp = Path(inp).resolve()
            if resolved == inp or inp in resolved.parents:
                raise PcdkitError(f"run directory {path} would be inside the input {inp}; "
                                  "choose --out elsewhere")
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def write_config(self, config: Mapping[str, Any], name: str = "config.yaml") -> None:
        """Write the resolved configuration (``config.yaml``; resumes add their own file)."""
        with open(self.path / name, "w", encoding="utf-8") as f:
            yaml.safe_dump(dict(config), f, sort_keys=False)

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Write the final figures as ``metrics.json`` (atomically)."""
        return atomic_write_text(self.path / "metrics.json",
                                 json.dumps(_jsonable(metrics), indent=2) + "\n")

    def append_history(self, row: Mapping[str, Any], fields: Sequence[str] | None = None) -> None:
        """Append one row (e.g. one training step) to ``metrics.csv`` (header: ``fields``)."""
        file = self.path / "metrics.csv"
        if self._history_fields is None:
            self._history_fields = list(fields or row)
            if file.is_file():  # a resumed run keeps its history and header
                with open(file, encoding="utf-8") as f:
                    self._history_fields = next(csv.reader(f), self._history_fields)
            else:
                with open(file, "w", newline="", encoding="utf-8") as f:
                    csv.DictWriter(f, self._history_fields).writeheader()
        with open(file, "a", newline="", encoding="utf-8") as f:
            csv.DictWriter(f, self._history_fields, extrasaction="ignore").writerow(row)

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

    def close(self) -> None:
        """Close the log file."""
        for h in list(self.log.handlers):
            h.close()
            self.log.removeHandler(h)


def read_history(folder: Path) -> list[dict[str, str]]:
    """The rows of ``folder/metrics.csv`` (empty when there is none)."""
    file = folder / "metrics.csv"
    if not file.is_file():
        return []
    with open(file, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "run"


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value
