"""Progress of long commands (simulate, bench, chain load): a bar with rate and ETA on a terminal
(``rich``), a plain line every few seconds otherwise (logs, CI, pipes).

    with open_progress("simulate", total=10_000, unit="readings") as bar:
        for i in range(10_000):
            ...
            bar.update(i + 1, extra="outstanding 12")
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _RateColumn(ProgressColumn):
    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed is not None else f"? {self.unit}/s")


class ProgressReport:
    """Base: count ``done`` of ``total`` (None: unknown) under ``label``."""

    def __init__(self, label: str, total: int | None, unit: str) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.done = 0
        self.started = time.monotonic()

    def update(self, done: int, extra: str = "") -> None:
        self.done = done

    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class BarProgress(ProgressReport):
    """A ``rich`` bar: done/total, rate, elapsed, ETA."""

    def __init__(self, label: str, total: int | None, unit: str, stream: TextIO) -> None:
        super().__init__(label, total, unit)
        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _RateColumn(unit),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[extra]}"),
            console=Console(file=stream), transient=False,
        )
        self._bar.start()
        self._task = self._bar.add_task(label, total=total, extra="")

    def update(self, done: int, extra: str = "") -> None:
        super().update(done)
        self._bar.update(self._task, completed=done, extra=extra)

    def close(self) -> None:
        self._bar.stop()


class LineProgress(ProgressReport):
    """One plain line every ``every_s`` seconds and one at the end."""

    def __init__(self, label: str, total: int | None, unit: str, stream: TextIO, every_s: float = 5.0) -> None:
        super().__init__(label, total, unit)
        self.stream, self.every_s = stream, every_s
        self._last_at, self._last_done, self._extra = self.started, 0, ""

    def update(self, done: int, extra: str = "") -> None:
        super().update(done)
        self._extra = extra
        if time.monotonic() - self._last_at >= self.every_s:
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        recent = (self.done - self._last_done) / max(now - self._last_at, 1e-9)
        mean = self.done / max(elapsed, 1e-9)
        of = f"/{self.total:,}" if self.total else ""
        eta = ""
        if self.total and mean > 0:
            eta = f" ETA {max(self.total - self.done, 0) / mean:,.0f}s"
        extra = f" {self._extra}" if self._extra else ""
        print(f"{self.label}: {elapsed:7.1f}s {self.done:,}{of} {self.unit} rate {recent:,.0f}/s "
              f"(mean {mean:,.0f}/s){eta}{extra}", file=self.stream, flush=True)
        self._last_at, self._last_done = now, self.done

    def close(self) -> None:
        self._line()


def open_progress(label: str, total: int | None = None, *, unit: str = "msgs", stream: TextIO | None = None,
                  every_s: float = 5.0) -> ProgressReport:
    """A bar where ``stream`` (default stderr) is a terminal, plain lines otherwise."""
    stream = stream or sys.stderr
    if stream.isatty():
        return BarProgress(label, total, unit, stream)
    return LineProgress(label, total, unit, stream, every_s)
