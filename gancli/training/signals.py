"""SIGINT / SIGTERM → finish the current step, save a checkpoint, exit. A second Ctrl-C aborts at once."""

from __future__ import annotations

import signal
import threading


class StopOnSignal:
    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C: the user really wants out (saves are atomic regardless)
        self.signum = signum

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


class Deferred:
    """SIGINT / SIGTERM held back while a checkpoint is written: the write always completes, and the signal
    is delivered to whatever handled it before as soon as the write is done (a second Ctrl-C during the
    final save then interrupts after it, never in the middle)."""

    def __init__(self):
        self.pending: list[int] = []
        self._old: dict[int, object] = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, lambda signum, frame: self.pending.append(signum))
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        for signum in self.pending:
            handler = self._old.get(signum)
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL and signum == signal.SIGINT:
                raise KeyboardInterrupt
            elif handler == signal.SIG_DFL:
                raise SystemExit(128 + signum)
        return False
