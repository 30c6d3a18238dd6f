"""Stop requests by signal: SIGTERM (schedulers, ``kill``) and SIGINT (Ctrl-C) let a training
loop finish its step and save its state instead of dying between checkpoints."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class StopRequest:
    """The first stop signal received while a loop runs (``None``: none yet)."""

    signum: int | None = None


@contextmanager
def stop_requests() -> Iterator[StopRequest]:
    """Catch SIGTERM and SIGINT while the block runs; the loop polls the returned request.

    A second Ctrl-C aborts at once (KeyboardInterrupt). Outside the main thread, where Python
    cannot install handlers, nothing is caught and the request stays empty.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if request.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if request.signum is None:
            request.signum = signum
            print(f"pcdkit: {signal.Signals(signum).name} received: stopping after this step "
                  "(state saved; Ctrl-C again aborts at once)", file=sys.stderr, flush=True)

    previous = {s: signal.signal(s, handle) for s in STOP_SIGNALS}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
