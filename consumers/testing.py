"""In-memory stand-ins for the runner's Kafka source and dead-letter sink (tests, benches).

    source = MemorySource([record("rt.readings.v1", value) for value in values])
    sink = MemorySink()
    ConsumerLoop(handler, settings, stop, source=source, sink=sink).run()

``MemorySource`` hands out its records in batches, remembers what was committed, can be told to
replay from the last commit (a crash) and to report a log reset; ``stop_when_drained`` sets the
loop's stop event once everything was committed.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from consumers.kafka_source import LogReset
from ingest.kafka_out import Outgoing


@dataclass(frozen=True, slots=True)
class TestRecord:
    """A record as :class:`consumers.runner.Record` describes it, without a broker."""

    topic: str
    value: bytes | None
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    headers: Sequence[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int = 1_764_000_000_000

    __test__ = False  # not a pytest test class


def record(topic: str, value: bytes, *, offset: int = 0, partition: int = 0, key: bytes | None = None,
           headers: Sequence[tuple[str, bytes | None]] | None = None,
           timestamp_ms: int = 1_764_000_000_000) -> TestRecord:
    return TestRecord(topic, value, partition, offset, key, list(headers or []), timestamp_ms)


class MemorySource:
    def __init__(self, records: list[TestRecord], *, stop_when_drained: threading.Event | None = None) -> None:
        self.records = list(records)
        self.position = 0
        self.committed = 0
        self.commits = 0
        self.paused = False
        self.closed = False
        self._resets: list[LogReset] = []
        self._stop_when_drained = stop_when_drained

    def add(self, *records: TestRecord) -> None:
        self.records.extend(records)

    def report_reset(self, reset: LogReset) -> None:
        self._resets.append(reset)

    def replay(self) -> None:
        """Go back to the last commit, as a restarted consumer would."""
        self.position = self.committed

    # --- RecordSource ---
    def poll(self, timeout_ms: int, max_records: int) -> list[TestRecord]:
        if self.paused:
            return []
        batch = self.records[self.position:self.position + max_records]
        self.position += len(batch)
        if not batch and self._stop_when_drained is not None and self.committed == len(self.records):
            self._stop_when_drained.set()
        return batch

    def commit(self) -> None:
        self.committed = self.position
        self.commits += 1

    def pause(self) -> list[Any]:
        self.paused = True
        return []

    def resume(self, partitions: list[Any]) -> None:
        self.paused = False

    def keep_alive(self, timeout_ms: int) -> None:
        threading.Event().wait(min(timeout_ms, 50) / 1000)

    def take_resets(self) -> list[LogReset]:
        resets, self._resets = self._resets, []
        return resets

    def close(self) -> None:
        self.closed = True


class MemorySink:
    """What a loop produces (its dead letters, its handler's records) kept in a list of
    ``(topic, key, value)``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    def send_all(self, records: Sequence[Outgoing]) -> None:
        self.sent.extend((r.topic, r.key or b"", r.value) for r in records)

    def on(self, topic: str) -> list[tuple[str, bytes, bytes]]:
        return [s for s in self.sent if s[0] == topic]

    def close(self) -> None:
        return None
