"""``rapidtrace consume NAME...``: run consumers, each in its own thread, until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading

from consumers.registry import build
from consumers.runner import ConsumerLoop
from schemas.settings import Settings

log = logging.getLogger(__name__)


def start_consumers(names: list[str], settings: Settings, stop: threading.Event) -> list[threading.Thread]:
    threads = []
    for name in names:
        loop = ConsumerLoop(build(name, settings), settings, stop)
        thread = threading.Thread(target=_guarded, args=(loop, stop), name=f"consumer-{name}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads


def _guarded(loop: ConsumerLoop, stop: threading.Event) -> None:
    """Restart a consumer that failed unexpectedly, after a pause, until asked to stop."""
    while not stop.is_set():
        try:
            loop.run()
        except Exception:
            log.exception("consumer %s failed; restarting in 2s (uncommitted records are redelivered)",
                          loop.handler.name)
            stop.wait(2)


def run_consumers(names: list[str], settings: Settings, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    threads = start_consumers(names, settings, stop)
    stop.wait()
    for thread in threads:
        thread.join(timeout=30)
