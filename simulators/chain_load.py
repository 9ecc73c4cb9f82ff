"""Put simulated certificate chains somewhere: a bulk COPY into a fresh database, or Kafka.

The bulk loader is for benchmarks and demos at district scale: it computes the
same digests and columns as the chain consumer (:mod:`domain.chain`) but trusts
its input to be parents-first and valid (it skips the parent checks), and
writes with COPY.  Real submissions always go through Kafka and the consumer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domain.chain import canonical_digest, canonical_json, canonical_record, record_columns
from schemas.certificate import CertificateRecord
from storage.chain import insert_certificates, insert_links
from storage.db import Connection

if TYPE_CHECKING:  # the type only: the caller makes the producer (ingest.kafka_out.make_producer)
    from kafka import KafkaProducer


@dataclass
class LoadState:
    """Digests and depths of what was loaded so far (children need their parents')."""

    digests: dict[str, str] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)
    loaded: int = 0


def _rows(records: Iterable[dict[str, Any]], state: LoadState
          ) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    for data in records:
        rec = CertificateRecord.model_validate(data)
        record_json = canonical_json(canonical_record(rec))
        parents = {p.certificate_no: state.digests[p.certificate_no] for p in rec.parents}
        digest = canonical_digest(record_json, parents)
        depth = 1 + max((state.depths[p] for p in parents), default=-1)
        state.digests[rec.certificate_no] = digest
        state.depths[rec.certificate_no] = depth
        cert = (*record_columns(rec).values(), record_json.decode(), digest, depth, None)
        links = [(rec.certificate_no, no, q.value, q.unit.value, q.base, parents[no]) for no, q in rec.moved()]
        yield cert, links


def bulk_load(conn: Connection, records: Iterable[dict[str, Any]], *, chunk: int = 50_000,
              state: LoadState | None = None) -> LoadState:
    """COPY parents-first ``records`` into ``certificates`` and ``certificate_links``, committing per chunk."""
    state = state or LoadState()
    certs: list[tuple[Any, ...]] = []
    links: list[tuple[Any, ...]] = []
    for cert, cert_links in _rows(records, state):
        certs.append(cert)
        links.extend(cert_links)
        if len(certs) >= chunk:
            _copy(conn, certs, links)
            state.loaded += len(certs)
            certs, links = [], []
    if certs:
        _copy(conn, certs, links)
        state.loaded += len(certs)
    return state


def _copy(conn: Connection, certs: list[tuple[Any, ...]], links: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur:
        insert_certificates(cur, certs)
        insert_links(cur, links)
    conn.commit()


def publish(producer: KafkaProducer, topic: str, records: Iterable[dict[str, Any]]) -> int:
    """Produce each record to ``topic`` keyed by its certificate number; returns the count (flushed)."""
    count = 0
    for data in records:
        producer.send(topic, key=str(data["certificate_no"]).encode(),
                      value=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
        count += 1
    producer.flush()
    return count
