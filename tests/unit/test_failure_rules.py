"""The failure-raising rules (domain/failures.py): kinds, cause keys, folding, ids, deadlines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain import failures as f
from domain.workflow import Kind
from schemas.settings import Settings

T = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def judged(server: str, device: str | None, cutoff: float | None = 0.8, cut_mismatch: bool = False,
           device_id: str = "d1", at: datetime = T) -> f.Judged:
    return f.Judged(
        reading_id=uuid.uuid4(), measured_at=at, market_id="m1", station_id="s1", device_id=device_id,
        analyte="chlorpyrifos", commodity="韭菜", commodity_category="vegetable", region_code="", strip_lot="L1",
        server_result=server, device_result=device, rule="ratio", reason="r", ratio=0.5, device_cutoff=cutoff,
        verdict_mismatch=device is not None and device != server, cutoff_mismatch=cut_mismatch,
        thresholds={"r_pos": 0.8},
    )


# (server verdict, device verdict, device cut-off, cut-off disagrees) → [(kind, cause key or None)]
CASES: list[tuple[str, str | None, float | None, bool, list[tuple[Kind, str | None]]]] = [
    ("negative", "negative", 0.8, False, []),
    ("negative", None, None, False, []),
    ("positive", "positive", 0.8, False, [(Kind.POSITIVE, None)]),
    ("positive", "negative", 0.8, False, [(Kind.POSITIVE, None)]),  # one failure, not two
    ("suspicious", "negative", 0.8, False, [(Kind.SUSPICIOUS, None)]),
    ("invalid", "negative", 0.8, False, [(Kind.INVALID, None)]),
    ("negative", "positive", 0.8, False, [(Kind.VERDICT_MISMATCH, "verdict_mismatch:d1")]),
    ("negative", "negative", 0.6, True, [(Kind.CUTOFF_MISMATCH, "cutoff_mismatch:d1:0.6")]),
    ("positive", "negative", 0.6, True, [(Kind.POSITIVE, None), (Kind.CUTOFF_MISMATCH, "cutoff_mismatch:d1:0.6")]),
]


@pytest.mark.parametrize(("server", "device", "cutoff", "cut", "expected"), CASES)
def test_kinds_and_causes(server: str, device: str | None, cutoff: float | None, cut: bool,
                          expected: list[tuple[Kind, str | None]]) -> None:
    j = judged(server, device, cutoff, cut)
    raised = f.reading_failures(j, T)
    assert [(Kind(x.row["kind"]), x.cause_key) for x in raised] == expected
    for x in raised:
        assert x.failure_id == f.failure_id_for(x.row["dedup_key"])
        assert x.readings == ((j.reading_id, j.measured_at),)
        assert x.row["details"]["device_result"] == device


def test_a_disagreeing_positive_says_so_on_its_one_failure() -> None:
    (only,) = f.reading_failures(judged("positive", "negative"), T)
    assert only.row["details"]["verdict_mismatch"] is True and "the device said negative" in only.row["summary"]


def test_fold_counts_one_failure_per_cause_in_a_batch() -> None:
    batch = [judged("negative", "negative", 0.6, True, at=T + timedelta(minutes=i)) for i in range(50)]
    batch += [judged("negative", "negative", 0.5, True, at=T)]  # another reported value: another cause
    batch += [judged("positive", "positive"), judged("positive", "positive")]  # per strip: two
    folded = f.fold_causes(x for j in batch for x in f.reading_failures(j, T))
    by: dict[Any, Any] = {(x.row["kind"], x.cause_key): x for x in folded}
    assert len(folded) == 4
    fifty = by[("cutoff_mismatch", "cutoff_mismatch:d1:0.6")]
    assert fifty.row["occurrences"] == 50 and len(fifty.readings) == 50
    assert fifty.row["first_seen"] == T and fifty.row["last_seen"] == T + timedelta(minutes=49)
    assert fifty.row["reading_id"] == batch[0].reading_id  # the reading that opened it names its dedup key
    assert by[("cutoff_mismatch", "cutoff_mismatch:d1:0.5")].row["occurrences"] == 1


def test_deadlines_come_from_the_settings() -> None:
    d = f.deadlines_from(Settings(objection_window_h=2.5, posting_hour_farmers=10))
    assert d.objection_window == timedelta(hours=2.5) and d.posting_hour_farmers == 10
    assert f.deadlines_from(Settings()).objection_window == timedelta(hours=4)  # DOMAIN.md §3


@pytest.mark.parametrize("server", ["negative", "positive", "suspicious", "invalid"])
@pytest.mark.parametrize("device", [None, "negative", "positive", "invalid"])
@pytest.mark.parametrize("cutoff", [None, 0.8])
@pytest.mark.parametrize("cut", [False, True])
def test_the_quick_question_agrees_with_the_kinds(server: str, device: str | None, cutoff: float | None,
                                                   cut: bool) -> None:
    j = judged(server, device, cutoff, cut)
    assert f.raises_any(j.server_result, j.verdict_mismatch, j.cutoff_mismatch, j.device_cutoff) == bool(f.kinds_for(j))
