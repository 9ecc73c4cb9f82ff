"""Restart whatever ``rapidtrace up`` started when it dies: embedded components and Python children.

A unit that dies is logged with its name, exit status and log, and restarted after a backoff
(1, 2, 4 … 30 s); a unit that ran for ``stable_s`` before dying starts again from 1 s.  A unit's
``restart`` may do more than start it again (Tansu: pause the Kafka clients, start, recreate the
topics, resume them).  Runs in the main thread: children die with the thread that spawned them.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0


def describe_exit(status: int | None) -> str:
    if status is None:
        return "exit status unknown"
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


@dataclass
class Unit:
    name: str
    alive: Callable[[], bool]
    exit_status: Callable[[], int | None]
    restart: Callable[[], None]
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    failures: int = 0
    restart_at: float | None = None
    restarts: int = 0


def backoff_s(failures: int) -> float:
    return float(min(2 ** max(failures - 1, 0), MAX_BACKOFF_S))


class Supervisor:
    def __init__(self, units: list[Unit], stable_s: float = 60.0, say: Callable[[str], None] | None = None) -> None:
        self.units = units
        self.stable_s = stable_s
        self._say = say or (lambda line: print(f"rapidtrace: {line}", file=sys.stderr, flush=True))
        self.periodic: list[Callable[[], None]] = []

    def tick(self, now: float | None = None) -> None:
        """Notice deaths, restart those whose backoff passed."""
        now = time.monotonic() if now is None else now
        for unit in self.units:
            if unit.restart_at is None:
                if unit.alive():
                    continue
                if now - unit.started_at >= self.stable_s:
                    unit.failures = 0  # it had been stable: this is a first failure again
                unit.failures += 1
                delay = backoff_s(unit.failures)
                unit.restart_at = now + delay
                self._say(f"{unit.name} died ({describe_exit(unit.exit_status())}); restarting in {delay:.0f}s "
                          f"(log: {unit.log_path})")
            elif now >= unit.restart_at:
                self._restart(unit)

    def _restart(self, unit: Unit) -> None:
        try:
            unit.restart()
        except Exception as exc:
            unit.failures += 1
            delay = backoff_s(unit.failures)
            unit.restart_at = time.monotonic() + delay
            self._say(f"{unit.name} did not restart ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__});"
                      f" next try in {delay:.0f}s")
            return
        unit.restart_at = None
        unit.started_at = time.monotonic()
        unit.restarts += 1
        self._say(f"{unit.name} restarted")

    def run(self, stop: Callable[[float], bool], interval_s: float = 0.5) -> None:
        """Tick until ``stop(interval)`` (e.g. ``threading.Event.wait``) returns True."""
        while not stop(interval_s):
            self.tick()
            for check in self.periodic:
                try:
                    check()
                except Exception as exc:
                    log.debug("periodic check failed: %s", exc)
