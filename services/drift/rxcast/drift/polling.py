"""A round of work repeated every `interval` seconds on a daemon thread: the
drift service's calls to the feature service (actuals, days to judge)."""

from __future__ import annotations

import threading

from rxcast.runtime.errors import RxcastError
from rxcast.runtime.logs import get_logger

log = get_logger("rxcast.drift.polling")


class Poller:
    """Calls `poll_once` every `interval` seconds until stopped. A failed round
    is logged and the next one tries again: a dependency that is down for a
    while delays the work, it does not stop it."""

    def __init__(self, name: str, interval: float):
        self.name = name
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"drift-{name}", daemon=True)

    def poll_once(self) -> object:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the rounds use (called once the thread stopped)."""

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        self.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except RxcastError as exc:
                log.warning("round failed", poller=self.name, reason=exc.message)
            except Exception:
                log.exception("round failed", poller=self.name)
