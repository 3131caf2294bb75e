"""Provides a single timer thread that runs callbacks at given monotonic times."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Scheduler:
    """A heap of due times served by one thread, so waiting jobs hold no thread at all.

    Callbacks must be quick (they hand real work to an executor): a slow callback delays
    every timer behind it.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._counter = itertools.count()
        self._wakeup = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="fakeprovider-timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wakeup:
            self._stopped = True
            self._heap.clear()
            self._wakeup.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def clear(self) -> None:
        with self._wakeup:
            self._heap.clear()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback(*args)`` at monotonic time ``when`` (at once if it is past)."""
        with self._wakeup:
            if self._stopped:
                return
            heapq.heappush(self._heap, (when, next(self._counter), callback, args))
            if self._heap[0][0] == when:
                self._wakeup.notify()

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        self.call_at(time.monotonic() + delay, callback, *args)

    def pending(self) -> int:
        with self._wakeup:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._wakeup:
                while not self._stopped:
                    if not self._heap:
                        self._wakeup.wait()
                        continue
                    delay = self._heap[0][0] - time.monotonic()
                    if delay <= 0:
                        break
                    self._wakeup.wait(delay)
                if self._stopped:
                    return
                _, _, callback, args = heapq.heappop(self._heap)
            try:
                callback(*args)
            except Exception:  # a broken callback must not stop every later timer
                logger.exception("fake provider timer callback failed")
