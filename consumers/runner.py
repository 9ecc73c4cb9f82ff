"""The generic consumer loop: poll → handle a batch in one transaction → commit DB → commit offsets.

Offsets are committed only after the batch's writes are durable, and every
handler's writes are idempotent, so a crash or a redelivery never loses or
doubles a record.  A database outage pauses the partitions (staying in the
group) and retries the same batch until it succeeds; a record the handler
cannot take even on its own becomes a dead letter with the reason.

The loop owns its record source (:class:`RecordSource`; Kafka by default,
:mod:`consumers.kafka_source`), one sink (:class:`Sink`, one Kafka producer)
for its dead letters and whatever its handler publishes after a commit (the
flagger's alerts, the chain's refusals), and its database connection; tests
pass :mod:`consumers.testing`'s in-memory source and sink instead.  A source
that reports its log started over (a memory-only broker restarted, a topic
recreated) is reported loudly: a log line, ``rt_kafka_log_resets_total``, and
a row that ``/healthz`` shows.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka import KafkaConsumer
from kafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge

from consumers.kafka_source import KafkaSource, LogReset, make_kafka_consumer
from ingest.kafka_out import Outgoing, make_producer, send_all
from schemas.deadletter import deadletter_value
from schemas.errors import InvalidInput
from schemas.settings import Settings
from storage.db import Connection, connect, is_retriable
from storage.kafka_resets import record_reset

log = logging.getLogger(__name__)

RECORDS = Counter("rt_consumer_records_total", "Records handled", ["consumer"])
BATCHES = Counter("rt_consumer_batches_total", "Batches committed", ["consumer"])
DEADLETTERED = Counter("rt_consumer_deadlettered_total", "Records a consumer could not take", ["consumer"])
DB_DOWN = Gauge("rt_consumer_db_down", "1 while the consumer waits for the database", ["consumer"],
                multiprocess_mode="livemax")
LOG_RESETS = Counter("rt_kafka_log_resets_total", "Times a consumer found its Kafka log started over",
                     ["consumer", "topic", "reason"])
MAYBE_LOST = Counter("rt_kafka_records_maybe_lost_total",
                     "Records of a log that started over which the consumer had not read", ["consumer", "topic"])


class Record(Protocol):
    """A consumed record as every handler sees it.  kafka-python's ``Record`` is one as it
    stands (no copy a record); so is :class:`consumers.testing.TestRecord`."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def headers(self) -> Sequence[tuple[str, bytes | None]]: ...


class RecordSource(Protocol):
    """Where a consumer's records come from (:class:`consumers.kafka_source.KafkaSource`)."""

    def poll(self, timeout_ms: int, max_records: int) -> Sequence[Record]: ...

    def commit(self) -> None: ...

    def pause(self) -> list[Any]:
        """Pause every assigned partition; returns them, opaque, for :meth:`resume`."""
        ...

    def resume(self, partitions: list[Any]) -> None: ...

    def keep_alive(self, timeout_ms: int) -> None: ...

    def take_resets(self) -> list[LogReset]: ...

    def close(self) -> None: ...


class Sink(Protocol):
    """Where a loop's records go (its dead letters, and what its handler publishes): ``send_all``
    returns once Kafka has every record, so offsets are committed only after them."""

    def send_all(self, records: Sequence[Outgoing]) -> None: ...

    def close(self) -> None: ...


class KafkaSink:
    """A loop's one Kafka producer, made on first use."""

    def __init__(self, settings: Settings, client_id: str) -> None:
        self._settings = settings
        self._client_id = client_id
        self._producer: Any = None

    def _get(self) -> Any:
        if self._producer is None:
            self._producer = make_producer(self._settings, client_id=self._client_id)
        return self._producer

    def send_all(self, records: Sequence[Outgoing]) -> None:
        if records:
            send_all(self._get(), records, timeout_s=30, doing="sending a consumer's records")

    def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            producer.close(timeout=5)


class Handler(Protocol):
    """A consumer's logic.  Optionally it may also have ``tick(conn) -> result`` (idle-time work,
    run in a transaction on an empty poll at most every ``IDLE_TICK_S``, then ``after_commit``) and
    ``close()`` (called once when the loop stops).

    ``after_commit`` runs once the batch's transaction committed and before the offsets are: what a
    handler publishes (alerts from its outbox, dead letters it found) goes through the loop's one
    :class:`Sink`, whose ``send_all`` returns once Kafka has every record."""

    name: str

    def topics(self, settings: Settings) -> list[str]: ...

    def handle(self, conn: Connection, records: Sequence[Record]) -> Any: ...

    def after_commit(self, result: Any, out: Sink) -> None: ...


IDLE_TICK_S = 1.0


class PoisonRecord(InvalidInput):
    """Raised by a handler for a record that can never be written; it becomes a dead letter."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def make_consumer(handler: Handler, settings: Settings) -> KafkaConsumer:
    return make_kafka_consumer(handler.topics(settings), f"{settings.consumer_group_prefix}.{handler.name}",
                               f"rapidtrace-{handler.name}", settings)


class ConsumerLoop:
    """Runs one handler; ``run`` returns when ``stop`` is set (after finishing the batch in hand)."""

    def __init__(self, handler: Handler, settings: Settings, stop: threading.Event,
                 source: RecordSource | None = None, sink: Sink | None = None) -> None:
        self.handler = handler
        self.settings = settings
        self.stop = stop
        self._conn: Connection | None = None
        self._given_source = source
        self._source: RecordSource | None = None
        self._sink: Sink = sink or KafkaSink(settings, f"rapidtrace-{handler.name}")
        self._last_tick = 0.0

    # --- connections ---
    def _db(self) -> Connection:
        if self._conn is None or self._conn.closed:
            if not self.settings.database_url:
                raise ValueError("RT_DATABASE_URL is not set")
            self._conn = connect(self.settings.database_url, application_name=f"rapidtrace-{self.handler.name}")
        return self._conn

    def _drop_db(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception as exc:
                log.debug("closing a broken connection: %s", exc)
        self._conn = None

    def _dead_letter(self, record: Record, code: str, reason: str) -> None:
        value = deadletter_value("kafka", record.topic, record.value or b"", code, reason)
        self._sink.send_all([Outgoing(self.settings.topic_deadletter, record.topic.encode(), value)])
        DEADLETTERED.labels(self.handler.name).inc()
        log.warning("%s: dead-lettered %s[%d]@%d: %s", self.handler.name, record.topic, record.partition,
                    record.offset, reason)

    # --- one batch ---
    def _write(self, records: Sequence[Record]) -> Any:
        return self._transact(lambda conn: self.handler.handle(conn, records))

    def _transact(self, work: Callable[[Connection], Any]) -> Any:
        conn = self._db()
        try:
            result = work(conn)
            conn.commit()
            return result
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise

    def idle(self) -> None:
        """Run the handler's idle-time work (overdue deadlines, silent readers) between records."""
        tick = getattr(self.handler, "tick", None)
        if tick is None or time.monotonic() - self._last_tick < IDLE_TICK_S:
            return
        self._last_tick = time.monotonic()
        try:
            result = self._transact(tick)
        except Exception as exc:
            if not is_retriable(exc):
                log.exception("%s: idle-time work failed; it runs again on the next idle poll", self.handler.name)
            self._drop_db()
            return
        self.handler.after_commit(result, self._sink)

    def _write_one_by_one(self, records: Sequence[Record]) -> list[Any]:
        results = []
        for record in records:
            try:
                results.append(self._write([record]))
            except PoisonRecord as exc:
                self._dead_letter(record, exc.code, exc.reason)
            except Exception as exc:
                if is_retriable(exc):
                    raise
                self._dead_letter(record, "unwritable", f"{type(exc).__name__}: {exc}")
        return results

    def process(self, records: Sequence[Record]) -> None:
        """Write a batch durably (retrying while the database is away), then run after_commit."""
        attempt = 0
        while True:
            try:
                try:
                    results = [self._write(records)]
                except PoisonRecord:
                    results = self._write_one_by_one(records)
                except Exception as exc:
                    if is_retriable(exc):
                        raise
                    log.warning("%s: batch of %d failed (%s); isolating the bad record", self.handler.name,
                                len(records), exc)
                    results = self._write_one_by_one(records)
                DB_DOWN.labels(self.handler.name).set(0)
                break
            except Exception as exc:
                if not is_retriable(exc):
                    raise
                attempt += 1
                DB_DOWN.labels(self.handler.name).set(1)
                self._drop_db()
                delay = min(0.5 * 2 ** min(attempt, 5), 10.0)
                log.warning("%s: database unavailable (%s); retrying in %.1fs without committing",
                            self.handler.name, exc, delay)
                self._keep_membership(delay)
                if self.stop.is_set():
                    raise
        for result in results:
            self.handler.after_commit(result, self._sink)
        RECORDS.labels(self.handler.name).inc(len(records))
        BATCHES.labels(self.handler.name).inc()

    def _keep_membership(self, delay: float) -> None:
        """Wait out a database outage while still polling (paused) so the group keeps us."""
        source = self._source
        deadline = time.monotonic() + delay
        if source is None:
            self.stop.wait(delay)
            return
        assigned = source.pause()
        try:
            while time.monotonic() < deadline and not self.stop.is_set():
                source.keep_alive(200)
        finally:
            source.resume(assigned)

    # --- the loop ---
    def _make_source(self) -> RecordSource:
        if self._given_source is not None:
            return self._given_source
        s = self.settings
        return KafkaSource(self.handler.topics(s), f"{s.consumer_group_prefix}.{self.handler.name}",
                           f"rapidtrace-{self.handler.name}", s)

    def run(self) -> None:
        self._source = self._make_source()
        log.info("%s: consuming %s", self.handler.name, self.handler.topics(self.settings))
        try:
            while not self.stop.is_set():
                records = self._source.poll(self.settings.consumer_poll_timeout_ms, self.settings.consumer_batch_size)
                self._report_resets(self._source.take_resets())
                if not records:
                    self.idle()
                    continue
                try:
                    self.process(records)
                except Exception:
                    if self.stop.is_set():
                        break  # stopping mid-outage: nothing committed, the batch is redelivered
                    raise
                self._commit()
        finally:
            self._close()

    def _report_resets(self, resets: list[LogReset]) -> None:
        for reset in resets:
            LOG_RESETS.labels(self.handler.name, reset.topic, reset.reason).inc()
            MAYBE_LOST.labels(self.handler.name, reset.topic).inc(reset.records_maybe_lost)
            log.error("%s: KAFKA LOG RESET on %s partitions %s (%s): re-reading the new log from its start; "
                      "%d records of the old log were not read by this consumer and may be gone",
                      self.handler.name, reset.topic, list(reset.partitions), reset.reason, reset.records_maybe_lost)
            try:
                self._transact(lambda conn, r=reset: record_reset(  # type: ignore[misc]
                    conn, self.handler.name, r.topic, r.reason, list(r.partitions), r.records_maybe_lost))
            except Exception as exc:  # the log line and the metric stand; /healthz misses this one
                log.warning("%s: could not record the log reset: %s", self.handler.name, exc)
                self._drop_db()

    def _commit(self) -> None:
        assert self._source is not None
        try:
            self._source.commit()
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took our partitions; the writes are idempotent, the next owner re-reads.
            log.warning("%s: offset commit failed (%s); records will be redelivered", self.handler.name, exc)

    def _close(self) -> None:
        close = getattr(self.handler, "close", None)
        if close is not None:
            close()
        if self._source is not None:
            self._source.close()
            self._source = None
        self._sink.close()
        self._drop_db()

