"""Certificate chains for tests, demos and benchmarks (pure generators, no I/O).

- :func:`sample_chain`: a small hand-made chain whose trace and recall scope are known.
- :func:`district`: producers -> collectors (merges) -> wholesalers (splits,
  hand-offs) -> market entry desks -> stalls, chains up to 8 hops deep, in an
  order where every parent comes before its children.
- :func:`stall_lots`: the lots that reached a stall, for readings that sample them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.certificate import CERTIFICATE_SCHEMA

#: (product, category) pairs a district sells, with the analytes screened on them (DOMAIN.md §2).
PRODUCTS: tuple[tuple[str, str], ...] = (
    ("韭菜", "vegetable"), ("芹菜", "vegetable"), ("豇豆", "vegetable"), ("菠菜", "vegetable"),
    ("小白菜", "vegetable"), ("茭白", "vegetable"), ("杨梅", "fruit"), ("柑橘", "fruit"),
    ("猪肉", "meat"), ("牛肉", "meat"), ("鳜鱼", "aquatic"), ("鳗鱼", "aquatic"), ("鸡蛋", "egg"),
)
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(
    number: str,
    kind: str,
    *,
    holder: str,
    role: str,
    quantity: float,
    parents: Iterable[tuple[str, float] | str] = (),
    product: tuple[str, str] = ("韭菜", "vegetable"),
    lot_code: str | None = None,
    issued_at: datetime = T0,
    market_id: str | None = None,
    stall_id: str | None = None,
    unit: str = "kg",
    region_code: str | None = None,
    supersedes: str | None = None,
) -> dict[str, Any]:
    """An ``rt.certificate/1`` record as JSON data."""
    refs: list[Any] = [p if isinstance(p, str) else {"certificate_no": p[0], "quantity": {"value": p[1], "unit": unit}}
                       for p in parents]
    out: dict[str, Any] = {
        "schema": CERTIFICATE_SCHEMA,
        "certificate_no": number,
        "kind": kind,
        "issued_at": issued_at.isoformat(),
        "product": {"name": product[0], "category": product[1]},
        "quantity": {"value": quantity, "unit": unit},
        "holder": {"id": holder, "name": f"{role} {holder}", "role": role},
        "commitment_basis": ["self_test"] if kind == "origin" else [],
        "location": {"market_id": market_id, "stall_id": stall_id},
        "parents": refs,
    }
    if lot_code:
        out["lot_code"] = lot_code
    if region_code or kind == "origin":
        out["origin"] = {"region_code": region_code or "320412", "place": "武进区"}
    if supersedes:
        out["supersedes"] = supersedes
    return out


def sample_chain() -> list[dict[str, Any]]:
    """A hand-made chain (parents first).

    O1 (500 kg) and O2 (300 kg) are merged at a collector into M1 (200 + 300);
    the rest of O1 is handed to a second wholesaler (H1, 300 kg).  M1 is split
    into S1 (200) and S2 (300); S1 is split to stalls T1 (120) and T2 (80) in
    market m1; S2 is handed whole to T3 in m2; H1 is split to T4 (100) in m2.
    O3 -> T5 is an unrelated chain of the same product.
    """
    h = timedelta(hours=1)
    return [
        record("O1", "origin", holder="coop-1", role="producer", quantity=500, lot_code="L1", issued_at=T0),
        record("O2", "origin", holder="coop-2", role="producer", quantity=300, lot_code="L2", issued_at=T0),
        record("O3", "origin", holder="coop-3", role="producer", quantity=50, lot_code="L3", issued_at=T0),
        record("M1", "merge", holder="col-1", role="collector", quantity=500, lot_code="C1",
               parents=[("O1", 200), ("O2", 300)], issued_at=T0 + 2 * h),
        record("H1", "handoff", holder="whs-2", role="wholesaler", quantity=300, lot_code="L1",
               parents=["O1"], issued_at=T0 + 3 * h),
        record("S1", "split", holder="whs-1", role="wholesaler", quantity=200, lot_code="W1",
               parents=["M1"], issued_at=T0 + 4 * h),
        record("S2", "split", holder="whs-1", role="wholesaler", quantity=300, lot_code="W2",
               parents=["M1"], issued_at=T0 + 4 * h),
        record("T1", "split", holder="stall-1", role="vendor", quantity=120, lot_code="W1-1",
               parents=["S1"], issued_at=T0 + 6 * h, market_id="m1", stall_id="stall-1"),
        record("T2", "split", holder="stall-2", role="vendor", quantity=80, lot_code="W1-2",
               parents=["S1"], issued_at=T0 + 6 * h, market_id="m1", stall_id="stall-2"),
        record("T3", "handoff", holder="stall-3", role="vendor", quantity=300, lot_code="W2",
               parents=["S2"], issued_at=T0 + 7 * h, market_id="m2", stall_id="stall-3"),
        record("T4", "split", holder="stall-4", role="vendor", quantity=100, lot_code="L1-4",
               parents=["H1"], issued_at=T0 + 7 * h, market_id="m2", stall_id="stall-4"),
        record("T5", "handoff", holder="stall-5", role="vendor", quantity=50, lot_code="L3",
               parents=["O3"], issued_at=T0 + 5 * h, market_id="m1", stall_id="stall-5"),
    ]


# --- district-scale generator ----------------------------------------------------------


@dataclass(frozen=True)
class DistrictShape:
    """Sizes of a simulated district (DOMAIN.md §5: 25 market stations, millions of certificates)."""

    producers: int = 4000
    collectors: int = 300
    wholesalers: int = 120
    markets: int = 25
    stalls_per_market: int = 80
    max_hops: int = 8
    # Most lots one harvest is split into on its way to stalls (keeps a small district's products mixed).
    max_fanout: int = 16
    region_code: str = "320412"
    prefix: str = "HGZ"
    # Market ids to use (e.g. a simulated fleet's); empty: "m00", "m01", ... up to ``markets``.
    market_ids: tuple[str, ...] = ()


class _Gen:
    def __init__(self, seed: int, shape: DistrictShape) -> None:
        self.rng = random.Random(seed)
        self.shape = shape
        self.seq = 0
        self.prefix = f"{shape.prefix}-{shape.region_code}-{seed}"
        self._products: list[tuple[str, str]] = []

    def product(self) -> tuple[str, str]:
        """The next flow's product: every product once per round, the categories taken in turn (the most
        tested first), so that even a small district carries each category the markets test."""
        if not self._products:
            by_category: dict[str, list[tuple[str, str]]] = {}
            for item in PRODUCTS:
                by_category.setdefault(item[1], []).append(item)
            for items in by_category.values():
                self.rng.shuffle(items)
            queues = list(by_category.values())
            while any(queues):
                self._products += [q.pop() for q in queues if q]
            self._products.reverse()
        return self._products.pop()

    def number(self) -> str:
        self.seq += 1
        return f"{self.prefix}-{self.seq:08d}"

    def market(self) -> str:
        s, r = self.shape, self.rng
        return r.choice(s.market_ids) if s.market_ids else f"m{r.randrange(s.markets):02d}"

    def party(self, role: str, market: str | None = None) -> tuple[str, str, str | None, str | None]:
        """(holder id, role, market, stall) of a random party of ``role`` (a stall: in ``market`` if given)."""
        s, r = self.shape, self.rng
        if role == "producer":
            return f"prod-{r.randrange(s.producers):05d}", role, None, None
        if role == "collector":
            return f"coll-{r.randrange(s.collectors):04d}", role, None, None
        if role == "wholesaler":
            return f"whs-{r.randrange(s.wholesalers):04d}", role, None, None
        market = market or self.market()
        if role == "market":
            return f"entry-{market}", role, market, None
        stall = f"{market}-s{r.randrange(s.stalls_per_market):03d}"
        return stall, "vendor", market, stall


def _roles_for(hops: int) -> list[str]:
    """Holder role after each hop; the last hop always lands on a stall."""
    middle = ["collector", "wholesaler", "wholesaler", "wholesaler", "wholesaler", "wholesaler"]
    return [*middle[: max(0, hops - 2)], "market", "vendor"][-hops:]


def _flow(g: _Gen, when: datetime) -> Iterator[dict[str, Any]]:
    r = g.rng
    product = g.product()
    origins = [(g.number(), round(r.uniform(200, 2000), 1)) for _ in range(r.choice((1, 1, 2, 3)))]
    for no, qty in origins:
        holder, role, _, _ = g.party("producer")
        yield record(no, "origin", holder=holder, role=role, quantity=qty, product=product,
                     lot_code=f"L{when:%Y%m%d}-{no[-5:]}", issued_at=when, region_code=g.shape.region_code)
    roles = _roles_for(r.randint(2, g.shape.max_hops))
    when += timedelta(hours=r.uniform(2, 12))
    if len(origins) > 1:
        holder, role, market, stall = g.party(roles.pop(0))
        takes = [(no, round(qty * r.uniform(0.5, 1.0), 1)) for no, qty in origins]
        number = g.number()
        yield record(number, "merge", holder=holder, role=role, quantity=sum(q for _, q in takes),
                     product=product, parents=takes, lot_code=f"M-{number[-6:]}", issued_at=when,
                     market_id=market, stall_id=stall)
        lots = [(number, sum(q for _, q in takes))]
        markets = {number: market}
    else:
        lots, markets = origins, {}
    yield from _hops(g, lots, roles, product, when, markets)


def _hops(g: _Gen, lots: list[tuple[str, float]], roles: list[str], product: tuple[str, str],
          when: datetime, markets: dict[str, str | None]) -> Iterator[dict[str, Any]]:
    """Hand lots on hop by hop; ``markets``: the market a lot is in (it goes to a stall of that market)."""
    r = g.rng
    for role_name in roles:
        when += timedelta(hours=r.uniform(1, 10))
        next_lots: list[tuple[str, float]] = []
        for parent, qty in lots:
            parts = r.choice((1, 2, 2, 3)) if qty >= 20 and len(lots) < g.shape.max_fanout else 1
            shares = [int(qty * 10 * w / parts * r.uniform(0.6, 1.0)) / 10 for w in [1.0] * parts]
            kind = "handoff" if parts == 1 and r.random() < 0.6 else "split"
            if kind == "handoff":
                shares = [qty]
            for share in shares:
                if share <= 0:
                    continue
                holder, role, market, stall = g.party(role_name, markets.get(parent))
                number = g.number()
                yield record(number, kind, holder=holder, role=role, quantity=share, product=product,
                             parents=[parent], lot_code=f"T-{number[-6:]}", issued_at=when,
                             market_id=market, stall_id=stall)
                markets[number] = market
                next_lots.append((number, share))
        lots = next_lots


def district(n: int, *, seed: int = 1, shape: DistrictShape | None = None,
             start: datetime = T0) -> Iterator[dict[str, Any]]:
    """``n`` certificate records (parents always before children)."""
    g = _Gen(seed, shape or DistrictShape())
    produced = 0
    when = start
    while produced < n:
        for rec in _flow(g, when):
            yield rec
            produced += 1
            if produced >= n:
                return
        when += timedelta(seconds=g.rng.uniform(5, 60))


def stall_lots(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Records that reached a stall: what readings at markets sample."""
    for rec in records:
        loc = rec.get("location") or {}
        if loc.get("stall_id"):
            yield rec
