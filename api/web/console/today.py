"""今日: an operator's (or the whole district's, for a regulator) day at a glance, with the live failure list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ClockDep, Db
from api.web.console.deps import Session, hour_ceil, local_midnight
from api.web.console.labels import kind_labels, state_labels, with_summaries
from api.web.templating import language_of, render
from domain.anomaly import DeviceSeen, silent_devices
from storage import console as console_q
from storage import device_reads as device_q
from storage import failures as failure_q
from storage.stats import Bucket, GroupBy, StatsQuery, pass_rate_rows

router = APIRouter()
LIVE_LIMIT = 100
DEVICE_LIMIT = 300
_HOUR = timedelta(hours=1)


@router.get("/")
def today(request: Request, session: Session, db: Db, clock: ClockDep) -> Response:
    now = clock()
    markets = session.principal.market_filter()
    after_seq = failure_q.latest_seq(db)  # before the list: the stream then misses nothing the list lacks
    midnight = local_midnight(now)
    per_market = pass_rate_rows(
        db, StatsQuery(GroupBy.MARKET, Bucket.DAY, midnight, hour_ceil(now), "Asia/Shanghai", markets), 10_000)
    totals = {"tests": sum(r["tests"] for r in per_market), "valid": sum(r["valid_tests"] for r in per_market),
              "negative": sum(r["negative"] for r in per_market)}
    totals["pass_rate"] = totals["negative"] / totals["valid"] if totals["valid"] else None
    due = failure_q.list_failures(
        db, failure_q.FailureFilter(markets=markets, open_only=True, overdue_at=now + _HOUR), 200, None)
    due.sort(key=lambda r: r["due_at"])
    live = failure_q.list_failures(db, failure_q.FailureFilter(markets=markets, since=midnight), LIVE_LIMIT, None)
    devices = device_q.list_devices(db, device_q.DeviceFilter(markets=markets), DEVICE_LIMIT, None)
    seen = [DeviceSeen(d["device_id"], d["market_id"], d["station_id"], d["last_received_at"])
            for d in devices if d["last_received_at"] is not None]
    silent = {s.device.device_id: s.silent_for for s in silent_devices(seen, now)}
    for d in devices:
        d["silent_for"] = silent.get(d["device_id"])
    devices.sort(key=lambda d: (d["silent_for"] is None, d["market_id"], d["device_id"]))
    lang = language_of(request)
    with_summaries(db, [*due, *live], lang)
    context: dict[str, Any] = {
        "section": "today", "now": now, "per_market": per_market, "totals": totals,
        "by_kind": console_q.open_failures_by_kind(db, markets), "open": console_q.open_failures_at(db, markets, now),
        "due": due, "live": live, "devices": devices, "silent_count": len(silent),
        "after_seq": after_seq, "kind_labels": kind_labels(lang), "state_labels": state_labels(lang),
    }
    return render(request, "console/templates/today.html", context)
