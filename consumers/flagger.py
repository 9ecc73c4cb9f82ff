"""Flagger: ``rt.readings.v1`` → server verdicts, failures, workflow events, alerts on ``rt.alerts.v1``.

Per batch, in one transaction (the runner commits):

1. judge every reading with the registry thresholds in force at its ``measured_at``;
2. store the verdicts (``ON CONFLICT DO NOTHING``: only new readings go further);
3. raise a failure for each positive, suspicious or invalid strip and each
   verdict or cut-off disagreement with the device;
4. look for invalid-rate anomalies of the devices and strip lots that just saw
   an invalid strip; every ``sweep_interval`` also raise overdue workflow steps
   and silent readers;
5. append each new failure's opening events and its alert to the outbox.

After the commit, :meth:`Flagger.after_commit` publishes every pending outbox
row to ``rt.alerts.v1`` and marks it sent, before the runner commits offsets.
A redelivered batch inserts no verdict, so it raises nothing twice; an alert
whose publication was interrupted is published on the next batch (its
``failure_id`` lets a consumer drop the rare duplicate).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from prometheus_client import Counter

from consumers.records import parse_reading
from consumers.runner import Record, Sink
from domain import failures as rules_of
from domain import workflow
from domain.anomaly import AnomalyRules, invalid_rate_anomaly, silent_devices
from domain.failures import Judged, NewFailure, SubjectFailure, deadlines_from, fold_causes
from domain.judging import Registry, Resolved, Signal, Thresholds, cutoff_disagrees, judge
from domain.workflow import Kind
from ingest.kafka_out import Outgoing
from schemas.common import rfc3339, utc_now
from schemas.envelope import ReadingRecord
from schemas.reading import Method, Verdict
from schemas.settings import Settings
from storage import failures as failures_store
from storage import readings as readings_store
from storage import registry
from storage import thresholds as thresholds_store
from storage import verdicts as store
from storage.copy_text import copy_buffer
from storage.db import Connection, connect

log = logging.getLogger(__name__)

RAISED = Counter("rt_failures_raised_total", "Failures raised by the flagger", ["kind"])
ALERTS = Counter("rt_alerts_published_total", "Alerts published to rt.alerts.v1")
CONFLICTS = Counter("rt_flagger_reading_conflicts_total", "Readings not judged: their reading_id is another reading")


@dataclass(frozen=True)
class FlaggerRules:
    """Configuration defaults (DOMAIN.md marks them uncertain)."""

    anomaly: AnomalyRules = field(default_factory=AnomalyRules)
    base: Thresholds = field(default_factory=Thresholds)
    window_tests: int = 50
    baseline_tests: int = 1000
    sweep_interval_s: float = 30.0


class Snapshots:
    """Each distinct resolved threshold set as stored: its JSON form and digest, computed once."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, ...], tuple[dict[str, Any], str]] = {}

    def of(self, resolved: Resolved) -> tuple[dict[str, Any], str]:
        found = self._memo.get(resolved.entry_ids)
        if found is None:
            as_dict = resolved.to_dict()
            found = (as_dict, store.snapshot_digest(as_dict))
            self._memo[resolved.entry_ids] = found
        return found


def verdict_row(env: ReadingRecord, registry: Registry, snapshots: Snapshots) -> dict[str, Any]:
    """The server verdict of one reading, with the thresholds it was judged by."""
    r = env.facts
    resolved = registry.resolve(r.analyte, r.strip_lot, r.measured_at)
    judgement = judge(Signal(r.method, r.c_line, r.t_line, r.inhibition_pct), resolved.thresholds)
    thresholds, digest = snapshots.of(resolved)
    device = r.device_result
    return {
        "reading_id": r.reading_id,
        "measured_at": r.measured_at,
        "received_at": env.received_at,
        "market_id": env.market_id,
        "station_id": env.station_id,
        "device_id": env.device_id,
        "analyte": r.analyte,
        "commodity": r.commodity,
        "commodity_category": r.commodity_category,
        "region_code": r.region_code,
        "strip_lot": r.strip_lot,
        "method": r.method.value,
        "device_result": device,
        "server_result": judgement.verdict.value,
        "rule": judgement.rule,
        "reason": judgement.reason,
        "ratio": judgement.ratio,
        "concentration": judgement.concentration,
        "device_cutoff": r.cutoff_ratio,
        "verdict_mismatch": device is not None and device != judgement.verdict.value,
        "cutoff_mismatch": r.method is Method.COLLOIDAL_GOLD and cutoff_disagrees(r.cutoff_ratio, resolved.thresholds),
        "thresholds": thresholds,
        "thresholds_digest": digest,
        # not stored in verdicts, used for the failure rows:
        "_facts": r,
    }


def judged(v: dict[str, Any]) -> Judged:
    """A verdict row as the failure rules' typed input."""
    f = v["_facts"]
    return Judged(
        reading_id=v["reading_id"], measured_at=v["measured_at"], market_id=v["market_id"],
        station_id=v["station_id"], device_id=v["device_id"], analyte=v["analyte"], commodity=v["commodity"],
        commodity_category=v["commodity_category"], region_code=v["region_code"], strip_lot=v["strip_lot"],
        server_result=v["server_result"], device_result=v["device_result"], rule=v["rule"], reason=v["reason"],
        ratio=v["ratio"], device_cutoff=v["device_cutoff"], verdict_mismatch=v["verdict_mismatch"],
        cutoff_mismatch=v["cutoff_mismatch"], thresholds=v["thresholds"], sample_id=f.sample_id,
        vendor_id=f.vendor_id, certificate_no=f.certificate_no, lot_code=f.lot_code,
    )


def reading_failures(v: dict[str, Any], now: datetime) -> list[NewFailure]:
    """The failures one new verdict raises (``domain/failures.py``)."""
    if not rules_of.raises_any(v["server_result"], v["verdict_mismatch"], v["cutoff_mismatch"], v["device_cutoff"]):
        return []
    return rules_of.reading_failures(judged(v), now)


def alert_payload(f: NewFailure) -> dict[str, Any]:
    """The ``rt.alerts.v1`` value of a new failure."""
    row = f.row
    status = workflow.current(f.events)
    fields = (
        "kind",
        "summary",
        "market_id",
        "station_id",
        "device_id",
        "analyte",
        "commodity",
        "strip_lot",
        "sample_id",
        "vendor_id",
        "certificate_no",
        "lot_code",
        "subject",
    )
    out: dict[str, Any] = {
        "v": 1,
        "failure_id": str(row["failure_id"]),
        "raised_at": rfc3339(row["raised_at"]),
        "state": status.state.value,
    }
    out.update({k: row.get(k) for k in fields})
    out["reading_id"] = str(row["reading_id"]) if row.get("reading_id") else None
    out["measured_at"] = rfc3339(row["measured_at"]) if row.get("measured_at") else None
    out["parent_failure_id"] = str(row["parent_failure_id"]) if row.get("parent_failure_id") else None
    out["details"] = row.get("details") or {}
    if f.cause_key is not None:
        out["cause_key"] = f.cause_key
        out["occurrences"] = row.get("occurrences", 1)
    return out


class Flagger:
    """The ``flagger`` consumer (registered in ``consumers/registry.py``)."""

    name = "flagger"

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
        rules: FlaggerRules | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or utc_now
        self.rules = rules or FlaggerRules()
        self.deadlines = deadlines_from(settings)
        self._registry = Registry([], self.rules.base)
        self._snapshots = Snapshots()
        self._registry_version: tuple[int, int] | None = None
        self._last_sweep: datetime | None = None
        self._outbox_conn: Connection | None = None
        self._lock = threading.Lock()

    def topics(self, settings: Settings) -> list[str]:
        return [settings.topic_readings]

    # --- registry cache ---
    def _current_registry(self, conn: Connection) -> Registry:
        """The registry as committed when this batch's transaction looked: its version (newest id and
        row count; versions are append-only) is read in the batch's own transaction before judging,
        so a threshold committed before a reading arrives judges it (reloaded only on a change)."""
        version = thresholds_store.registry_version(conn)
        if version != self._registry_version:
            self._registry = Registry(thresholds_store.load_registry(conn), self.rules.base)
            self._snapshots = Snapshots()
            self._registry_version = version
        return self._registry

    # --- the batch ---
    def handle(self, conn: Connection, records: Sequence[Record]) -> list[UUID]:
        parsed = [parse_reading(r) for r in records]
        conflicts = readings_store.claim(
            conn, copy_buffer((p.facts.reading_id, p.facts.measured_at.isoformat(), p.raw, i)
                              for i, p in enumerate(parsed)))
        if conflicts:
            CONFLICTS.inc(len(conflicts))
            log.warning("flagger: %d reading_id conflict(s) not judged (the store dead-letters them): %s",
                        len(conflicts), "; ".join(c.reason() for c in conflicts))
        refused = {c.ord for c in conflicts}
        return self.judge(conn, [p for i, p in enumerate(parsed) if i not in refused])

    def judge(self, conn: Connection, parsed: list[ReadingRecord]) -> list[UUID]:
        """Judge readings whose ids this transaction has claimed (``reading_ids``); returns new failure ids.

        :meth:`handle` claims them itself; :class:`consumers.store_and_judge.StoreAndJudge` has the
        store claim them in the same transaction, so a reading is consumed and claimed once."""
        now = self.clock()
        registry = self._current_registry(conn)
        first: dict[UUID, ReadingRecord] = {}
        for p in parsed:
            first.setdefault(p.facts.reading_id, p)
        rows = [verdict_row(p, registry, self._snapshots) for p in first.values()]
        store.insert_snapshots(conn, {v["thresholds_digest"]: v["thresholds"] for v in rows})
        new_ids = store.insert_verdicts(conn, rows)
        new_rows = [v for v in rows if v["reading_id"] in new_ids]
        store.upsert_device_activity(conn, new_rows)
        raised = [f for v in new_rows for f in reading_failures(v, now)]
        raised = fold_causes(raised)
        raised += self.rate_anomalies(conn, new_rows, now)
        raised += self.sweep(conn, now)
        return self.raise_failures(conn, raised)

    def tick(self, conn: Connection) -> list[UUID]:
        """Idle-time work (overdue steps, silent readers) when no record arrives; the runner may call this
        on an empty poll, inside a transaction it commits, followed by :meth:`after_commit`."""
        return self.raise_failures(conn, self.sweep(conn, self.clock()))

    def raise_failures(self, conn: Connection, failures: list[NewFailure]) -> list[UUID]:
        """Insert failures, their opening events and alerts; returns the new failure ids."""
        new = failures_store.insert_failures(conn, failures, self.deadlines)
        failures_store.enqueue_alerts(
            conn, [(f.row["failure_id"], f.row.get("market_id"), alert_payload(f)) for f in new]
        )
        failures_store.append_events(conn, [(f.row["failure_id"], e) for f in new for e in f.events])
        for f in new:
            RAISED.labels(f.row["kind"]).inc()
        return [f.row["failure_id"] for f in new]

    # --- anomalies ---
    def rate_anomalies(self, conn: Connection, new_rows: list[dict[str, Any]], now: datetime) -> list[NewFailure]:
        invalid = [v for v in new_rows if v["server_result"] == Verdict.INVALID.value]
        if not invalid:
            return []
        out = []
        devices: list[tuple[str, ...]] = sorted({(v["device_id"],) for v in invalid})
        lots: list[tuple[str, ...]] = sorted({(v["analyte"], v["strip_lot"]) for v in invalid})
        context = {v["device_id"]: v for v in invalid}
        for subject, kind, keys in (
            ("device", Kind.INVALID_RATE_DEVICE, devices),
            ("strip_lot", Kind.INVALID_RATE_STRIP_LOT, lots),
        ):
            counts = store.recent_invalid_counts(
                conn, subject, keys, self.rules.window_tests, self.rules.baseline_tests
            )
            names = {k: "/".join(k) for k in keys}
            already = failures_store.open_subjects(conn, kind.value, names.values())
            for key, (window, baseline) in sorted(counts.items()):
                found = invalid_rate_anomaly(window, baseline, self.rules.anomaly)
                if found is None or names[key] in already:
                    continue
                columns: dict[str, Any] = (
                    {
                        "device_id": key[0],
                        "market_id": context[key[0]]["market_id"],
                        "station_id": context[key[0]]["station_id"],
                    }
                    if subject == "device"
                    else {"analyte": key[0], "strip_lot": key[1]}
                )
                details = {
                    "window": vars(found.window),
                    "baseline": vars(found.baseline),
                    "window_rate": found.window_rate,
                    "baseline_rate": found.baseline_rate,
                    "baseline_source": found.baseline_source,
                    "z": found.z,
                }
                dedup = f"{kind.value}:{names[key]}:{rfc3339(now)}"
                out.append(
                    SubjectFailure(kind, dedup, names[key], f"{subject} {names[key]}: {found.describe()}", details)
                    .raise_at(now, **columns)
                )
        return out

    def sweep(self, conn: Connection, now: datetime, force: bool = False) -> list[NewFailure]:
        """Overdue workflow steps and silent readers, at most every ``sweep_interval_s``."""
        if (
            not force
            and self._last_sweep is not None
            and (now - self._last_sweep).total_seconds() < self.rules.sweep_interval_s
        ):
            return []
        self._last_sweep = now
        return self.overdue(conn, now) + self.silent(conn, now)

    def overdue(self, conn: Connection, now: datetime) -> list[NewFailure]:
        out = []
        for f in failures_store.overdue_failures(conn, now):
            key = f"overdue:{f['failure_id']}:{f['state']}:{rfc3339(f['state_since'])}"
            summary = (
                f"{f['kind']} failure {f['failure_id']} overdue in state {f['state']} (due {rfc3339(f['due_at'])})"
            )
            columns = {
                k: f[k]
                for k in ("market_id", "station_id", "device_id", "analyte", "commodity", "strip_lot", "reading_id")
            }
            out.append(
                SubjectFailure(
                    Kind.OVERDUE, key, str(f["failure_id"]), summary,
                    {"state": f["state"], "due_at": rfc3339(f["due_at"])},
                ).raise_at(now, parent_failure_id=f["failure_id"], region_code=f["region_code"], **columns)
            )
        return out

    def silent(self, conn: Connection, now: datetime) -> list[NewFailure]:
        out = []
        for s in silent_devices(store.devices_seen(conn), now, self.rules.anomaly, registry.station_hours(conn)):
            d = s.device
            key = f"silent_device:{d.device_id}:{rfc3339(d.last_seen)}"
            hours = s.silent_for.total_seconds() / 3600
            summary = f"reader {d.device_id} silent for {hours:.1f} working hours (last seen {rfc3339(d.last_seen)})"
            out.append(
                SubjectFailure(
                    Kind.SILENT_DEVICE, key, d.device_id, summary,
                    {"last_seen": rfc3339(d.last_seen), "silent_working_hours": round(hours, 2)},
                ).raise_at(now, device_id=d.device_id, market_id=d.market_id, station_id=d.station_id)
            )
        return out

    # --- after the commit: the outbox ---
    def after_commit(self, result: Any, out: Sink) -> None:
        """Publish every pending alert (this batch's and any left by a crash) through the loop's sink,
        then mark them sent."""
        with self._lock:
            conn = self._outbox()
            try:
                # Row locks (SKIP LOCKED) are held until marked sent: two flaggers never publish the same alert.
                pending = failures_store.pending_alerts(conn)
                if not pending:
                    conn.commit()
                    return
                out.send_all([
                    Outgoing(self.settings.topic_alerts, (market or "-").encode(),
                             json.dumps(payload, ensure_ascii=False).encode())
                    for _, market, payload in pending
                ])
                failures_store.mark_sent(conn, [fid for fid, _, _ in pending])
                conn.commit()
                ALERTS.inc(len(pending))
            except BaseException:
                self._drop_outbox()
                raise

    def _outbox(self) -> Connection:
        if self._outbox_conn is None or self._outbox_conn.closed:
            if not self.settings.database_url:
                raise ValueError("RT_DATABASE_URL is not set")
            self._outbox_conn = connect(self.settings.database_url, application_name="rapidtrace-flagger-outbox")
        return self._outbox_conn

    def _drop_outbox(self) -> None:
        if self._outbox_conn is not None:
            try:
                self._outbox_conn.close()
            except Exception as exc:
                log.debug("closing the outbox connection: %s", exc)
        self._outbox_conn = None

    def close(self) -> None:
        """Release the outbox connection (the runner calls this on stop)."""
        self._drop_outbox()
