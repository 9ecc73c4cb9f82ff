"""The strip-lot threshold registry (versioned by ``valid_from``) and the analyte catalogue."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import ClockDep, CurrentPrincipal, Db, Principal, SettingsDep, require_role
from api.errors import ApiError
from api.pagination import Page, decode_cursor, page_of, page_size
from domain.analytes import catalogue
from domain.judging import CalibrationInput, Mode, RegistryEntry, Scope, ThresholdError, resolve
from schemas.common import AwareDatetime, Identifier
from storage.audit import record_audit
from storage.thresholds import ThresholdVersionExists, add_version, list_versions, load_registry

router = APIRouter(tags=["thresholds"])
#: Market operators and regulators; producers only submit certificates (SPEC.md "Access").
Staff = Annotated[Principal, Depends(require_role("operator", "regulator"))]

class ThresholdVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Scope
    analyte: Identifier | None = None
    strip_lot: Identifier | None = None
    valid_from: AwareDatetime | None = Field(None, description="when it takes effect; default now")
    params: dict[str, Any] = Field(
        description="mode, c_min, r_pos, r_neg, t_pos, t_neg, calibration, "
        "calibration_input, limit, suspicious_from, inhibition_fail_pct, ..."
    )
    note: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _keys_fit_scope(self) -> ThresholdVersion:
        need = {Scope.PROJECT: (False, False), Scope.ANALYTE: (True, False), Scope.STRIP_LOT: (True, True)}
        analyte, lot = need[self.scope]
        if (self.analyte is not None) != analyte or (self.strip_lot is not None) != lot:
            raise ValueError(
                f"scope {self.scope.value} needs analyte {'set' if analyte else 'unset'} and "
                f"strip_lot {'set' if lot else 'unset'}"
            )
        return self


class ThresholdVersionOut(BaseModel):
    """One stored registry version (versions are never changed; a newer ``valid_from`` supersedes)."""

    id: int
    scope: Scope
    analyte: str | None
    strip_lot: str | None
    valid_from: datetime
    params: dict[str, Any]
    created_at: datetime
    created_by: str
    note: str | None


class ResolvedThresholds(BaseModel):
    """The thresholds in force for an analyte and strip lot at an instant, and the versions they came from."""

    analyte: str
    strip_lot: str
    at: datetime
    mode: Mode
    c_min: float
    r_pos: float
    r_neg: float
    t_pos: float
    t_neg: float
    calibration: list[float]
    calibration_input: CalibrationInput
    limit: float | None
    suspicious_from: float | None
    inhibition_fail_pct: float
    inhibition_suspicious_pct: float | None
    cutoff_tolerance: float
    entry_ids: list[int] = Field(description="the registry versions applied, weakest layer first")
    layers: list[str]


class AnalyteOut(BaseModel):
    """One analyte of the catalogue (DOMAIN.md §2)."""

    model_config = ConfigDict(populate_by_name=True)

    code: str
    name_zh: str
    name_en: str
    analyte_class: str = Field(alias="class")
    categories: list[str]
    commodities: list[str]
    method_standards: list[str]
    lab_standards: list[str]
    banned: bool
    notes: str


class Analytes(BaseModel):
    items: list[AnalyteOut]


@router.get("/v1/thresholds", response_model=Page[ThresholdVersionOut])
def thresholds(
    db: Db,
    _: Staff,
    settings: SettingsDep,
    scope: Scope | None = None,
    analyte: Identifier | None = None,
    strip_lot: Identifier | None = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ThresholdVersionOut]:
    """Every registry version, newest first."""
    size = page_size(limit, settings)
    before: int | None = None
    if cursor is not None:
        (raw,) = decode_cursor(cursor, 1)
        before = int(raw) if str(raw).isdigit() else 0
    equal = {"scope": scope.value if scope else None, "analyte": analyte, "strip_lot": strip_lot}
    rows = list_versions(db, equal, before, size + 1)
    return page_of(rows, size, lambda r: [r["id"]], lambda r: ThresholdVersionOut(**r))


@router.post("/v1/thresholds", status_code=201, response_model=ThresholdVersionOut)
def add_threshold_version(
    body: ThresholdVersion,
    db: Db,
    clock: ClockDep,
    principal: Annotated[Principal, Depends(require_role("regulator"))],
) -> ThresholdVersionOut:
    """Add a version of a project, analyte or strip-lot threshold set (regulators only)."""
    valid_from = body.valid_from or clock()
    entries = load_registry(db)
    candidate = RegistryEntry(
        1 + max((e.entry_id for e in entries), default=0),
        body.scope,
        body.analyte,
        body.strip_lot,
        valid_from,
        body.params,
    )
    try:
        resolve([*entries, candidate], body.analyte or "", body.strip_lot or "", valid_from)
    except (ThresholdError, TypeError) as exc:
        raise ApiError(422, "invalid_thresholds", str(exc)) from None
    try:
        found = add_version(db, body.scope.value, body.analyte, body.strip_lot, valid_from, body.params,
                            principal.name, body.note)
        record_audit(db, principal.name, "threshold.add", f"threshold:{found['id']}",
                     {"scope": body.scope.value, "analyte": body.analyte, "strip_lot": body.strip_lot,
                      "valid_from": valid_from.isoformat(), "params": body.params})
        db.commit()
    except ThresholdVersionExists as exc:
        db.rollback()
        raise ApiError(409, "conflict", str(exc)) from None
    return ThresholdVersionOut(**found)


@router.get("/v1/thresholds/resolve", response_model=ResolvedThresholds)
def resolved_thresholds(
    db: Db,
    _: Staff,
    clock: ClockDep,
    analyte: Identifier,
    strip_lot: Identifier,
    at: Annotated[AwareDatetime | None, Query(description="default now")] = None,
) -> ResolvedThresholds:
    """The thresholds a reading of this analyte and strip lot measured at ``at`` is judged with."""
    moment: datetime = at or clock()
    try:
        resolved = resolve(load_registry(db), analyte, strip_lot, moment)
    except ThresholdError as exc:
        raise ApiError(500, "registry_inconsistent", str(exc)) from None
    return ResolvedThresholds(analyte=analyte, strip_lot=strip_lot, at=moment, **resolved.to_dict())


@router.get("/v1/analytes", response_model=Analytes)
def analytes(_: CurrentPrincipal) -> Analytes:
    """The analyte catalogue: codes, Chinese and English names, commodities, method standards."""
    return Analytes(items=[AnalyteOut(**a.to_dict()) for a in catalogue().values()])
