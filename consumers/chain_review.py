"""Review of held certificate records: one that has waited longer than ``chain_held_review_after_s`` for a
parent (or the record it corrects) raises a ``certificate_held`` review failure, once per record.

Run from the chain consumer's idle tick (:meth:`consumers.chain_store.ChainStore.tick`), in the
runner's transaction; the failure's alert goes out through the flagger's outbox like every other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from consumers.flagger import alert_payload
from domain import workflow
from domain.failures import NewFailure, failure_id_for
from schemas.common import rfc3339
from storage import chain_reads
from storage import failures as store
from storage.db import Connection


def held_failure(held: dict[str, Any], now: datetime) -> NewFailure:
    """The review failure of one held record (its dedup key is the record's number: raised once)."""
    rec = held["record"]
    no = held["certificate_no"]
    key = f"certificate_held:{no}"
    hours = (now - held["held_at"]).total_seconds() / 3600
    waits = ", ".join(held["waits_for"])
    row = {
        "failure_id": failure_id_for(key),
        "dedup_key": key,
        "kind": workflow.Kind.CERTIFICATE_HELD.value,
        "workflow": workflow.workflow_of(workflow.Kind.CERTIFICATE_HELD).value,
        "raised_at": now,
        "summary": f"certificate {no} held {hours:.1f} h waiting for {waits}",
        "details": {"waits_for": list(held["waits_for"]), "held_at": rfc3339(held["held_at"]),
                    "holder_id": rec["holder"]["id"], "kind": rec["kind"]},
        "subject": no,
        "certificate_no": no,
        "lot_code": rec.get("lot_code"),
        "market_id": (rec.get("location") or {}).get("market_id"),
    }
    return NewFailure(row, workflow.auto_events(workflow.Kind.CERTIFICATE_HELD, now))


def review_held(conn: Connection, now: datetime, after_s: float) -> list[UUID]:
    """Raise the failures of records held since before ``now - after_s``; returns the new failure ids."""
    overdue = chain_reads.held_longer_than(conn, now - timedelta(seconds=after_s))
    new = store.insert_failures(conn, [held_failure(h, now) for h in overdue], workflow.Deadlines())
    store.enqueue_alerts(conn, [(f.row["failure_id"], f.row.get("market_id"), alert_payload(f)) for f in new])
    store.append_events(conn, [(f.row["failure_id"], e) for f in new for e in f.events])
    return [f.row["failure_id"] for f in new]
