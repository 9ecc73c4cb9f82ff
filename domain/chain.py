"""The certificate chain's rules: canonical form, digests, and what a parent allows.

Pure: no I/O.  The chain consumer, the bulk loader and the verifier all use
these functions, so a digest is computed one way everywhere.

Digest of a record = SHA-256 over the canonical JSON of
``{"parents": [[number, digest], ...sorted by number], "record": canonical record}``,
where the canonical record is the validated record with UTC times, absent
optional fields dropped, keys sorted and no insignificant whitespace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.certificate import CertificateRecord, Kind, Quantity

#: Relative slack when comparing quantities (float sums of many splits).
QUANTITY_TOLERANCE = 1e-9


class Problem(StrEnum):
    """Why a record is rejected (the dead-letter code)."""

    INVALID = "certificate_invalid"
    CONFLICT = "certificate_conflict"
    CYCLE = "certificate_cycle"
    OVERDRAW = "certificate_overdraw"
    CONTRADICTION = "certificate_contradiction"
    NOT_HOLDER = "certificate_not_holder"


@dataclass(frozen=True)
class Rejection:
    code: Problem
    reason: str


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8, no NaN."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_record(rec: CertificateRecord) -> dict[str, Any]:
    """The record as plain JSON data: UTC times, absent optional fields dropped."""
    return rec.model_dump(mode="json", by_alias=True, exclude_none=True)


def record_digest(rec: CertificateRecord, parent_digests: Mapping[str, str]) -> str:
    """SHA-256 (hex) over the canonical record and its parents' digests."""
    wanted = {p.certificate_no for p in rec.parents}
    if set(parent_digests) != wanted:
        raise ValueError(f"need the digests of exactly {sorted(wanted)}, got {sorted(parent_digests)}")
    return canonical_digest(canonical_record(rec), parent_digests)


def canonical_digest(canonical: Mapping[str, Any] | bytes, parent_digests: Mapping[str, str]) -> str:
    """:func:`record_digest` of a record already in canonical form, as data or as its canonical JSON
    (the parents are not re-checked).  The material is the canonical JSON of
    ``{"parents": ..., "record": ...}``; with the record's JSON at hand it is spliced in, not re-encoded."""
    record_json = canonical if isinstance(canonical, bytes) else canonical_json(canonical)
    parents = canonical_json(sorted([no, d] for no, d in parent_digests.items()))
    return hashlib.sha256(b'{"parents":' + parents + b',"record":' + record_json + b"}").hexdigest()


def close_enough(a: float, b: float) -> bool:
    return abs(a - b) <= QUANTITY_TOLERANCE * max(1.0, abs(a), abs(b))


@dataclass(frozen=True)
class ParentState:
    """What a child needs to know about a stored parent."""

    certificate_no: str
    product_name: str
    category: str
    dimension: str
    quantity_base: float
    consumed_base: float
    digest: str
    superseded: bool = False

    @property
    def remaining_base(self) -> float:
        return self.quantity_base - self.consumed_base


def parent_state(rec: CertificateRecord, digest: str, consumed_base: float = 0.0) -> ParentState:
    return ParentState(
        certificate_no=rec.certificate_no,
        product_name=rec.product.name,
        category=rec.product.category.value,
        dimension=rec.quantity.dimension,
        quantity_base=rec.quantity.base,
        consumed_base=consumed_base,
        digest=digest,
    )


def link_problems(
    rec: CertificateRecord,
    parents: Mapping[str, ParentState],
    *,
    credit: Mapping[str, float] | None = None,
) -> list[Rejection]:
    """Rules a record breaks against its stored parents.

    ``credit`` gives back, per parent, what the record being superseded took
    from it (a correction replaces the old draw instead of adding to it).
    """
    problems: list[Rejection] = []
    for number, taken in rec.moved():
        parent = parents[number]
        problems.extend(_product_problems(rec, parent))
        problems.extend(_quantity_problems(taken, parent, (credit or {}).get(number, 0.0)))
    return problems


def _product_problems(rec: CertificateRecord, parent: ParentState) -> list[Rejection]:
    if rec.product.category.value != parent.category:
        return [Rejection(Problem.CONTRADICTION, f"product category {rec.product.category.value!r} contradicts "
                          f"parent {parent.certificate_no}'s {parent.category!r}")]
    if rec.kind in (Kind.HANDOFF, Kind.SPLIT) and rec.product.name != parent.product_name:
        return [Rejection(Problem.CONTRADICTION, f"product {rec.product.name!r} contradicts parent "
                          f"{parent.certificate_no}'s {parent.product_name!r}")]
    return []


def _quantity_problems(taken: Quantity, parent: ParentState, credit: float) -> list[Rejection]:
    if taken.dimension != parent.dimension:
        return [Rejection(Problem.CONTRADICTION, f"unit {taken.unit.value!r} ({taken.dimension}) cannot be taken "
                          f"from parent {parent.certificate_no} measured by {parent.dimension}")]
    left = parent.remaining_base + credit
    if taken.base > left and not close_enough(taken.base, left):
        return [Rejection(Problem.OVERDRAW, f"takes {taken.base:g} from parent {parent.certificate_no}, which has "
                          f"{max(left, 0.0):g} of {parent.quantity_base:g} left ({parent.dimension} base units)")]
    return []


def supersede_problems(rec: CertificateRecord, target_superseded: bool) -> list[Rejection]:
    if rec.supersedes is not None and target_superseded:
        return [Rejection(Problem.CONFLICT, f"{rec.supersedes} is already superseded by another record")]
    return []


def find_cycle(start: str, waits_for: Mapping[str, Iterable[str]]) -> list[str] | None:
    """A path start -> ... -> start through records waiting for each other, or None."""
    stack: list[tuple[str, list[str]]] = [(n, [start, n]) for n in waits_for.get(start, ())]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        if node == start:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((n, [*path, n]) for n in waits_for.get(node, ()))
    return None


def record_columns(rec: CertificateRecord) -> dict[str, Any]:
    """The searchable columns stored beside the record (all derived from it)."""
    return {
        "certificate_no": rec.certificate_no,
        "kind": rec.kind.value,
        "issued_at": rec.issued_at,
        "lot_code": rec.lot_code,
        "product_name": rec.product.name,
        "product_category": rec.product.category.value,
        "quantity_value": rec.quantity.value,
        "quantity_unit": rec.quantity.unit.value,
        "quantity_base": rec.quantity.base,
        "holder_id": rec.holder.id,
        "holder_role": rec.holder.role.value,
        "market_id": rec.location.market_id,
        "stall_id": rec.location.stall_id,
        "supersedes": rec.supersedes,
    }


# --- verification -----------------------------------------------------------------


@dataclass(frozen=True)
class StoredLink:
    parent_no: str
    quantity_value: float
    quantity_unit: str
    parent_digest: str


@dataclass(frozen=True)
class StoredNode:
    """A record as the database holds it, for verification."""

    certificate_no: str
    depth: int
    record: Any
    digest: str
    columns: Mapping[str, Any]
    links: list[StoredLink] = field(default_factory=list)


@dataclass(frozen=True)
class Alteration:
    certificate_no: str
    depth: int
    what: str


def verify_nodes(nodes: Iterable[StoredNode]) -> list[Alteration]:
    """Every mismatch between stored content, links and digests, most upstream first."""
    by_no = {n.certificate_no: n for n in nodes}
    found: list[Alteration] = []
    for node in sorted(by_no.values(), key=lambda n: (-n.depth, n.certificate_no)):
        found.extend(_node_alterations(node, by_no))
    return sorted(found, key=lambda a: (-a.depth, a.certificate_no))


def _node_alterations(node: StoredNode, by_no: Mapping[str, StoredNode]) -> list[Alteration]:
    def altered(what: str, number: str = node.certificate_no, depth: int = node.depth) -> Alteration:
        return Alteration(number, depth, what)

    try:
        rec = CertificateRecord.model_validate(node.record)
    except ValidationError as exc:
        return [altered(f"stored record no longer validates: {exc.errors()[0]['msg']}")]
    if canonical_record(rec) != node.record:
        return [altered("stored record is not in canonical form")]
    if rec.certificate_no != node.certificate_no:
        return [altered(f"stored record says it is {rec.certificate_no}")]
    out: list[Alteration] = []
    out.extend(altered(f"column {k} = {node.columns.get(k)!r} but the record says {v!r}")
               for k, v in record_columns(rec).items() if k in node.columns and not _same(node.columns[k], v))
    out.extend(altered(msg) for msg in _link_mismatches(rec, node.links))
    for link in node.links:
        parent = by_no.get(link.parent_no)
        if parent is not None and parent.digest != link.parent_digest:
            out.append(altered(f"digest changed since {node.certificate_no} was linked to it",
                               parent.certificate_no, parent.depth))
    if len({lk.parent_no for lk in node.links}) == len(node.links):
        parent_digests = {lk.parent_no: lk.parent_digest for lk in node.links}
        if set(parent_digests) == {p.certificate_no for p in rec.parents} and \
                record_digest(rec, parent_digests) != node.digest:
            out.append(altered("content does not match its stored digest"))
    return out


def _link_mismatches(rec: CertificateRecord, links: list[StoredLink]) -> list[str]:
    stored = {(lk.parent_no, lk.quantity_value, lk.quantity_unit) for lk in links}
    declared = {(no, q.value, q.unit.value) for no, q in rec.moved()}
    if stored == declared:
        return []
    return [f"stored parent links {sorted(stored)} differ from the record's parents {sorted(declared)}"]


def _same(stored: Any, derived: Any) -> bool:
    if isinstance(derived, float) and isinstance(stored, int | float):
        return close_enough(float(stored), derived)
    return bool(stored == derived)


# --- recall scope ---------------------------------------------------------------------


def arrived_base(holder_id: str, quantity_base: float, draws: Iterable[tuple[str, float]]) -> float:
    """How much of a lot reached ``holder_id`` from elsewhere (base units): its quantity less what it took from
    lots the same holder already held.  A collector that received 500 kg and split it into 200 + 250 holds
    500 kg, not 950: the parts arrived from its own lot.  ``draws``: (parent's holder, base quantity taken)."""
    internal = sum(base for parent_holder, base in draws if parent_holder == holder_id)
    return max(quantity_base - internal, 0.0)
