"""The data of the public pages, shaped for display: the board of one market's day, one certificate."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from api.web.public import present
from schemas.certificate import CertificateRecord
from storage import board, chain_reads, chain_trace, registry
from storage.db import Connection

BOARD_TESTS = 40
BOARD_FAILURES = 12
OPEN_FAILURES_DAYS = 7
CHAIN_DEPTH = 64
CHAIN_NODES = 500
COMMITMENT = ("我承诺对生产销售的食用农产品：不使用禁用农药兽药、停用兽药和非法添加物；"
              "常规农药兽药残留不超标；对承诺的真实性负责。")


class BoardTestRow(BaseModel):
    id: str
    time: str
    commodity: str
    analyte: str
    result: str
    result_class: str
    stall: str


class BoardFailureRow(BaseModel):
    id: str
    time: str
    kind: str
    commodity: str
    analyte: str
    stall: str
    state: str
    closed: bool


class BoardData(BaseModel):
    """What the results board shows (and ``/board/{id}/data.json`` answers): no operator, device or vendor."""

    market_id: str
    name: str
    town: str | None
    date: str
    updated: str
    tests: int
    qualified: int
    unqualified: int
    pass_rate: str
    rows: list[BoardTestRow]
    failures: list[BoardFailureRow]


def _day(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The market's local day around ``now``, in UTC, floored to whole hours (the rollups' buckets)."""
    local = now.astimezone(zone).date()
    start = datetime.combine(local, time(0), zone).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = datetime.combine(local + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end.replace(minute=0, second=0, microsecond=0)


def board_data(conn: Connection, market: registry.Market, now: datetime) -> BoardData:
    zone = ZoneInfo(market.time_zone)
    since, until = _day(now, zone)
    tests = board.tests_between(conn, market.market_id, since, until, BOARD_TESTS)
    counts = board.counts_between(conn, market.market_id, since, until)
    failures = board.screen_failures(conn, market.market_id, since, since - timedelta(days=OPEN_FAILURES_DAYS),
                                     BOARD_FAILURES)
    town_code = market.region_code[:9] + "000"
    town = registry.region_names(conn, [town_code]).get(town_code)
    return BoardData(
        market_id=market.market_id,
        name=market.name_zh,
        town=town,
        date=now.astimezone(zone).strftime("%Y年%m月%d日"),
        updated=now.astimezone(zone).strftime("%H:%M:%S"),
        tests=counts.tests,
        qualified=counts.negative,
        unqualified=counts.positive + counts.suspicious,
        pass_rate=present.percent(present.pass_rate(counts)),
        rows=[BoardTestRow(**present.test_row(t, zone)) for t in tests],
        failures=[BoardFailureRow(**present.failure_row(f, zone)) for f in failures],
    )


# --- certificate page ------------------------------------------------------------------------


def _region_name(conn: Connection, code: str | None) -> str | None:
    if not code:
        return None
    full = code.ljust(12, "0")
    return registry.region_names(conn, [full]).get(full)


def certificate_view(conn: Connection, number: str, zone: ZoneInfo) -> dict[str, Any] | None:
    """Everything the certificate page shows, or None for an unknown number."""
    found = chain_reads.record(conn, number) or chain_reads.held(conn, number)
    if found is None:
        return None
    rec = CertificateRecord.model_validate(found["record"])
    accepted = found["status"] == "accepted"
    nodes = chain_trace.trace(conn, number, "up", CHAIN_DEPTH, CHAIN_NODES).nodes if accepted else {}
    origin_numbers = [no for no, n in nodes.items() if n["kind"] == "origin"] or [number]
    origins = chain_reads.chain_records(conn, origin_numbers) if accepted else {number: rec}
    producers = []
    for o in sorted(origins.values(), key=lambda r: r.certificate_no):
        code = o.origin.region_code if o.origin else None
        producers.append({"name": o.holder.name or "—", "region": _region_name(conn, code) or code or "",
                          "place": (o.origin.place if o.origin else None) or ""})
    lots: list[str] = sorted({str(n["lot_code"]) for n in nodes.values() if n.get("lot_code")}
                             | ({rec.lot_code} if rec.lot_code else set()))
    tests = chain_reads.rapid_tests(conn, list(nodes) or [number], lots, limit=200) if accepted else []
    markets = {m.market_id: m.name_zh for m in registry.list_markets(
        conn, limit=len(tests) + 1, markets=sorted({t.market_id for t in tests if t.market_id}))} if tests else {}
    verified = chain_trace.verify(conn, number, CHAIN_DEPTH) if accepted else None
    return {
        "number": number,
        "product": rec.product.name,
        "quantity": f"{rec.quantity.value:g} {rec.quantity.unit}",
        "kind": present.CERT_KIND_ZH.get(rec.kind.value, rec.kind.value),
        "issued": rec.issued_at.astimezone(zone).strftime("%Y年%m月%d日"),
        "producers": producers,
        "commitment": COMMITMENT,
        # a collector's record may name no basis of its own: the producers' commitments then stand
        "basis": [present.BASIS_ZH.get(b, b) for b in dict.fromkeys(
            b.value for r in [rec, *sorted(origins.values(), key=lambda r: r.certificate_no)]
            for b in r.commitment_basis)],
        "hands": len({n["holder_id"] for n in nodes.values()}) if nodes else 1,
        "records": len(nodes) if nodes else 1,
        "tests": [{
            "time": t.measured_at.astimezone(zone).strftime("%m-%d %H:%M"),
            "analyte": present.analyte_zh(t.analyte),
            "result": present.verdict_zh(t.verdict)[0],
            "result_class": present.verdict_zh(t.verdict)[1],
            "where": markets.get(t.market_id or "", t.market_id or "—"),
            "this_lot": t.certificate_no == number,
        } for t in tests],
        "verified": None if verified is None else bool(verified["ok"]),
        "checked": verified["checked"] if verified else 0,
        "held": not accepted,
    }
