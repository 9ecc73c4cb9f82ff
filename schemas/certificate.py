"""The ``rt.certificate/1`` record: a certificate of conformity or a hand-off (SPEC.md).

Pure pydantic, no I/O.  Everything a record can get wrong on its own is checked
here; rules that need the parent records (overdraws, product contradictions,
cycles) live in :mod:`domain.chain`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.common import AwareDatetime, FiniteFloat, Identifier
from schemas.reading import CommodityCategory

CERTIFICATE_SCHEMA = "rt.certificate/1"

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
Positive = Annotated[FiniteFloat, Field(gt=0)]


class Kind(StrEnum):
    ORIGIN = "origin"
    HANDOFF = "handoff"
    SPLIT = "split"
    MERGE = "merge"


class Unit(StrEnum):
    """Units a quantity may be given in (a fixed list; no free text)."""

    KG = "kg"
    G = "g"
    T = "t"
    JIN = "jin"  # 斤, 0.5 kg
    L = "L"
    PIECE = "piece"
    HEAD = "head"
    BOX = "box"
    CRATE = "crate"


#: unit -> (dimension, factor to the dimension's base unit).  Quantities convert
#: only within one dimension; a kg parent cannot feed a "box" child.
UNIT_BASE: dict[Unit, tuple[str, float]] = {
    Unit.KG: ("mass", 1.0),
    Unit.G: ("mass", 0.001),
    Unit.T: ("mass", 1000.0),
    Unit.JIN: ("mass", 0.5),
    Unit.L: ("volume", 1.0),
    Unit.PIECE: ("piece", 1.0),
    Unit.HEAD: ("head", 1.0),
    Unit.BOX: ("box", 1.0),
    Unit.CRATE: ("crate", 1.0),
}


class CommitmentBasis(StrEnum):
    QUALITY_CONTROL = "quality_control"  # 质量安全控制符合要求
    SELF_TEST = "self_test"  # 自行检测合格
    ENTRUSTED_TEST = "entrusted_test"  # 委托检测合格


class HolderRole(StrEnum):
    PRODUCER = "producer"
    COLLECTOR = "collector"
    WHOLESALER = "wholesaler"
    MARKET = "market"
    VENDOR = "vendor"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Product(_Closed):
    name: ShortText
    category: CommodityCategory


class Quantity(_Closed):
    value: Positive
    unit: Unit

    @property
    def dimension(self) -> str:
        return UNIT_BASE[self.unit][0]

    @property
    def base(self) -> float:
        """The value in the base unit of its dimension (kg, L, pieces, ...)."""
        return self.value * UNIT_BASE[self.unit][1]


class Holder(_Closed):
    id: Identifier
    name: ShortText | None = None
    role: HolderRole
    contact: Annotated[str, Field(max_length=100)] | None = None


class OriginPlace(_Closed):
    region_code: Annotated[str, Field(pattern=r"^\d{6}$")] | None = None
    place: ShortText | None = None


class Location(_Closed):
    market_id: Identifier | None = None
    stall_id: Identifier | None = None


class ParentRef(_Closed):
    """An upstream record and how much of its lot this record took.

    ``quantity`` may be left out for a hand-off or a split (it is then the
    record's own quantity); a merge must say what it took from each parent.
    """

    certificate_no: Identifier
    quantity: Quantity | None = None


def _parent_ref(value: object) -> object:
    return {"certificate_no": value} if isinstance(value, str) else value


class CertificateRecord(BaseModel):
    """One certificate record as submitted (value of ``rt.certificates.v1``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["rt.certificate/1"] = Field(alias="schema")
    certificate_no: Identifier
    kind: Kind
    issued_at: AwareDatetime
    product: Product
    quantity: Quantity
    lot_code: ShortText | None = None
    holder: Holder
    origin: OriginPlace | None = None
    commitment_basis: list[CommitmentBasis] = Field(default_factory=list, max_length=3)
    location: Location = Field(default_factory=Location)
    parents: list[ParentRef] = Field(default_factory=list, max_length=64)
    supersedes: Identifier | None = None

    @field_validator("parents", mode="before")
    @classmethod
    def _parents_as_refs(cls, value: object) -> object:
        return [_parent_ref(v) for v in value] if isinstance(value, list) else value

    @model_validator(mode="after")
    def _kind_rules(self) -> CertificateRecord:
        problems = kind_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def moved(self) -> list[tuple[str, Quantity]]:
        """(parent number, quantity taken from that parent) for every parent."""
        return [(p.certificate_no, p.quantity or self.quantity) for p in self.parents]

    def waits_for(self) -> list[str]:
        """Numbers that must be stored before this record can be: parents, then the record it corrects."""
        numbers = [p.certificate_no for p in self.parents]
        if self.supersedes is not None:
            numbers.append(self.supersedes)
        return numbers


def kind_problems(rec: CertificateRecord) -> list[str]:
    """Rules a record breaks on its own, as readable sentences (empty when it is fine)."""
    problems: list[str] = []
    numbers = [p.certificate_no for p in rec.parents]
    if len(set(numbers)) != len(numbers):
        problems.append("parents must be distinct")
    if rec.certificate_no in numbers:
        problems.append("a record cannot be its own parent (cycle)")
    if rec.supersedes == rec.certificate_no:
        problems.append("a record cannot supersede itself")
    expected = {Kind.ORIGIN: (0, 0), Kind.HANDOFF: (1, 1), Kind.SPLIT: (1, 1), Kind.MERGE: (2, 64)}
    low, high = expected[rec.kind]
    if not low <= len(numbers) <= high:
        wanted = {Kind.ORIGIN: "no parents", Kind.HANDOFF: "exactly one parent",
                  Kind.SPLIT: "exactly one parent", Kind.MERGE: "two or more parents"}[rec.kind]
        problems.append(f"a {rec.kind.value} record has {wanted}, got {len(numbers)}")
    if rec.kind is Kind.ORIGIN:
        if rec.holder.role is not HolderRole.PRODUCER:
            problems.append("an origin record is issued by a producer (holder.role = producer)")
        if not rec.commitment_basis:
            problems.append("an origin record needs its commitment_basis")
    if rec.kind is Kind.MERGE:
        problems.extend(_merge_problems(rec))
    return problems


def _merge_problems(rec: CertificateRecord) -> list[str]:
    if any(p.quantity is None for p in rec.parents):
        return ["a merge must give the quantity taken from each parent"]
    taken = [q for _, q in rec.moved()]
    if any(q.dimension != rec.quantity.dimension for q in taken):
        return ["a merge's parent quantities must be in the same kind of unit as its own quantity"]
    total = sum(q.base for q in taken)
    if not _close(total, rec.quantity.base):
        return [f"a merge's parent quantities add up to {total:g}, not its own quantity {rec.quantity.base:g}"]
    return []


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def parse_certificate(data: dict[str, Any]) -> CertificateRecord:
    """Validate one record (raises ``pydantic.ValidationError``)."""
    return CertificateRecord.model_validate(data)


# --- who submitted a record (travels as a Kafka record header, stored beside the record) ---------------

#: Header of a ``rt.certificates.v1`` record naming its submitter (set by the API); records from the
#: bridge carry ``mqtt_topic`` instead, and the entry scanner is read from that topic.
SUBMITTER_HEADER = "rt_submitter"
ENTRY_TOPIC = re.compile(r"^rt/v1/markets/([A-Za-z0-9._-]{1,64})/entry/([A-Za-z0-9._-]{1,64})/certificates$")


class SubmitterRole(StrEnum):
    REGULATOR = "regulator"
    OPERATOR = "operator"
    PRODUCER = "producer"
    ENTRY_SCANNER = "entry_scanner"
    #: a record produced to Kafka by a trusted in-house process (bulk loads, simulators): no identity header
    SYSTEM = "system"


class Route(StrEnum):
    HTTP = "http"
    MQTT = "mqtt"
    KAFKA = "kafka"


class Submitter(_Closed):
    """Who sent a record and through which route; what the chain consumer checks custody against."""

    role: SubmitterRole
    name: Annotated[str, Field(max_length=200)]
    route: Route
    holder_id: Identifier | None = None
    markets: tuple[Identifier, ...] | None = None  # an operator's markets, an entry scanner's market

    def header(self) -> tuple[str, bytes]:
        return SUBMITTER_HEADER, self.model_dump_json(exclude_none=True).encode()

    def describe(self) -> str:
        where = {SubmitterRole.PRODUCER: f" (holder {self.holder_id})",
                 SubmitterRole.OPERATOR: f" (markets {', '.join(self.markets or ())})",
                 SubmitterRole.ENTRY_SCANNER: f" (market {', '.join(self.markets or ())})"}.get(self.role, "")
        return f"{self.role.value} {self.name!r}{where} via {self.route.value}"


SYSTEM_SUBMITTER = Submitter(role=SubmitterRole.SYSTEM, name="kafka", route=Route.KAFKA)


def submitter_of(headers: Iterable[tuple[str, bytes | None]] | None) -> Submitter:
    """The submitter a ``rt.certificates.v1`` record's headers name (see :data:`SUBMITTER_HEADER`).

    Raises ValueError when the submitter header is there but unreadable (the record is then refused)."""
    found = dict(headers or ())
    value = found.get(SUBMITTER_HEADER)
    if value is not None:
        try:
            return Submitter.model_validate_json(value)
        except ValueError as exc:
            raise ValueError(f"unreadable {SUBMITTER_HEADER} header: {exc}") from None
    topic = found.get("mqtt_topic")
    if topic is not None:
        match = ENTRY_TOPIC.match(topic.decode("utf-8", "replace"))
        if match is None:
            raise ValueError(f"mqtt_topic header {topic[:200]!r} is not a market entry scanner's topic")
        return Submitter(role=SubmitterRole.ENTRY_SCANNER, name=f"{match[1]}/{match[2]}", route=Route.MQTT,
                         markets=(match[1],))
    return SYSTEM_SUBMITTER
