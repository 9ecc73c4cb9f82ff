"""The console's localized failure summaries (api/web/failure_text.py): every kind in both languages, from rows
the flagger's and the chain review's own code builds, and the stored summary whenever a sentence cannot be made."""

from __future__ import annotations

import re
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.web.failure_text import failure_text
from api.web.templating import catalogue
from consumers.chain_review import held_failure
from domain import workflow
from domain.anomaly import Counts, invalid_rate_anomaly
from domain.failures import Judged, SubjectFailure, reading_failures
from domain.judging import Thresholds
from domain.workflow import Kind
from schemas.common import rfc3339

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
PARENT = "1a2b3c4d-0000-4000-8000-000000000001"


def judged(**overrides: Any) -> Judged:
    values: dict[str, Any] = {
        "reading_id": uuid.uuid4(), "measured_at": NOW, "market_id": "WJ-M01", "station_id": "S1", "device_id": "R-7",
        "analyte": "chlorpyrifos", "commodity": "青菜", "commodity_category": "vegetable", "region_code": "",
        "strip_lot": "CG-1", "server_result": "positive", "device_result": "positive", "rule": "ratio",
        "reason": "T/C 0.4800 <= 0.8", "ratio": 0.48, "device_cutoff": 0.8, "verdict_mismatch": False,
        "cutoff_mismatch": False, "thresholds": Thresholds().to_dict(),
    }
    values.update(overrides)
    return Judged(**values)


def reading_row(kind: Kind, **overrides: Any) -> dict[str, Any]:
    """The row the flagger raises (domain.failures.reading_failures) for one judged reading, as a page lists it."""
    (found,) = [f for f in reading_failures(judged(**overrides), NOW) if f.row["kind"] == kind.value]
    return {**found.row, "failure_id": str(found.row["failure_id"])}


def rate_row(kind: Kind) -> dict[str, Any]:
    """An invalid-rate failure shaped as ``Flagger.invalid_rates`` raises it."""
    found = invalid_rate_anomaly(Counts(50, 10), Counts(1000, 10))
    assert found is not None
    details = {"window": vars(found.window), "baseline": vars(found.baseline), "window_rate": found.window_rate,
               "baseline_rate": found.baseline_rate, "baseline_source": found.baseline_source, "z": found.z}
    if kind is Kind.INVALID_RATE_DEVICE:
        subject, columns = "R-7", {"device_id": "R-7", "market_id": "WJ-M01", "station_id": "S1"}
    else:
        subject, columns = "chlorpyrifos/CG-1", {"analyte": "chlorpyrifos", "strip_lot": "CG-1"}
    name = "device" if kind is Kind.INVALID_RATE_DEVICE else "strip_lot"
    f = SubjectFailure(kind, f"{kind.value}:{subject}", subject, f"{name} {subject}: {found.describe()}", details)
    return f.raise_at(NOW, **columns).row


def silent_row() -> dict[str, Any]:
    """A silent reader as ``Flagger.silent`` raises it."""
    last = NOW - timedelta(hours=3, minutes=30)
    f = SubjectFailure(Kind.SILENT_DEVICE, "silent_device:R-7", "R-7",
                       f"reader R-7 silent for 3.5 working hours (last seen {rfc3339(last)})",
                       {"last_seen": rfc3339(last), "silent_working_hours": 3.5})
    return f.raise_at(NOW, device_id="R-7", market_id="WJ-M01", station_id="S1").row


def overdue_row(parent_kind: str | None = "positive") -> dict[str, Any]:
    """An overdue step as ``Flagger.overdue`` raises it, with the parent's kind ``display_facts`` adds."""
    due = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    f = SubjectFailure(Kind.OVERDUE, f"overdue:{PARENT}", PARENT,
                       f"positive failure {PARENT} overdue in state sale_suspended (due {rfc3339(due)})",
                       {"state": "sale_suspended", "due_at": rfc3339(due)})
    return {**f.raise_at(NOW, parent_failure_id=PARENT, market_id="WJ-M01").row, "parent_kind": parent_kind}


def held_row() -> dict[str, Any]:
    held = {"certificate_no": "C1", "held_at": NOW - timedelta(hours=25), "waits_for": ["P0", "P9"],
            "record": {"holder": {"id": "coop-1"}, "kind": "merge", "lot_code": "L1", "location": {}}}
    return held_failure(held, NOW).row


#: Every kind: its row, then the sentence in Chinese and in English.
CASES: dict[str, tuple[dict[str, Any], str, str]] = {
    "positive": (
        reading_row(Kind.POSITIVE),
        "阳性：青菜 / 毒死蜱，WJ-M01/S1（T/C 比值 0.48 ≤ 阳性阈值 0.8）",
        "Positive: 青菜 / chlorpyrifos at WJ-M01/S1 (T/C 0.48 ≤ r_pos 0.8)",
    ),
    "positive, the reader disagreeing": (
        reading_row(Kind.POSITIVE, device_result="negative", verdict_mismatch=True),
        "阳性：青菜 / 毒死蜱，WJ-M01/S1（T/C 比值 0.48 ≤ 阳性阈值 0.8）；读卡器判为阴性",
        "Positive: 青菜 / chlorpyrifos at WJ-M01/S1 (T/C 0.48 ≤ r_pos 0.8); the reader said negative",
    ),
    "suspicious": (
        reading_row(Kind.SUSPICIOUS, server_result="suspicious", device_result="suspicious", ratio=0.9,
                    reason="0.8 < T/C 0.9000 < 0.95"),
        "可疑：青菜 / 毒死蜱，WJ-M01/S1（T/C 比值 0.9 介于阳性阈值 0.8 与阴性阈值 0.95 之间）",
        "Suspicious: 青菜 / chlorpyrifos at WJ-M01/S1 (T/C 0.9 between r_pos 0.8 and r_neg 0.95)",
    ),
    "invalid": (
        reading_row(Kind.INVALID, server_result="invalid", device_result="invalid", rule="c_min", ratio=None,
                    reason="C line 40 <= c_min 100: control line missing or weak"),
        "无效试纸：青菜 / 毒死蜱，WJ-M01/S1（C 线 ≤ 100，控制线缺失或过弱）",
        "Invalid strip: 青菜 / chlorpyrifos at WJ-M01/S1 (C line ≤ c_min 100: control line missing or weak)",
    ),
    "verdict_mismatch": (
        {**reading_row(Kind.VERDICT_MISMATCH, server_result="negative", device_result="positive", ratio=0.98,
                       verdict_mismatch=True), "occurrences": 3},
        "读卡器 R-7 判为阳性，服务器判为阴性：青菜 / 毒死蜱，WJ-M01/S1（累计 3 次）",
        "reader R-7 said positive, the server judged negative: 青菜 / chlorpyrifos at WJ-M01/S1 (3 readings)",
    ),
    "cutoff_mismatch": (
        reading_row(Kind.CUTOFF_MISMATCH, server_result="negative", device_result="negative", ratio=0.98,
                    device_cutoff=0.7, cutoff_mismatch=True),
        "读卡器 R-7 的阈值 0.7 与登记的阳性阈值 r_pos 0.8 不一致：青菜 / 毒死蜱，WJ-M01/S1",
        "reader R-7 cut-off 0.7 differs from the registry's r_pos 0.8: 青菜 / chlorpyrifos at WJ-M01/S1",
    ),
    "invalid_rate_device": (
        rate_row(Kind.INVALID_RATE_DEVICE),
        "读卡器 R-7：最近 50 次检测无效率 20.0%，自身基线 1.0%（z=13.5）",
        "reader R-7: invalid rate 20.0% over the last 50 tests vs its own baseline 1.0% (z=13.5)",
    ),
    "invalid_rate_strip_lot": (
        rate_row(Kind.INVALID_RATE_STRIP_LOT),
        "试纸批次 毒死蜱 / CG-1：最近 50 次检测无效率 20.0%，自身基线 1.0%（z=13.5）",
        "strip lot CG-1 (chlorpyrifos): invalid rate 20.0% over the last 50 tests vs its own baseline 1.0% (z=13.5)",
    ),
    "silent_device": (
        silent_row(),
        "读卡器 R-7 已静默 3.5 个工作小时（最后上报 2026-12-01 06:30）",
        "reader R-7 silent for 3.5 working hours (last seen 2026-12-01 06:30)",
    ),
    "overdue": (
        overdue_row(),
        "阳性问题 1a2b3c4d 在「暂停销售」环节超时（期限 2026-12-01 14:00）",
        "Positive failure 1a2b3c4d overdue in state “Sale suspended” (due 2026-12-01 14:00)",
    ),
    "overdue, parent kind unknown": (
        overdue_row(None),
        "问题 1a2b3c4d 在「暂停销售」环节超时（期限 2026-12-01 14:00）",
        "failure 1a2b3c4d overdue in state “Sale suspended” (due 2026-12-01 14:00)",
    ),
    "certificate_held": (
        held_row(),
        "合格证 C1 已等待上游记录 25.0 小时：P0、P9",
        "certificate C1 held 25.0 h waiting for P0, P9",
    ),
}


def test_every_failure_kind_has_a_case() -> None:
    assert {row["kind"] for row, _, _ in CASES.values()} == {k.value for k in workflow.Kind}


@pytest.mark.parametrize("case", list(CASES))
def test_each_kind_is_worded_in_both_languages(case: str) -> None:
    row, zh, en = CASES[case]
    assert failure_text("zh-CN", row) == zh
    assert failure_text("en", row) == en
    assert not re.search(r"[A-Za-z]{4,}", zh.replace("chlorpyrifos", "")), zh  # ids and r_pos only, no English


def test_what_cannot_be_worded_shows_the_stored_summary() -> None:
    positive = reading_row(Kind.POSITIVE)
    stored = positive["summary"]
    assert stored.startswith("positive strip: 青菜 / chlorpyrifos")
    assert failure_text("zh-CN", {**positive, "kind": "kind_of_tomorrow"}) == stored  # a kind without a message
    assert failure_text("zh-CN", {**positive, "details": None}) == stored  # listed without its details
    assert failure_text("zh-CN", {k: v for k, v in positive.items() if k != "details"}) == stored
    assert failure_text("zh-CN", {**positive, "commodity": None}) == stored
    assert failure_text("en", {**positive, "market_id": ""}) == stored
    mismatch = CASES["verdict_mismatch"][0]
    assert failure_text("zh-CN", {**mismatch, "details": {**mismatch["details"], "device_result": None}}) == \
        mismatch["summary"]
    assert failure_text("zh-CN", {**mismatch, "details": {**mismatch["details"], "server_result": "maybe"}}) == \
        mismatch["summary"]  # a verdict without a label
    cutoff = CASES["cutoff_mismatch"][0]
    assert failure_text("zh-CN", {**cutoff, "details": {**cutoff["details"], "thresholds": {}}}) == cutoff["summary"]
    silent = silent_row()
    assert failure_text("zh-CN", {**silent, "details": {**silent["details"], "last_seen": "yesterday"}}) == \
        silent["summary"]
    overdue = overdue_row()
    assert failure_text("zh-CN", {**overdue, "details": {"state": "limbo", "due_at": "x"}}) == overdue["summary"]
    held = held_row()
    assert failure_text("en", {**held, "details": {**held["details"], "waits_for": []}}) == held["summary"]
    assert failure_text("zh-CN", {"kind": "positive"}) == ""  # nothing at all: an empty cell, not a crash


def test_a_rule_without_a_message_leaves_out_only_the_reason() -> None:
    row = reading_row(Kind.POSITIVE, rule="rule_of_tomorrow", reason="it looked off")
    assert failure_text("zh-CN", row) == "阳性：青菜 / 毒死蜱，WJ-M01/S1"
    assert failure_text("en", row) == "Positive: 青菜 / chlorpyrifos at WJ-M01/S1"
    missing = reading_row(Kind.POSITIVE)
    missing["details"] = {**missing["details"], "thresholds": {}}  # the rule's message names r_pos
    assert failure_text("zh-CN", missing) == "阳性：青菜 / 毒死蜱，WJ-M01/S1"


def test_the_other_judging_rules_have_reasons() -> None:
    th = {**Thresholds().to_dict(), "limit": 0.2, "suspicious_from": 0.1, "inhibition_suspicious_pct": 40.0}
    cases = {
        ("t_only", "positive"): ("T 线强度 ≤ 阳性阈值 400", "T line ≤ t_pos 400"),
        ("t_only", "suspicious"): ("T 线强度介于阳性阈值 400 与阴性阈值 600 之间",
                                   "T line between t_pos 400 and t_neg 600"),
        ("semi_quantitative", "positive"): ("半定量浓度 ≥ 限量 0.2", "concentration ≥ limit 0.2"),
        ("semi_quantitative", "suspicious"): ("半定量浓度介于 0.1 与限量 0.2 之间",
                                              "concentration between 0.1 and the limit 0.2"),
        ("inhibition", "positive"): ("抑制率 ≥ 50%", "inhibition ≥ 50%"),
        ("inhibition", "suspicious"): ("抑制率 ≥ 40%，未达 50%", "inhibition ≥ 40%, below 50%"),
        ("missing_signal", "invalid"): ("缺少判定所需的信号值", "no signal to judge by"),
    }
    for (rule, result), (zh, en) in cases.items():
        kind = Kind(result)
        row = reading_row(kind, rule=rule, server_result=result, device_result=result, thresholds=th, ratio=None)
        assert f"（{zh}）" in failure_text("zh-CN", row), (rule, result)
        assert f"({en})" in failure_text("en", row), (rule, result)


def test_values_stay_text_the_template_escapes() -> None:
    row = reading_row(Kind.POSITIVE, commodity="<img src=x onerror=alert(1)> {where}")
    assert failure_text("zh-CN", row).startswith("阳性：<img src=x onerror=alert(1)> {where} / 毒死蜱")


def test_both_catalogues_word_summaries_with_the_same_placeholders() -> None:
    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    zh, en = catalogue("zh-CN"), catalogue("en")
    keys = {k for k in zh if k.startswith("summary.")}
    assert keys == {k for k in en if k.startswith("summary.")}
    for key in sorted(keys):
        assert fields(zh[key]) == fields(en[key]), key
