"""``readings``: store and judge every reading in one consumer group, one transaction a batch.

The reading store (:mod:`consumers.reading_store`) and the flagger (:mod:`consumers.flagger`) can
run as two consumer groups, each reading every record from Kafka, parsing it and claiming its id.
This consumer does it once: one poll, one parse, one claim of the ids (by the store), the rows,
verdicts and failures of a batch committed together, then the flagger's outbox publishes the
alerts before the runner commits offsets.  A conflicting ``reading_id`` aborts the batch's
transaction (:class:`consumers.runner.PoisonRecord`); the runner writes it record by record and
dead-letters the conflicting one, as the store alone does.

Storing never waits on judging: the verdicts are written under a savepoint, and a batch whose
judging fails (a defect, not a database outage) is stored all the same and judged reading by
reading; a reading that still cannot be judged stays stored without a verdict (the readings list
shows it unjudged), is logged and counted in ``rt_judging_failed_total``, and is judged once the
defect is fixed by running ``rapidtrace consume flagger`` over the topic from its start (a group
that has not read it: verdicts already written are not written again).

This is the deployment's consumer (``rapidtrace up``, ``docker-compose.yml``): measured side by side
on 2026-12-01 (``rapidtrace bench --judging together|separate``, two runs each, alternating), it
stored and judged 6,632 and 6,250 readings/s flat out against 5,754 and 5,536 for the two groups,
with about a quarter less machine CPU a reading, and positive → SSE p99 at 1,000/s of 169-175 ms
against 183 ms.  Earlier that day, with the machine three times slower, it was the other way round
(one thread waiting on PostgreSQL for both halves in turn was the bottleneck): the two groups stay
available for a site that wants the store's throughput independent of the flagger's.  Its group
is its own (``…readings``): switching to it re-reads the topic from the start, which every write's
idempotence makes harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from prometheus_client import Counter

from consumers.flagger import Flagger
from consumers.reading_store import ReadingStore
from consumers.records import parse_reading
from consumers.runner import Record, Sink
from schemas.envelope import ReadingRecord
from schemas.settings import Settings
from storage.db import Connection, is_retriable, savepoint

log = logging.getLogger(__name__)

JUDGING_FAILED = Counter("rt_judging_failed_total", "Readings stored but not judged: judging them raised")


class StoreAndJudge:
    name = "readings"

    def __init__(self, settings: Settings, flagger: Flagger | None = None) -> None:
        self.settings = settings
        self.store = ReadingStore(settings)
        self.flagger = flagger or Flagger(settings)

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic_readings]

    def handle(self, conn: Connection, records: Sequence[Record]) -> list[UUID]:
        parsed = [parse_reading(r) for r in records]
        self.store.store(conn, parsed)  # claims the ids; a conflict raises PoisonRecord
        try:
            with savepoint(conn, "judging"):
                return self.flagger.judge(conn, parsed)
        except Exception as exc:
            if is_retriable(exc):
                raise
            log.exception("judging a batch of %d readings failed; storing it and judging reading by reading",
                          len(parsed))
        return self._judge_one_by_one(conn, parsed)

    def _judge_one_by_one(self, conn: Connection, parsed: list[ReadingRecord]) -> list[UUID]:
        raised: list[UUID] = []
        for p in parsed:
            try:
                with savepoint(conn, "judging_one"):
                    raised += self.flagger.judge(conn, [p])
            except Exception as exc:
                if is_retriable(exc):
                    raise
                JUDGING_FAILED.inc()
                log.error("reading %s is stored but not judged: %s: %s", p.facts.reading_id, type(exc).__name__, exc)
        return raised

    def tick(self, conn: Connection) -> list[UUID]:
        return self.flagger.tick(conn)

    def after_commit(self, result: Any, out: Sink) -> None:
        self.flagger.after_commit(result, out)

    def close(self) -> None:
        self.flagger.close()
