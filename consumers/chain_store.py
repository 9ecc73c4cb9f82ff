"""The chain consumer: stores certificate records immutably with their digests.

Per batch, under one advisory lock (one chain writer at a time):

1. parse every record; a malformed one is a dead letter;
2. a number already stored or held: the same record is a no-op, a different
   one is a conflict (dead letter), never an overwrite;
3. a record whose parents (and the record it corrects) are known is checked
   against them: custody first (:func:`domain.custody.custody_problems`: the
   submitter must hold every parent and the record it corrects), then the
   quantities and products (:func:`domain.chain.link_problems`); it is accepted
   with its digest and its submitter, or dead-lettered (not the holder,
   overdraw, contradiction, double correction);
4. accepting a record releases the held records that waited for it;
5. what is still waiting is held, unless it waits in a circle (dead letter).

Dead letters are produced to ``rt.deadletter.v1`` after the database commit
and before the runner commits the Kafka offsets.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from consumers.chain_review import review_held
from consumers.runner import Record, Sink
from domain.chain import (
    Problem,
    Rejection,
    canonical_digest,
    canonical_json,
    canonical_record,
    find_cycle,
    link_problems,
    parent_state,
    record_columns,
    supersede_problems,
)
from domain.custody import Lot, custody_problems
from ingest.kafka_out import Outgoing
from schemas.certificate import SYSTEM_SUBMITTER, CertificateRecord, Submitter, submitter_of
from schemas.common import describe_validation_error, utc_now
from schemas.deadletter import deadletter_value
from schemas.settings import Settings
from storage import chain as q
from storage.chain import Known
from storage.db import Connection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """A parsed record of the batch with what the resolution asks of it again and again."""

    rec: CertificateRecord
    canonical: dict[str, Any]
    canonical_json: bytes
    waits: tuple[str, ...]
    raw: bytes
    topic: str
    submitter: Submitter

    @property
    def no(self) -> str:
        return self.rec.certificate_no

    @classmethod
    def of(cls, rec: CertificateRecord, raw: bytes, topic: str, submitter: Submitter) -> Item:
        canonical = canonical_record(rec)
        return cls(rec, canonical, canonical_json(canonical), tuple(rec.waits_for()), raw, topic, submitter)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    raw: bytes
    code: str
    reason: str


@dataclass
class BatchResult:
    accepted: int = 0
    held: int = 0
    released: int = 0
    duplicates: int = 0
    dead: list[DeadLetter] = field(default_factory=list)


def parse_value(raw: bytes) -> CertificateRecord:
    """A Kafka value as a certificate record (raises ValueError with a readable reason)."""
    try:
        return CertificateRecord.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":
            raise ValueError(f"not JSON: {errors[0]['msg']}") from None
        raise ValueError(describe_validation_error(exc, what="record")) from None


class _Batch:
    """One batch's resolution, inside the open transaction of ``cur``."""

    def __init__(self, cur: Any, result: BatchResult, held_cache: dict[str, Item]) -> None:
        self.cur = cur
        self.result = result
        self.held_cache = held_cache
        self.known: dict[str, Known] = {}
        self.queried: set[str] = set()
        self.cert_rows: list[tuple[Any, ...]] = []
        self.link_rows: list[tuple[Any, ...]] = []

    def reject(self, item: Item, rejection: Rejection) -> None:
        self.result.dead.append(DeadLetter(item.topic, item.raw, rejection.code.value,
                                           f"{item.no}: {rejection.reason}"))

    def load(self, numbers: Iterable[str]) -> None:
        need = set(numbers) - self.queried
        self.queried |= need
        self.known.update(q.fetch_known(self.cur, need))

    # --- 2. duplicates and conflicts ---
    def new_items(self, items: list[Item]) -> list[Item]:
        self.load(i.no for i in items)
        held = q.fetch_held(self.cur, (i.no for i in items if i.no not in self.known))
        seen: dict[str, dict[str, Any]] = {}
        fresh: list[Item] = []
        for item in items:
            existing = self.known[item.no].record if item.no in self.known else held.get(item.no, seen.get(item.no))
            if existing is None:
                seen[item.no] = item.canonical
                fresh.append(item)
            elif existing == item.canonical:
                self.result.duplicates += 1
            else:
                self.reject(item, Rejection(Problem.CONFLICT, "a different record is already registered under "
                                            "this number; submit a superseding record with a new number instead"))
        return fresh

    # --- 3./4. accept what can be ---
    def resolve(self, items: list[Item]) -> list[Item]:
        queue = {i.no: i for i in items}
        released_for: set[str] = set()
        accepted: list[str] = []
        while True:
            self.load(n for i in queue.values() for n in i.waits)
            pending = sorted(queue.values(), key=lambda i: (i.rec.issued_at, i.no))
            progress = True
            while progress:
                progress = False
                waiting = []
                for item in pending:
                    if all(n in self.known for n in item.waits):
                        del queue[item.no]
                        progress = True
                        if self.accept(item):
                            accepted.append(item.no)
                    else:
                        waiting.append(item)
                pending = waiting
            fresh = [n for n in accepted if n not in released_for]
            released_for.update(fresh)
            released = self.released(fresh)
            if not released:
                return list(queue.values())
            queue.update({i.no: i for i in released})

    def released(self, numbers: list[str]) -> list[Item]:
        """Held records that waited for any of ``numbers``, taken out of the held table."""
        out = []
        for no, raw, topic, submitter in q.release_held(self.cur, numbers):
            self.result.released += 1
            cached = self.held_cache.pop(no, None)
            if cached is not None and cached.raw == raw:
                out.append(cached)
                continue
            try:
                rec = parse_value(raw)
            except ValueError as exc:  # held under an older schema that no longer validates
                self.result.dead.append(DeadLetter(topic, raw, Problem.INVALID.value, str(exc)))
                continue
            out.append(Item.of(rec, raw, topic, submitter or SYSTEM_SUBMITTER))
        return out

    def accept(self, item: Item) -> bool:
        rec = item.rec
        target = self.known.get(rec.supersedes) if rec.supersedes else None
        credit = target.draws if target is not None else {}
        problems = (
            supersede_problems(rec, target is not None and target.superseded)
            or custody_problems(rec, item.submitter, {p.certificate_no: self.known[p.certificate_no].lot
                                                      for p in rec.parents}, target.lot if target else None)
            or link_problems(rec, {p.certificate_no: self.known[p.certificate_no].state for p in rec.parents},
                             credit=credit))
        if problems:
            self.reject(item, problems[0])
            return False
        self.store(item, target)
        return True

    def store(self, item: Item, target: Known | None) -> None:
        rec = item.rec
        parents = {p.certificate_no: self.known[p.certificate_no] for p in rec.parents}
        record_json = item.canonical_json
        digest = canonical_digest(record_json, {no: k.state.digest for no, k in parents.items()})
        depth = 1 + max((k.depth for k in parents.values()), default=-1)
        cols = record_columns(rec)
        self.cert_rows.append((*cols.values(), record_json.decode(), digest, depth, q.submitter_json(item.submitter)))
        draws: dict[str, float] = {}
        for number, taken in rec.moved():
            parent = self.known[number]
            parent.state = dataclasses.replace(parent.state, consumed_base=parent.state.consumed_base + taken.base)
            draws[number] = taken.base
            self.link_rows.append((rec.certificate_no, number, taken.value, taken.unit.value, taken.base,
                                   parent.state.digest))
        if target is not None:
            target.superseded = True
            for number, amount in target.draws.items():
                if number in self.known:
                    k = self.known[number]
                    k.state = dataclasses.replace(k.state, consumed_base=k.state.consumed_base - amount)
        self.known[rec.certificate_no] = Known(parent_state(rec, digest), depth, False, draws, item.canonical,
                                               Lot(rec.certificate_no, rec.holder.id, rec.location.market_id))
        self.result.accepted += 1

    # --- 5. hold the rest ---
    def hold(self, items: list[Item]) -> None:
        waiting = {i.no: [n for n in i.waits if n not in self.known] for i in items}
        graph = {**q.held_graph(self.cur, (n for w in waiting.values() for n in w)), **waiting}
        rows = []
        for item in items:
            cycle = find_cycle(item.no, graph)
            if cycle is not None:
                self.reject(item, Rejection(Problem.CYCLE, "the chain would form a cycle: " + " -> ".join(cycle)))
                continue
            rows.append((item.no, item.canonical_json.decode(), waiting[item.no], item.raw, item.topic,
                         item.submitter))
            self.held_cache[item.no] = item
        q.insert_held(self.cur, rows)
        self.result.held += len(rows)

    def flush(self) -> None:
        q.insert_certificates(self.cur, self.cert_rows)
        q.insert_links(self.cur, self.link_rows)


class ChainStore:
    """Handler of ``rt.certificates.v1`` (registered as ``chain``)."""

    name = "chain"

    #: Parsed held records kept in memory so a release need not parse them again (checked against
    #: the raw bytes the database returns, so a stale entry is never used); cleared when this large.
    HELD_CACHE_MAX = 200_000

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self._held_cache: dict[str, Item] = {}

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic_certificates]

    def handle(self, conn: Connection, records: Sequence[Record]) -> BatchResult:
        return self.store(conn, [(r.value or b"", r.topic) for r in records], [r.headers for r in records])

    def store(self, conn: Connection, values: list[tuple[bytes, str]],
              headers: list[Any] | None = None) -> BatchResult:
        """Resolve and write a batch of (raw value, source topic) in the open transaction; ``headers``
        (one list of Kafka headers per value) name each record's submitter (none: a trusted system process)."""
        result = BatchResult()
        items: list[Item] = []
        for index, (raw, topic) in enumerate(values):
            try:
                submitter = submitter_of(headers[index] if headers else None)
                rec = parse_value(raw)
            except ValueError as exc:
                result.dead.append(DeadLetter(topic, raw, Problem.INVALID.value, str(exc)))
                continue
            items.append(Item.of(rec, raw, topic, submitter))
        if len(self._held_cache) > self.HELD_CACHE_MAX:
            self._held_cache.clear()
        with conn.cursor() as cur:
            q.lock_chain(cur)
            batch = _Batch(cur, result, self._held_cache)
            waiting = batch.resolve(batch.new_items(items))
            batch.flush()
            batch.hold(waiting)
        return result

    def tick(self, conn: Connection) -> BatchResult:
        """Idle-time work (the runner calls it on an empty poll): raise the review failures of records held
        longer than ``chain_held_review_after_s``."""
        review_held(conn, self.clock(), self.settings.chain_held_review_after_s)
        return BatchResult()

    def after_commit(self, result: BatchResult, out: Sink) -> None:
        if not result.dead:
            return
        out.send_all([
            Outgoing(self.settings.topic_deadletter, d.topic.encode(),
                     deadletter_value("kafka", d.topic, d.raw, d.code, d.reason))
            for d in result.dead
        ])
        for d in result.dead:
            log.warning("chain: dead letter %s: %s", d.code, d.reason)
