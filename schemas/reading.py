"""The ``rt.reading/1`` message a strip reader publishes (SPEC.md "MQTT").

Pure pydantic: no I/O.  Unknown fields are allowed and kept (the raw payload
is stored whole); every rule a malformed message must fail is here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.common import AwareDatetime, FiniteFloat, Identifier

MAX_PAYLOAD_BYTES = 16 * 1024

NonNegative = Annotated[FiniteFloat, Field(ge=0)]
Percent = Annotated[FiniteFloat, Field(ge=0, le=100)]
# printable text: no control characters (PostgreSQL text cannot hold NUL)
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Verdict(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"
    SUSPICIOUS = "suspicious"
    INVALID = "invalid"


class Method(StrEnum):
    COLLOIDAL_GOLD = "colloidal_gold"
    ENZYME_INHIBITION = "enzyme_inhibition"


class CommodityCategory(StrEnum):
    VEGETABLE = "vegetable"
    FRUIT = "fruit"
    MEAT = "meat"
    AQUATIC = "aquatic"
    EGG = "egg"
    GRAIN = "grain"
    OTHER = "other"


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Sample(_Open):
    sample_id: ShortText | None = None
    commodity: ShortText
    commodity_category: CommodityCategory | None = None
    vendor_id: Identifier | None = None
    certificate_no: Identifier | None = None
    lot_code: ShortText | None = None


class Assay(_Open):
    analyte: Identifier
    method: Method
    method_standard: ShortText | None = None
    strip_lot: Identifier
    cutoff_ratio: NonNegative | None = None
    incubation_s: NonNegative | None = None
    temperature_c: FiniteFloat | None = None


class Signal(_Open):
    c_line: NonNegative | None = None
    t_line: NonNegative | None = None
    inhibition_pct: Percent | None = None


class Reading(_Open):
    """One strip result.  ``market_id``/``station_id``/``device_id`` come from the topic."""

    schema_: Literal["rt.reading/1"] = Field(alias="schema")
    reading_id: UUID
    measured_at: AwareDatetime
    sample: Sample
    assay: Assay
    signal: Signal
    device_result: Verdict | None = None
    operator_id: Identifier | None = None
    firmware: ShortText | None = None
    market_id: Identifier | None = None
    station_id: Identifier | None = None
    device_id: Identifier | None = None

    @model_validator(mode="after")
    def _signal_fits_method(self) -> Reading:
        if self.assay.method is Method.COLLOIDAL_GOLD:
            missing = [f for f in ("c_line", "t_line") if getattr(self.signal, f) is None]
            if missing:
                raise ValueError(f"colloidal_gold needs signal.{' and signal.'.join(missing)}")
        elif self.signal.inhibition_pct is None:
            raise ValueError("enzyme_inhibition needs signal.inhibition_pct")
        return self
