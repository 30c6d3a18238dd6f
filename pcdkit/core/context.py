"""The contract between the runner and a job plugin."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch
from tqdm.auto import tqdm

from pcdkit.contracts import satisfies
from pcdkit.core.pipeline import Pipeline, Section
from pcdkit.core.rundir import RunDir
from pcdkit.errors import PluginError

T = TypeVar("T")
#: seconds between progress lines when stderr is not a terminal
PROGRESS_EVERY = 60.0


def _progress_lines(items: Iterable[T], desc: str, total: int | None,
                    every: float) -> Iterator[T]:
    start = last = time.monotonic()
    for done, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= every:
            last = now
            rate = done / (now - start)
            left = f", about {(total - done) / rate / 60:.1f} min left" if total else ""
            of = f"/{total}" if total else ""
            print(f"pcdkit: {desc} {done}{of} after {(now - start) / 60:.1f} min{left}",
                  file=sys.stderr, flush=True)


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
        """Instantiate the plugin(s) of a slot (a list for ``many`` slots, None when empty),
        each checked against the slot's contract."""
        sec = self.pipeline.slots.get(slot)
        if sec is None:
            return None
        spec = next((s for s in self.pipeline.job.spec.slots if s.name == slot), None)
        contract = spec.contract if spec is not None else None

        def make(section: Section) -> Any:
            obj = section.create(**extra)
            missing = satisfies(obj, contract) if contract is not None else []
            if missing:
                raise PluginError(f"{section.spec.origin} cannot fill `{slot}`: the job needs "
                                  f"a {contract.__name__} (pcdkit.contracts), and the object "
                                  f"lacks {', '.join(missing)}")
            return obj

        return [make(s) for s in sec] if isinstance(sec, list) else make(sec)

    def generator_for(self, stream: str, index: int = 0) -> torch.Generator:
        """A CPU generator for one named random stream of this run (e.g. ``"training"``),
        seeded by a hash of (pipeline seed, stream, index, rank): streams never overlap, a new
        stream does not shift the others, and draws are the same on every device (made on the
        CPU, then moved)."""
        key = f"{self.pipeline.seed}/{stream}/{index}/{self.rank}".encode()
        seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
        return torch.Generator().manual_seed(seed >> 1)

    def section(self, slot: str) -> Section | list[Section] | None:
        """The validated section(s) of a slot."""
        return self.pipeline.slots.get(slot)

    def progress(self, items: Iterable[T], desc: str, total: int | None = None) -> Iterable[T]:
        """A progress bar on a terminal; elsewhere (a log file, a batch system) one progress
        line on stderr every :data:`PROGRESS_EVERY` seconds; nothing when quiet."""
        if self.quiet:
            return items
        if sys.stderr.isatty():
            return tqdm(items, desc=desc, total=total, leave=False)
        return _progress_lines(items, desc, total, PROGRESS_EVERY)


class Job(Protocol):
    """A job plugin object: ``run`` returns the final metrics written to ``metrics.json``."""

    def run(self, ctx: JobContext) -> dict[str, Any]:
        """Execute the job."""
        ...
