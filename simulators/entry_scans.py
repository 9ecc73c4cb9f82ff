"""The certificates a simulated fleet's market entry scanners publish (pure, seeded: no I/O).

- :func:`fleet_district`: a small district chain (origins, merges, wholesalers' splits and
  hand-offs) whose lots end at stalls of the fleet's own markets;
- :func:`entry_messages`: each record as an MQTT message on the entry topic of the market it
  enters: its own market, or for a lot held before any market (a producer's, a wholesaler's),
  the market its goods reach first; one that reaches none enters at ``fallback_market``;
- :func:`certificate_pool`: the stall lots, for the fleet's readings to sample.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from simulators.certificates import DistrictShape, district, stall_lots
from simulators.fleet import CertificateRef

ENTRY_TOPIC = "rt/v1/markets/{market_id}/entry/{entry_id}/certificates"
SIM_ENTRY = "sim"

#: A district small enough to publish at start-up: a few dozen parties, chains up to 6 hops.
SMALL_DISTRICT = DistrictShape(producers=40, collectors=8, wholesalers=6, stalls_per_market=20, max_hops=6)


def fleet_district(market_ids: Sequence[str], n: int, *, seed: int, start: datetime,
                   shape: DistrictShape = SMALL_DISTRICT) -> list[dict[str, Any]]:
    """``n`` records (parents first) whose market entries and stalls are in ``market_ids``."""
    if not market_ids:
        raise ValueError("a district for a fleet needs at least one market")
    shape = replace(shape, markets=len(market_ids), market_ids=tuple(market_ids))
    return list(district(n, seed=seed, shape=shape, start=start))


def entry_markets(records: Sequence[dict[str, Any]], fallback_market: str) -> dict[str, str]:
    """Certificate number → the market whose entry scanner publishes it (``records`` parents first)."""
    reached: dict[str, str] = {}
    for rec in reversed(records):  # children before their parents
        own = (rec.get("location") or {}).get("market_id")
        market = own or reached.get(rec["certificate_no"])
        if own:
            reached[rec["certificate_no"]] = own
        for parent in rec.get("parents") or ():
            number = parent if isinstance(parent, str) else parent["certificate_no"]
            if market:
                reached.setdefault(number, market)
    return {rec["certificate_no"]: reached.get(rec["certificate_no"], fallback_market) for rec in records}


def entry_messages(records: Sequence[dict[str, Any]], fallback_market: str,
                   entry_id: str = SIM_ENTRY) -> list[tuple[str, bytes]]:
    """(topic, payload) for each record, in the records' order."""
    markets = entry_markets(records, fallback_market)
    return [(ENTRY_TOPIC.format(market_id=markets[rec["certificate_no"]], entry_id=entry_id),
             json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()) for rec in records]


def certificate_pool(records: Iterable[dict[str, Any]]) -> list[CertificateRef]:
    """The lots at stalls, with their market and stall: what the fleet's readers sample."""
    pool = []
    for rec in stall_lots(records):
        if rec.get("lot_code"):
            loc = rec["location"]
            pool.append(CertificateRef(rec["certificate_no"], rec["lot_code"], rec["product"]["name"],
                                       rec["product"]["category"], loc["market_id"], loc["stall_id"]))
    return pool
