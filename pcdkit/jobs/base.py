"""The contract between the runner and a job plugin."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from tqdm.auto import tqdm

from pcdkit.pipeline import Pipeline, Section
from pcdkit.rundir import RunDir

T = TypeVar("T")


@dataclass
class JobContext:
    """Everything a job gets: its pipeline, device, seeded generator and run directory."""

    pipeline: Pipeline
    device: torch.device
    generator: torch.Generator
    run: RunDir
    quiet: bool = False
    rank: int = 0
    world_size: int = 1
    resume: bool = False

    @property
    def is_primary(self) -> bool:
        """True on the process that writes results (rank 0)."""
        return self.rank == 0

    def build(self, slot: str, **extra: Any) -> Any:
        """Instantiate the plugin(s) of a slot (a list for ``many`` slots, None when empty)."""
        sec = self.pipeline.slots.get(slot)
        if sec is None:
            return None
        if isinstance(sec, list):
            return [s.create(**extra) for s in sec]
        return sec.create(**extra)

    def section(self, slot: str) -> Section | list[Section] | None:
        """The validated section(s) of a slot."""
        return self.pipeline.slots.get(slot)

    def progress(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        """A progress bar on stderr (disabled when quiet or not a terminal)."""
        return tqdm(items, desc=desc, total=total, disable=self.quiet or not sys.stderr.isatty(),
                    leave=False)


class Job(Protocol):
    """A job plugin object: ``run`` returns the final metrics written to ``metrics.json``."""

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Execute the job."""
        ...
